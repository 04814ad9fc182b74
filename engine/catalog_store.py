"""The catalog file on disk: read only what is a catalog, replace it atomically, keep a backup.

TinyDB takes whatever JSON its storage returns: an empty file or `null` reads as an empty
catalog (and the next write, `python -m engine demo` for one, replaces the curators' work with
it), a list or a string crashes deep inside TinyDB, a record without a name crashes the page
that lists it. So every read checks the document's shape and refuses a bad one with a
`CatalogError` naming the file, what is wrong and the way back:

* before each replace, the catalog being replaced, if it reads as a catalog, is copied to
  `catalog_db.json.bak`; `python -m engine catalog restore` puts it back (`restore`);
* a writer killed between its temp file and the replace leaves `.catalog_db.json.*.tmp`
  behind; the next write removes those older than a minute (a live writer holds the
  catalog's lock and finishes in far less).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import NoneType

from filelock import FileLock
from tinydb.storages import Storage

from engine import images
from engine.errors import CatalogError

__all__ = ["AtomicJSONStorage", "backup_path", "check_document", "restore", "RESTORE_HINT"]

RESTORE_HINT = ("restore the last good catalog with `python -m engine catalog restore`, "
                "or fix the file by hand")
TEMP_GRACE_S = 60.0
LOCK_TIMEOUT_S = 30

# What each table's records must hold; every other field is optional, with these types.
_REQUIRED = {"pois": ("name",), "poi_images": ("poi", "name", "file"), "actions": ("name",),
             "action_images": ("action", "shot_type", "pose_image", "pose_mask", "face_mask"),
             "meta": ("key",)}
_TYPES = {"name": str, "poi": str, "file": str, "action": str, "shot_type": str,
          "pose_image": str, "pose_mask": str, "face_mask": str, "key": str,
          "description": str, "translations": dict, "width": int, "height": int,
          "order": int, "version": int,
          "placement": (dict, NoneType), "keypoints": (list, NoneType)}
_TYPE_NAMES = {str: "text", dict: "an object", int: "an integer", list: "a list"}


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _problem(data) -> str | None:
    """What makes `data` not a catalog, in words; None when it is one."""
    if data is None:
        return "holds `null`, not a catalog"
    if not isinstance(data, dict):
        return f"holds {_TYPE_NAMES.get(type(data), type(data).__name__)} ({_shown(data)}), not a catalog"
    for table, records in data.items():
        if not isinstance(records, dict):
            return f"table {table!r} is {_shown(records)}, not an object of records"
        for doc_id, doc in records.items():
            where = f"{table} record {doc_id}"
            if not doc_id.isdigit():
                return f"{where}: the record id must be a number"
            if not isinstance(doc, dict):
                return f"{where} is {_shown(doc)}, not an object"
            for name in _REQUIRED.get(table, ()):
                if name not in doc:
                    return f"{where} has no {name!r}"
            if table not in _REQUIRED:
                continue
            for name, value in doc.items():
                kind = _TYPES.get(name)
                if kind is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                    wanted = kind if isinstance(kind, type) else kind[0]
                    return f"{where}: {name!r} must be {_TYPE_NAMES[wanted]} (got {_shown(value)})"
            for lang, texts in doc.get("translations", {}).items():
                if not isinstance(texts, dict) or not all(isinstance(t, str) for t in texts.values()):
                    return f"{where}: translations {lang!r} must map title/description to text"
            for point in doc.get("keypoints") or ():
                if point is not None and not (isinstance(point, list) and len(point) >= 2 and all(
                        isinstance(v, (int, float)) and not isinstance(v, bool) for v in point[:2])):
                    return f"{where}: keypoint {_shown(point)} is not null or [x, y]"
    return None


def check_document(raw: bytes, path: Path) -> dict:
    """The catalog in `raw`, or CatalogError naming `path`, the problem and the way back."""
    def bad(what: str) -> CatalogError:
        return CatalogError(f"catalog file {path} {what}; {RESTORE_HINT}")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise bad("is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad(f"is not valid JSON ({exc})") from None
    problem = _problem(data)
    if problem:
        raise bad(problem)
    return data


def _read_good(path: Path) -> bytes | None:
    """The file's bytes if it exists and reads as a catalog, else None."""
    try:
        raw = path.read_bytes()
        check_document(raw, path)
    except (OSError, CatalogError):
        return None
    return raw


def _sweep_temp_files(path: Path) -> None:
    cutoff = time.time() - TEMP_GRACE_S
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except OSError:
            pass


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a half-written file behind.

    TinyDB's own JSONStorage rewrites the file in place, so a crash mid-write corrupts the
    whole catalog; here the new document goes to a temp file that replaces the old one.
    A missing file is a new, empty catalog; anything else that is not a catalog is an error.
    """

    def __init__(self, path: str | Path, **_ignored):
        self.path = Path(path)

    def read(self) -> dict | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CatalogError(f"catalog file {self.path} cannot be read ({exc.strerror}); "
                               "check the data root's permissions") from None
        return check_document(raw, self.path)

    def write(self, data: dict) -> None:
        payload = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
        _sweep_temp_files(self.path)
        previous = _read_good(self.path)
        if previous is not None:
            images.atomic_write_bytes(backup_path(self.path), previous)
        images.atomic_write_bytes(self.path, payload)

    def close(self) -> None:
        pass


def restore(path: Path) -> dict:
    """Put the backup back in place of the catalog, under the catalog's lock.

    The file it replaces is kept beside it (`catalog_db.json.replaced-<time>`), so a restore
    loses nothing either; the backup is the catalog as it was before the last edit.
    """
    path = Path(path)
    backup = backup_path(path)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S):
        try:
            raw = backup.read_bytes()
        except FileNotFoundError:
            raise CatalogError(f"no backup to restore: {backup} does not exist (one is written at "
                               "each catalog edit, from a catalog that could be read)") from None
        data = check_document(raw, backup)
        set_aside = None
        if path.exists():
            set_aside = path.with_name(f"{path.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            images.atomic_write_bytes(set_aside, path.read_bytes())
        images.atomic_write_bytes(path, raw)
    return {"restored": str(path), "from": str(backup), "set_aside": set_aside and str(set_aside),
            "records": {table: len(records) for table, records in data.items()}}
