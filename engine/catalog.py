"""The catalog: POIs, their photos, actions and their pose images, in TinyDB.

The curators edit it from the app while the generator reads it, possibly from several
processes (the Streamlit server, the command line, a test), so:

* every write replaces `catalog_db.json` atomically (temp file, fsync, `os.replace`): a
  crash mid-write leaves the previous catalog, never half a JSON document, and a file that
  is not a catalog is refused, never taken as empty (`engine.catalog_store`, which also keeps
  the last good catalog as a backup);
* every read-modify-write holds one cross-process file lock (`filelock`), so two writers
  never lose each other's update;
* files the catalog points to live under `assets/` with names the catalog makes up; an
  uploaded file's name is never used as a path;
* deleting a record deletes the files that no other record still uses;
* every record carries a `version`, counted up at each change; an update given the
  `expected_version` a curator saw is refused (`Conflict`) once someone else changed the record,
  instead of silently overwriting their work. Edits that span tables (a rename that the photos
  follow) are one write (`edit_document`). An `order` sorts each list as visitors see it.

POIs, their photos and actions may carry what a visitor reads in other languages,
`translations = {"it": {"title": "Colosseo", "description": "..."}}`. Their `name` stays the
key in requests, URLs and the prompt in every language; without a translation a visitor reads
the English one, then the name and the description themselves (`record_text`).
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import unicodedata
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from filelock import FileLock
from PIL import Image
from tinydb import Query, TinyDB
from tinydb.storages import MemoryStorage
from tinydb.table import Table

from engine import images
from engine.catalog_store import AtomicJSONStorage
from engine.poses import SHOT_TYPES, check_shot_type, placement_from_dict
from engine.errors import CatalogError, Conflict, InvalidInput, NotFound

SHOT_LABELS = {"CLS": "close", "MES": "medium", "FUS": "far"}
NAME_MAX = 60
DESCRIPTION_MAX = 400
_NAME_RE = re.compile(r"^[\w][\w .,'()&+-]*$", re.UNICODE)
NAME_RULE = (f"1-{NAME_MAX} characters: letters, digits, spaces and . , ' ( ) & + - _, "
             "starting with a letter or digit")
TRANSLATED = ("title", "description")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")
LANGUAGE_RULE = "2-3 lowercase letters (an ISO 639 code, e.g. it)"

# --- records ------------------------------------------------------------------------------

@dataclass(frozen=True)
class POI:
    name: str
    description: str = ""
    translations: dict = field(default_factory=dict)
    order: int = 0  # place in the lists visitors see (then by name)
    version: int = 1  # +1 at each change: an edit made on an older one is refused (`_check_version`)


@dataclass(frozen=True)
class POIImage:
    poi: str
    name: str
    file: str  # relative to assets/
    description: str = ""
    width: int = 0
    height: int = 0
    translations: dict = field(default_factory=dict)
    order: int = 0
    version: int = 1


@dataclass(frozen=True)
class Action:
    name: str
    description: str = ""
    translations: dict = field(default_factory=dict)
    order: int = 0
    version: int = 1


@dataclass(frozen=True)
class ActionImage:
    action: str
    shot_type: str
    pose_image: str  # relative to assets/
    pose_mask: str
    face_mask: str
    width: int = 0
    height: int = 0
    # Where the action canvas sits on a POI image: fractions {x, bottom, height};
    # None means the shot type's default placement.
    placement: dict | None = None
    keypoints: list | None = None
    version: int = 1


_RECORD = {"pois": POI, "poi_images": POIImage, "actions": Action, "action_images": ActionImage}
_FILE_FIELDS = {"poi_images": ("file",), "action_images": ("pose_image", "pose_mask", "face_mask")}


def _from_doc(table: str, doc: dict):
    cls = _RECORD[table]
    names = cls.__dataclass_fields__
    return cls(**{k: v for k, v in doc.items() if k in names})


# --- checks --------------------------------------------------------------------------------

def check_name(field_name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field_name, value, NAME_RULE, reason="must be text")
    name = unicodedata.normalize("NFC", " ".join(value.split()))
    if not name or len(name) > NAME_MAX or not _NAME_RE.match(name):
        raise InvalidInput(field_name, value, NAME_RULE)
    return name


def _check_text(field_name: str, value: Any, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(field_name, value, f"text up to {limit} characters", reason="must be text")
    text = " ".join(value.split())
    if len(text) > limit:
        raise InvalidInput(field_name, f"{len(text)} characters", f"text up to {limit} characters",
                           reason="too long")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidInput(field_name, value, "printable text", reason="contains control characters")
    return text


def check_description(field_name: str, value: Any) -> str:
    return _check_text(field_name, value, DESCRIPTION_MAX)


def check_title(field_name: str, value: Any) -> str:
    """A translated title is only shown, never a key, so any printable text as long as a name."""
    return _check_text(field_name, value, NAME_MAX)


def check_translations(value: Any) -> dict[str, dict[str, str]]:
    """Per-language texts from a curator, cleaned; a language whose texts are all empty maps
    to {}, which `_merge_translations` takes as "remove this language"."""
    if not isinstance(value, Mapping):
        raise InvalidInput("translations", value, "language code → {title, description}",
                           reason="must be a mapping")
    cleaned = {}
    for lang, texts in value.items():
        if not isinstance(lang, str) or not _LANGUAGE_RE.match(lang):
            raise InvalidInput("translations", lang, LANGUAGE_RULE, reason="not a language code")
        where = f"translations.{lang}"
        if not isinstance(texts, Mapping) or set(texts) - set(TRANSLATED):
            raise InvalidInput(where, texts, "a mapping with a title and/or a description",
                               reason="unexpected texts")
        checked = {"title": check_title(f"{where}.title", texts.get("title")),
                   "description": check_description(f"{where}.description", texts.get("description"))}
        cleaned[lang] = {k: v for k, v in checked.items() if v}
    return cleaned


def _merge_translations(old: dict | None, new: dict) -> dict:
    """Each language given replaces that language's texts, so a curator's form for one language
    never touches another; a language left with no text is dropped, not stored empty."""
    merged = {**(old or {}), **new}
    return {lang: texts for lang, texts in merged.items() if texts}


def _text_changes(description: str | None, translations: Mapping | None) -> dict:
    """The checked fields of a text update, checked before the lock is taken."""
    changes = {}
    if description is not None:
        changes["description"] = check_description("description", description)
    if translations is not None:
        changes["translations"] = check_translations(translations)
    return changes


def record_text(record: POI | POIImage | Action, field_name: str, lang: str) -> str:
    """What a visitor reads of a record in `lang`: its translation, else the English one, else
    the record's own text (the name stands as the English title, `arms_crossed` read as
    "Arms crossed": names are often written as identifiers)."""
    if field_name not in TRANSLATED:
        raise ValueError(f"field must be one of {TRANSLATED}, not {field_name!r}")
    for code in (lang, "en"):
        text = record.translations.get(code, {}).get(field_name)
        if text:
            return text
    if field_name == "title":
        words = record.name.replace("_", " ").strip()
        return words[:1].upper() + words[1:]
    return record.description


def check_placement(value: Any) -> dict | None:
    """A curator's placement override, all three keys required; None keeps the default."""
    if value is None:
        return None
    return placement_from_dict(value).to_dict()


def _check_version(what: str, doc: dict | None, expected: int | None) -> int:
    """The record's version, after refusing an edit made on another one: two curators (or the
    editor and a script) who loaded the same record must not overwrite each other silently.
    A missing record is version 0, so "create it" fails too if someone created it meanwhile;
    `expected=None` skips the check (scripts that mean to overwrite)."""
    current = 0 if doc is None else doc.get("version", 1)
    if expected is not None and expected != current:
        now = "it was deleted" if doc is None else f"it is now at version {current}"
        raise Conflict(f"{what}: changed meanwhile by someone else — reload "
                       f"(you edited version {expected}; {now})")
    return current


def _by_order(records: list) -> list:
    return sorted(records, key=lambda r: (r.order, r.name))


def _matching(docs, where: dict) -> list[dict]:
    return [d for d in docs if all(d.get(k) == v for k, v in where.items())]


def _rows(data: dict, table: str, **where) -> list[dict]:
    """The records of a whole-catalog document (`Catalog.edit_document`) that match `where`."""
    return _matching(data.get(table, {}).values(), where)


def _remove(data: dict, table: str, **where) -> None:
    rows = data.get(table, {})
    for doc_id in [i for i, d in rows.items() if _matching([d], where)]:
        del rows[doc_id]


# --- the catalog ---------------------------------------------------------------------------

class Catalog:
    """Typed access to the catalog; every public method is one locked transaction."""

    def __init__(self, path: str | Path | None, assets_dir: str | Path, *, memory: bool = False):
        self.assets_dir = Path(assets_dir)
        self.path = Path(path) if path is not None else None
        if memory or self.path is None:
            self._db = TinyDB(storage=MemoryStorage)
            self._file_lock = None
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = TinyDB(self.path, storage=AtomicJSONStorage)
            self._file_lock = FileLock(str(self.path) + ".lock", timeout=30)
        self._thread_lock = threading.RLock()

    @classmethod
    def open(cls, settings) -> "Catalog":
        return cls(settings.catalog_path, settings.assets_dir)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            if self._file_lock is None:
                yield
            else:
                with self._file_lock:
                    yield

    def _t(self, name: str) -> Table:
        # A fresh Table each time: TinyDB caches the next document id per Table object,
        # which would collide with ids another process inserted meanwhile.
        return Table(self._db.storage, name, cache_size=0)

    # --- files -------------------------------------------------------------------------
    def store_image(self, img: Image.Image, kind: str) -> str:
        """Save a picture under a name we choose; returns the path relative to assets/."""
        if kind not in ("poi", "pose", "mask"):
            raise ValueError(kind)
        rel = f"{kind}/{secrets.token_hex(8)}.png"
        images.save_png(img, self.assets_dir / rel)
        return rel

    def asset_path(self, rel: str) -> Path:
        """The absolute path of a stored asset, refusing anything that escapes assets/."""
        base = self.assets_dir.resolve()
        p = (base / rel).resolve()
        if base not in p.parents:
            raise CatalogError(f"asset path {rel!r} points outside the assets folder")
        return p

    def open_asset(self, rel: str, mode: str = "RGB") -> Image.Image:
        return images.load_image(self.asset_path(rel), field=rel, mode=mode, max_side=None)

    def _referenced(self) -> set[str]:
        refs = set()
        for table, fields in _FILE_FIELDS.items():
            for doc in self._t(table).all():
                refs.update(doc[f] for f in fields if doc.get(f))
        return refs

    def _drop_unreferenced(self, candidates: set[str]) -> None:
        still = self._referenced()
        for rel in candidates - still:
            try:
                self.asset_path(rel).unlink()
            except (FileNotFoundError, CatalogError):
                pass

    def _update(self, table: str, query, changes: dict, what: str, expected_version: int | None) -> None:
        """Apply `changes` to the one record `query` finds, refusing a stale edit and counting a
        new version; call it holding the lock."""
        doc = self._t(table).search(query)[0]
        version = _check_version(what, doc, expected_version)
        if "translations" in changes:
            changes = dict(changes, translations=_merge_translations(doc.get("translations"),
                                                                     changes["translations"]))
        if changes:
            self._t(table).update({**changes, "version": version + 1}, query)

    # --- whole documents ------------------------------------------------------------------
    def locked(self):
        """The catalog's lock, for work that must see no write between its steps (an export
        reads the records and then their files)."""
        return self._locked()

    def document(self) -> dict:
        """A copy of every table as stored, `{table: {id: record}}`."""
        with self._locked():
            return copy.deepcopy(self._db.storage.read() or {})

    @contextmanager
    def edit_document(self) -> Iterator[dict]:
        """The whole catalog to change in place, written back by one atomic replace when the
        block ends without an error; files no record uses any more are deleted after.

        For changes that span tables (a rename its photos follow, an import): TinyDB writes one
        table per call, and a crash between two calls would leave photos pointing at a POI name
        that no longer exists.
        """
        with self._locked():
            data = self.document()
            before = self._referenced()
            yield data
            self._db.storage.write(data)
            self._drop_unreferenced(before)

    @staticmethod
    def _claim(data: dict, table: str, what: str, expected_version: int | None, **key) -> dict:
        """The record `key` finds in `data`, checked against the version the editor saw and
        counted as a new version, for the caller to change in the same write."""
        found = _rows(data, table, **key)
        version = _check_version(what, found[0] if found else None, expected_version)
        if not found:
            raise NotFound(f"{what} does not exist")
        found[0]["version"] = version + 1
        return found[0]

    def _next_order(self, table: str, **where) -> int:
        """After every sibling: a new record comes last (call it holding the lock)."""
        return max((d.get("order", 0) for d in _matching(self._t(table).all(), where)), default=-1) + 1

    def _reorder(self, table: str, names: list[str], what: str, **where) -> None:
        """Number the records `where` finds in the order of `names`, which must name each once:
        a list that differs was changed by someone else since the curator saw it. The order is
        not content, so it counts no new version (a text edit made meanwhile stays valid)."""
        with self.edit_document() as data:
            docs = _rows(data, table, **where)
            if sorted(d["name"] for d in docs) != sorted(names):
                raise Conflict(f"{what}: changed meanwhile by someone else — reload (it now holds "
                               f"{', '.join(sorted(d['name'] for d in docs)) or 'nothing'})")
            place = {name: i for i, name in enumerate(names)}
            for doc in docs:
                doc["order"] = place[doc["name"]]

    # --- POIs --------------------------------------------------------------------------
    def add_poi(self, name: str, description: str = "") -> POI:
        name = check_name("poi_name", name)
        description = check_description("description", description)
        with self._locked():
            if self._t("pois").search(Query().name == name):
                raise Conflict(f"poi_name: a POI named {name!r} already exists")
            order = self._next_order("pois")
            self._t("pois").insert({"name": name, "description": description, "order": order, "version": 1})
        return POI(name, description, order=order)

    def update_poi(self, name: str, description: str | None = None, *,
                   translations: Mapping | None = None, expected_version: int | None = None) -> POI:
        """New texts for a POI: `description` (None keeps it) and the languages in
        `translations` (see `check_translations`; languages not given are kept)."""
        changes = _text_changes(description, translations)
        with self._locked():
            self.get_poi(name)
            self._update("pois", Query().name == name, changes, f"POI {name!r}", expected_version)
            return self.get_poi(name)

    def rename_poi(self, name: str, new_name: str, *, expected_version: int | None = None) -> POI:
        """A new name for a POI; its photos follow, since they are found by their POI's name."""
        with self._locked():
            self.get_poi(name)
            return self.get_poi(self._rename("pois", "poi_images", "poi", ("poi_name", "a POI", "POI"),
                                             name, new_name, expected_version))

    def _rename(self, table: str, children: str, link: str, words: tuple[str, str, str], name: str,
                new_name: str, expected_version: int | None) -> str:
        """Rename a record and, in the same write, the records that point at it by name.
        `words` names the field and the record in errors: (field, "a POI", "POI")."""
        field_name, a_record, record = words
        new_name = check_name(field_name, new_name)
        with self.edit_document() as data:
            if new_name != name and _rows(data, table, name=new_name):
                raise Conflict(f"{field_name}: {a_record} named {new_name!r} already exists")
            self._claim(data, table, f"{record} {name!r}", expected_version, name=name)["name"] = new_name
            for doc in _rows(data, children, **{link: name}):
                doc.update({link: new_name, "version": doc.get("version", 1) + 1})
        return new_name

    def reorder_pois(self, names: list[str]) -> None:
        """The POIs in the order visitors will see them; `names` must be every POI."""
        self._reorder("pois", names, "the list of POIs")

    def get_poi(self, name: str) -> POI:
        with self._locked():
            docs = self._t("pois").search(Query().name == name)
        if not docs:
            raise NotFound(f"poi_name: no POI named {name!r}; known: {', '.join(self.poi_names()) or 'none'}")
        return _from_doc("pois", docs[0])

    def poi_names(self) -> list[str]:
        with self._locked():
            return sorted(d["name"] for d in self._t("pois").all())

    def list_pois(self) -> list[POI]:
        with self._locked():
            return _by_order([_from_doc("pois", d) for d in self._t("pois").all()])

    def delete_poi(self, name: str, *, expected_version: int | None = None) -> None:
        """A POI with its photos and their files, in one write."""
        with self._locked():
            self.get_poi(name)
            with self.edit_document() as data:
                self._claim(data, "pois", f"POI {name!r}", expected_version, name=name)
                _remove(data, "pois", name=name)
                _remove(data, "poi_images", poi=name)

    # --- POI images ---------------------------------------------------------------------
    def add_poi_image(self, poi: str, name: str, image: Image.Image | bytes | Path,
                      description: str = "") -> POIImage:
        name = check_name("poi_image", name)
        description = check_description("description", description)
        if not isinstance(image, Image.Image):
            image = images.load_image(image, field="poi_image file")
        image = image.convert("RGB")
        with self._locked():
            self.get_poi(poi)
            if self._t("poi_images").search((Query().poi == poi) & (Query().name == name)):
                raise Conflict(f"poi_image: {poi!r} already has an image named {name!r}")
            rel = self.store_image(image, "poi")
            rec = POIImage(poi, name, rel, description, image.width, image.height,
                           order=self._next_order("poi_images", poi=poi))
            try:
                self._t("poi_images").insert(asdict(rec))
            except BaseException:  # a full disk: no photo left behind without its record
                self._drop_unreferenced({rel})
                raise
        return rec

    def update_poi_image(self, poi: str, name: str, description: str | None = None, *,
                         translations: Mapping | None = None,
                         expected_version: int | None = None) -> POIImage:
        """New texts for a POI photo, as `update_poi`."""
        changes = _text_changes(description, translations)
        with self._locked():
            self.get_poi_image(poi, name)
            self._update("poi_images", (Query().poi == poi) & (Query().name == name), changes,
                         f"POI image {poi!r}/{name!r}", expected_version)
            return self.get_poi_image(poi, name)

    def rename_poi_image(self, poi: str, name: str, new_name: str, *,
                         expected_version: int | None = None) -> POIImage:
        new_name = check_name("poi_image", new_name)
        with self._locked():
            self.get_poi_image(poi, name)
            with self.edit_document() as data:
                if new_name != name and _rows(data, "poi_images", poi=poi, name=new_name):
                    raise Conflict(f"poi_image: {poi!r} already has an image named {new_name!r}")
                doc = self._claim(data, "poi_images", f"POI image {poi!r}/{name!r}", expected_version,
                                  poi=poi, name=name)
                doc["name"] = new_name
            return self.get_poi_image(poi, new_name)

    def replace_poi_image(self, poi: str, name: str, image: Image.Image | bytes | Path, *,
                          expected_version: int | None = None) -> POIImage:
        """A new picture for a POI photo that keeps its name, texts and place in the list (a
        placement is a fraction of the photo, so the poses fit the new size too)."""
        if not isinstance(image, Image.Image):
            image = images.load_image(image, field="poi_image file")
        image = image.convert("RGB")
        with self._locked():
            self.get_poi_image(poi, name)
            rel = self.store_image(image, "poi")
            try:
                with self.edit_document() as data:
                    doc = self._claim(data, "poi_images", f"POI image {poi!r}/{name!r}", expected_version,
                                      poi=poi, name=name)
                    doc.update(file=rel, width=image.width, height=image.height)
            except BaseException:
                self._drop_unreferenced({rel})
                raise
            return self.get_poi_image(poi, name)

    def reorder_poi_images(self, poi: str, names: list[str]) -> None:
        """A POI's photos in the order visitors will see them; `names` must be every one."""
        self._reorder("poi_images", names, f"the photos of {poi!r}", poi=poi)

    def get_poi_image(self, poi: str, name: str) -> POIImage:
        with self._locked():
            self.get_poi(poi)
            docs = self._t("poi_images").search((Query().poi == poi) & (Query().name == name))
            if not docs:
                known = ", ".join(i.name for i in self.list_poi_images(poi)) or "none"
                raise NotFound(f"poi_image: {poi!r} has no image named {name!r}; known: {known}")
        return _from_doc("poi_images", docs[0])

    def list_poi_images(self, poi: str | None = None) -> list[POIImage]:
        with self._locked():
            docs = self._t("poi_images").all() if poi is None else \
                self._t("poi_images").search(Query().poi == poi)
        return sorted(_by_order([_from_doc("poi_images", d) for d in docs]), key=lambda r: r.poi)

    def delete_poi_image(self, poi: str, name: str, *, expected_version: int | None = None) -> None:
        with self._locked():
            self.get_poi_image(poi, name)
            with self.edit_document() as data:
                self._claim(data, "poi_images", f"POI image {poi!r}/{name!r}", expected_version,
                            poi=poi, name=name)
                _remove(data, "poi_images", poi=poi, name=name)

    # --- actions -----------------------------------------------------------------------
    def add_action(self, name: str, description: str = "") -> Action:
        name = check_name("action_name", name)
        description = check_description("description", description)
        with self._locked():
            if self._t("actions").search(Query().name == name):
                raise Conflict(f"action_name: an action named {name!r} already exists")
            order = self._next_order("actions")
            self._t("actions").insert({"name": name, "description": description, "order": order,
                                       "version": 1})
        return Action(name, description, order=order)

    def update_action(self, name: str, description: str | None = None, *,
                      translations: Mapping | None = None, expected_version: int | None = None) -> Action:
        """New texts for an action, as `update_poi`."""
        changes = _text_changes(description, translations)
        with self._locked():
            self.get_action(name)
            self._update("actions", Query().name == name, changes, f"action {name!r}", expected_version)
            return self.get_action(name)

    def rename_action(self, name: str, new_name: str, *, expected_version: int | None = None) -> Action:
        """A new name for an action; its images follow, since they are found by its name."""
        with self._locked():
            self.get_action(name)
            return self.get_action(self._rename("actions", "action_images", "action",
                                                ("action_name", "an action", "action"),
                                                name, new_name, expected_version))

    def reorder_actions(self, names: list[str]) -> None:
        """The actions in the order visitors will see them; `names` must be every action."""
        self._reorder("actions", names, "the list of actions")

    def get_action(self, name: str) -> Action:
        with self._locked():
            docs = self._t("actions").search(Query().name == name)
        if not docs:
            raise NotFound(f"action_name: no action named {name!r}; known: "
                           f"{', '.join(self.action_names()) or 'none'}")
        return _from_doc("actions", docs[0])

    def action_names(self) -> list[str]:
        with self._locked():
            return sorted(d["name"] for d in self._t("actions").all())

    def list_actions(self) -> list[Action]:
        with self._locked():
            return _by_order([_from_doc("actions", d) for d in self._t("actions").all()])

    def delete_action(self, name: str, *, expected_version: int | None = None) -> None:
        """An action with its images at every distance and their files, in one write."""
        with self._locked():
            self.get_action(name)
            with self.edit_document() as data:
                self._claim(data, "actions", f"action {name!r}", expected_version, name=name)
                _remove(data, "actions", name=name)
                _remove(data, "action_images", action=name)

    # --- action images ------------------------------------------------------------------
    def set_action_image(self, action: str, shot_type: str, pose_image, pose_mask, face_mask, *,
                         placement: dict | None = None, keypoints: list | None = None,
                         expected_version: int | None = None) -> ActionImage:
        """Create or replace the images of one action at one shot distance.

        The three images must have one size; masks are thresholded to 0/255 and the face
        mask must lie inside the pose mask, because the face pass paints only where the
        body pass already put a person. `expected_version` is the version the editor showed,
        0 for images it showed as missing.
        """
        shot_type = check_shot_type(shot_type)
        placement = check_placement(placement)
        pose = pose_image if isinstance(pose_image, Image.Image) else \
            images.load_image(pose_image, field="pose_image")
        pmask = images.binarize(pose_mask if isinstance(pose_mask, Image.Image) else
                                images.load_image(pose_mask, field="pose_mask", mode="L"))
        fmask = images.binarize(face_mask if isinstance(face_mask, Image.Image) else
                                images.load_image(face_mask, field="face_mask", mode="L"))
        pose = pose.convert("RGB")
        for fname, m in (("pose_mask", pmask), ("face_mask", fmask)):
            if m.size != pose.size:
                raise InvalidInput(fname, f"{m.width}x{m.height}", f"{pose.width}x{pose.height} "
                                   "(the pose image's size)", reason="size differs from the pose image")
            if m.getbbox() is None:
                raise InvalidInput(fname, "empty mask", "a mask with a white area", reason="mask is all black")
        check_face_inside(pmask, fmask)
        with self._locked():
            self.get_action(action)
            q = (Query().action == action) & (Query().shot_type == shot_type)
            old = self._t("action_images").search(q)
            version = _check_version(f"action image {action!r}/{shot_type}", old[0] if old else None,
                                     expected_version)
            stored: list[str] = []
            try:
                for img, kind in ((pose, "pose"), (pmask, "mask"), (fmask, "mask")):
                    stored.append(self.store_image(img, kind))
                rec = ActionImage(action, shot_type, *stored, pose.width, pose.height, placement, keypoints,
                                  version + 1)
                # One write either way, so a full disk never leaves the action without its images.
                if old:
                    self._t("action_images").update(asdict(rec), q)
                else:
                    self._t("action_images").insert(asdict(rec))
            except BaseException:
                self._drop_unreferenced(set(stored))
                raise
            if old:
                self._drop_unreferenced({old[0][f] for f in _FILE_FIELDS["action_images"]})
        return rec

    def load_action_images(self, rec: ActionImage) -> dict:
        """The images and keypoints of one action image record, ready for poses.compose_on_poi."""
        kps = [None if p is None else (float(p[0]), float(p[1])) for p in rec.keypoints] \
            if rec.keypoints else None
        return {"pose": self.open_asset(rec.pose_image), "pose_mask": self.open_asset(rec.pose_mask, "L"),
                "face_mask": self.open_asset(rec.face_mask, "L"), "keypoints": kps}

    def update_placement(self, action: str, shot_type: str, placement: dict | None, *,
                         expected_version: int | None = None) -> ActionImage:
        shot_type = check_shot_type(shot_type)
        placement = check_placement(placement)
        with self._locked():
            self.get_action_image(action, shot_type)
            q = (Query().action == action) & (Query().shot_type == shot_type)
            self._update("action_images", q, {"placement": placement},
                         f"action image {action!r}/{shot_type}", expected_version)
            return self.get_action_image(action, shot_type)

    def get_action_image(self, action: str, shot_type: str) -> ActionImage:
        shot_type = check_shot_type(shot_type)
        with self._locked():
            self.get_action(action)
            docs = self._t("action_images").search((Query().action == action) &
                                                   (Query().shot_type == shot_type))
            if not docs:
                have = ", ".join(self.shot_types(action)) or "none"
                raise NotFound(f"action_shot_type: action {action!r} has no {shot_type} images; "
                               f"available: {have}")
        return _from_doc("action_images", docs[0])

    def shot_types(self, action: str) -> list[str]:
        with self._locked():
            found = {d["shot_type"] for d in self._t("action_images").search(Query().action == action)}
        return [s for s in SHOT_TYPES if s in found]

    def list_action_images(self, action: str | None = None) -> list[ActionImage]:
        with self._locked():
            docs = self._t("action_images").all() if action is None else \
                self._t("action_images").search(Query().action == action)
        order = {s: i for i, s in enumerate(SHOT_TYPES)}
        return sorted((_from_doc("action_images", d) for d in docs),
                      key=lambda r: (r.action, order[r.shot_type]))

    def delete_action_image(self, action: str, shot_type: str) -> None:
        with self._locked():
            rec = self.get_action_image(action, shot_type)
            self._t("action_images").remove((Query().action == rec.action) &
                                            (Query().shot_type == rec.shot_type))
            self._drop_unreferenced({rec.pose_image, rec.pose_mask, rec.face_mask})

    # --- bookkeeping --------------------------------------------------------------------
    def get_meta(self, key: str, default=None):
        with self._locked():
            docs = self._t("meta").search(Query().key == key)
        return docs[0]["value"] if docs else default

    def set_meta(self, key: str, value) -> None:
        with self._locked():
            self._t("meta").upsert({"key": key, "value": value}, Query().key == key)

    # --- whole catalog ------------------------------------------------------------------
    def summary(self) -> dict:
        """The shape `python -m engine catalog --json` promises to scripts."""
        with self._locked():
            pois = [{"name": p.name, "description": p.description, "translations": p.translations,
                     "images": [{"name": i.name, "description": i.description,
                                 "translations": i.translations, "width": i.width, "height": i.height}
                                for i in self.list_poi_images(p.name)]}
                    for p in self.list_pois()]
            actions = [{"name": a.name, "description": a.description, "translations": a.translations,
                        "shot_types": self.shot_types(a.name)} for a in self.list_actions()]
        return {"pois": pois, "actions": actions}

    def validate(self) -> list[str]:
        """Every problem a generation would trip over, as readable lines (empty = healthy)."""
        problems: list[str] = []
        with self._locked():
            for rec in self.list_poi_images():
                try:
                    img = self.open_asset(rec.file)
                    if img.size != (rec.width, rec.height):
                        problems.append(f"POI image {rec.poi}/{rec.name}: size {img.size} "
                                        f"differs from the recorded {rec.width}x{rec.height}")
                except Exception as exc:
                    problems.append(f"POI image {rec.poi}/{rec.name}: {exc}")
            for rec in self.list_action_images():
                where = f"action image {rec.action}/{rec.shot_type}"
                try:
                    pose = self.open_asset(rec.pose_image)
                    pm = self.open_asset(rec.pose_mask, "L")
                    fm = self.open_asset(rec.face_mask, "L")
                except Exception as exc:
                    problems.append(f"{where}: {exc}")
                    continue
                for label, m in (("pose mask", pm), ("face mask", fm)):
                    if m.size != pose.size:
                        problems.append(f"{where}: {label} size {m.size} differs from pose {pose.size}")
                    if not images.is_binary(m):
                        problems.append(f"{where}: {label} is not binary (0/255)")
                if pm.size == fm.size:
                    try:
                        check_face_inside(pm, fm)
                    except InvalidInput as exc:
                        problems.append(f"{where}: {exc}")
            for a in self.list_actions():
                if not self.shot_types(a.name):
                    problems.append(f"action {a.name}: no images for any shot type")
            pois = set(self.poi_names())
            for rec in self.list_poi_images():
                if rec.poi not in pois:
                    problems.append(f"POI image {rec.poi}/{rec.name}: its POI does not exist")
        return problems


def check_face_inside(pose_mask: Image.Image, face_mask: Image.Image) -> None:
    import numpy as np
    p = np.asarray(pose_mask.convert("L")) >= 128
    f = np.asarray(face_mask.convert("L")) >= 128
    outside = int((f & ~p).sum())
    if outside:
        raise InvalidInput("face_mask", f"{outside} pixels outside the pose mask",
                           "a face mask entirely inside the pose mask",
                           reason="face mask reaches outside the pose mask")

