"""Catalogs that travel: the whole catalog and its pictures in one zip file, and back.

A curator perfects the catalog at one kiosk and copies it to the next. The archive comes from
outside (a USB stick, a mail), so an import trusts nothing in it:

* names: the only members are `manifest.json` and `assets/<sha256>.png`, an asset's name being
  the hash of its bytes (checked). Nothing in the archive is ever used as a path: the pictures
  land under names the catalog makes up, so `../x` or `/etc/x` are merely unknown members;
* sizes (zip bombs), from the archive's directory before anything is decompressed: at most
  `MAX_ENTRIES` members, each at most `MAX_MEMBER_BYTES` and all together `MAX_TOTAL_BYTES`
  uncompressed, none packed tighter than `MAX_RATIO`; reading stops at the declared size;
* records: the manifest's format and version, then every record by the catalog's own rules
  (names, texts, translations, shot types, placements, keypoints), every reference resolved
  (a photo's POI, an image's action, each file), no record twice, no field unknown;
* pictures: every one through the safe loader (`engine.images`), PNG only, sizes as recorded,
  masks binary and not empty, each face inside its person.

Only then does anything change: the pictures, unpacked into a folder in the data root, move into
`assets/` under new names, and the catalog file is replaced in one atomic write under the
catalog's lock. A refused or failed import leaves the catalog and `assets/` as they were.
Records that land count a new version, so an editor still showing the old one cannot overwrite
them (`Catalog` docstring).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import shutil
import tempfile
import time
import zipfile
import zlib
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from engine import images
from engine.catalog import (Catalog, check_description, check_face_inside, check_name, check_placement,
                            check_translations)
from engine.catalog_store import check_document
from engine.errors import CatalogError, InvalidInput
from engine.poses import KEYPOINT_NAMES, check_shot_type

FORMAT = "cartolina-catalog"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODES = ("replace", "merge")

MAX_ENTRIES = 5000
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_RATIO = 100  # uncompressed / compressed, for members over RATIO_FLOOR bytes
RATIO_FLOOR = 1024 * 1024
STAGE_PREFIX = ".catalog-import-"
STAGE_GRACE_S = 3600.0  # a stage folder older than this was left by an import that died

_ASSET_RE = re.compile(r"^assets/([0-9a-f]{64})\.png$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_META_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MEMBERS_RULE = "manifest.json and assets/<sha256 of the file>.png"

# Per table: key fields, the other required fields, the optional ones, and which are files.
_TABLES = {
    "pois": (("name",), (), ("description", "translations", "order"), ()),
    "poi_images": (("poi", "name"), ("file", "width", "height"), ("description", "translations", "order"),
                   ("file",)),
    "actions": (("name",), (), ("description", "translations", "order"), ()),
    "action_images": (("action", "shot_type"), ("pose_image", "pose_mask", "face_mask", "width", "height"),
                      ("placement", "keypoints"), ("pose_image", "pose_mask", "face_mask")),
}
_ASSET_KIND = {"file": "poi", "pose_image": "pose", "pose_mask": "mask", "face_mask": "mask"}
_NAME_FIELDS = {("pois", "name"): "poi_name", ("poi_images", "poi"): "poi_name",
                ("poi_images", "name"): "poi_image", ("actions", "name"): "action_name",
                ("action_images", "action"): "action_name"}


def refused(what: str, reason: str) -> InvalidInput:
    return InvalidInput("archive", what, f"a catalog archive ({MEMBERS_RULE})", reason=reason)


# --- export --------------------------------------------------------------------------------

def export_catalog(cat: Catalog, out: BinaryIO) -> dict:
    """Write the whole catalog with its pictures to `out` as a zip; what it holds, counted."""
    with cat.locked():
        data = cat.document()
        records = {table: _exported(data.get(table, {})) for table in _TABLES}
        files = {}
        for table, (_, _, _, file_fields) in _TABLES.items():
            for rec in records[table]:
                for f in file_fields:
                    try:
                        raw = cat.asset_path(rec[f]).read_bytes()
                    except OSError as exc:
                        raise CatalogError(f"cannot export: {rec[f]} ({exc.strerror}); "
                                           "`python -m engine catalog --validate` lists what is missing") from None
                    rec[f] = hashlib.sha256(raw).hexdigest()
                    files[rec[f]] = raw
        meta = {d["key"]: d["value"] for d in data.get("meta", {}).values()}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "records": records, "meta": meta}
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1), zipfile.ZIP_DEFLATED)
        for sha, raw in sorted(files.items()):
            zf.writestr(f"assets/{sha}.png", raw, zipfile.ZIP_STORED)  # PNGs are compressed already
    return {**{table: len(rows) for table, rows in records.items()}, "assets": len(files)}


def _exported(rows: dict) -> list[dict]:
    """A table's records in their list order, without what only means something here (the
    version counts this catalog's edits)."""
    docs = sorted(rows.values(), key=lambda d: (d.get("order", 0), d.get("poi", d.get("action", "")),
                                                d.get("name", d.get("shot_type", ""))))
    return [{k: v for k, v in d.items() if k != "version"} for d in docs]


# --- import --------------------------------------------------------------------------------

def import_catalog(cat: Catalog, source: str | Path | BinaryIO, mode: str | None = None) -> dict:
    """Check the archive in `source` whole, then land it whole: `replace` the catalog's records,
    or `merge` them (the archive's win over records with the same name; the rest stay).
    Without a mode only an empty catalog takes an import, so none is overwritten by accident."""
    if mode is not None and mode not in MODES:
        raise InvalidInput("mode", mode, MODES)
    root = cat.assets_dir.parent
    root.mkdir(parents=True, exist_ok=True)
    _sweep_stages(root)
    stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=root))
    try:
        manifest, staged = _unpack(source, stage)
        records, meta = _check_manifest(manifest, set(staged))
        _check_pictures(records, staged)
        return _land(cat, records, meta, staged, mode)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _sweep_stages(root: Path) -> None:
    cutoff = time.time() - STAGE_GRACE_S
    for old in root.glob(STAGE_PREFIX + "*"):
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


def _shown_name(source) -> str:
    return Path(source).name if isinstance(source, (str, Path)) else getattr(source, "name", None) or "<upload>"


def _unpack(source, stage: Path) -> tuple[Any, dict[str, Path]]:
    """The manifest, and every asset unpacked into `stage` under its checked hash."""
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise refused(_shown_name(source), f"not a zip file ({exc})") from None
    manifest, staged = None, {}
    with zf:
        infos = zf.infolist()
        _check_directory(infos)
        for info in infos:
            if info.filename == MANIFEST:
                buf = io.BytesIO()
                _copy_member(zf, info, buf)
                try:
                    manifest = json.loads(buf.getvalue().decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise refused(MANIFEST, f"not JSON text ({exc})") from None
                continue
            sha = _ASSET_RE.match(info.filename).group(1)
            target = stage / f"{len(staged)}.png"
            with open(target, "xb") as fh:
                if _copy_member(zf, info, fh) != sha:
                    raise refused(info.filename, "its content does not match its name (damaged or altered)")
            staged[sha] = target
    if manifest is None:
        raise refused(_shown_name(source), f"no {MANIFEST}")
    return manifest, staged


def _check_directory(infos: list[zipfile.ZipInfo]) -> None:
    """Everything the archive's directory tells, before a byte is decompressed."""
    if len(infos) > MAX_ENTRIES:
        raise refused(f"{len(infos)} members", f"too many members (at most {MAX_ENTRIES})")
    seen, total = set(), 0
    for info in infos:
        name = info.filename
        if name != MANIFEST and not _ASSET_RE.match(name):
            raise refused(name, "unexpected member: an archive holds only " + MEMBERS_RULE)
        if name in seen:
            raise refused(name, "member appears twice")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise refused(name, "encrypted member")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise refused(name, "unsupported compression (stored or deflated only)")
        limit = MAX_MANIFEST_BYTES if name == MANIFEST else MAX_MEMBER_BYTES
        if info.file_size > limit:
            raise refused(name, f"member too large ({info.file_size} bytes, at most {limit})")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise refused(name, f"packed more than {MAX_RATIO}:1 (a zip bomb?)")
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise refused(f"{total} bytes", f"too large unpacked (at most {MAX_TOTAL_BYTES} bytes)")


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dst: BinaryIO) -> str:
    """Unpack one member into `dst`, never more than its declared size; its sha256."""
    digest, left = hashlib.sha256(), info.file_size
    try:
        with zf.open(info) as src:
            while chunk := src.read(min(left + 1, 1024 * 1024)):
                left -= len(chunk)
                if left < 0:
                    raise refused(info.filename, "larger than its declared size")
                digest.update(chunk)
                dst.write(chunk)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise refused(info.filename, f"damaged member ({exc})") from None
    if left:
        raise refused(info.filename, "shorter than its declared size")
    return digest.hexdigest()


# --- the manifest ----------------------------------------------------------------------------

def _check_manifest(manifest: Any, assets: set[str]) -> tuple[dict[str, list[dict]], dict]:
    """The archive's records and bookkeeping, cleaned by the catalog's rules, or a refusal
    naming the first record that breaks one."""
    if not isinstance(manifest, dict):
        raise refused(MANIFEST, "not a JSON object")
    if manifest.get("format") != FORMAT:
        raise refused(MANIFEST, f"format is {manifest.get('format')!r}, not {FORMAT!r}")
    version = manifest.get("format_version")
    if not _whole(version, 1, 10**6):
        raise refused(MANIFEST, f"format_version {version!r} is not a whole number")
    if version > FORMAT_VERSION:
        raise refused(MANIFEST, f"format version {version} is newer than this studio reads "
                                f"({FORMAT_VERSION}): update the studio first")
    unknown = set(manifest) - {"format", "format_version", "exported_at", "records", "meta"}
    if unknown:
        raise refused(MANIFEST, f"unknown fields {sorted(unknown)}")
    given = manifest.get("records")
    if not isinstance(given, dict) or set(given) - set(_TABLES):
        raise refused(MANIFEST, f"records must be an object with the lists {', '.join(_TABLES)}")
    records = {}
    for table in _TABLES:
        rows = given.get(table, [])
        if not isinstance(rows, list):
            raise refused(MANIFEST, f"records.{table} is not a list")
        records[table] = [_check_record(table, i, doc) for i, doc in enumerate(rows)]
    _check_references(records, assets)
    return records, _check_meta(manifest.get("meta", {}))


def _check_record(table: str, index: int, doc: Any) -> dict:
    where = f"{table}[{index}]"
    if not isinstance(doc, dict):
        raise refused(where, "not a JSON object")
    keys, required, optional, _ = _TABLES[table]
    missing = [f for f in (*keys, *required) if f not in doc]
    if missing:
        raise refused(where, f"missing {', '.join(missing)}")
    unknown = set(doc) - {*keys, *required, *optional}
    if unknown:
        raise refused(where, f"unknown fields {sorted(unknown)}")
    try:
        return {f: _check_field(table, f, v) for f, v in doc.items()}
    except InvalidInput as exc:
        raise refused(where, str(exc)) from None


def _check_field(table: str, name: str, value: Any) -> Any:
    if (table, name) in _NAME_FIELDS:
        clean = check_name(_NAME_FIELDS[table, name], value)
        if clean != value:  # references compare names as stored
            raise InvalidInput(name, value, "the name as the catalog stores it", reason="not in normal form")
        return clean
    if name == "description":
        return check_description(name, value)
    if name == "translations":
        return {lang: texts for lang, texts in check_translations(value).items() if texts}
    if name == "shot_type":
        return check_shot_type(value)
    if name == "placement":
        return check_placement(value)
    if name == "keypoints":
        return _check_keypoints(value)
    if name == "order":
        if not _whole(value, 0, 10**6):
            raise InvalidInput(name, value, "a whole number from 0")
        return value
    if name in ("width", "height"):
        if not _whole(value, 1, 10**5):
            raise InvalidInput(name, value, "a whole number of pixels")
        return value
    if not (isinstance(value, str) and _SHA_RE.match(value)):  # a file field
        raise InvalidInput(name, value, "the sha256 of a picture in the archive")
    return value


def _whole(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _check_keypoints(value: Any) -> list | None:
    accepted = f"null or {len(KEYPOINT_NAMES)} points, each null or [x, y]"
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != len(KEYPOINT_NAMES):
        raise InvalidInput("keypoints", value, accepted)
    for point in value:
        if point is not None and not (isinstance(point, list) and len(point) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e6 for v in point)):
            raise InvalidInput("keypoints", point, accepted)
    return value


def _check_references(records: dict[str, list[dict]], assets: set[str]) -> None:
    for table, (keys, *_) in _TABLES.items():
        seen = set()
        for i, rec in enumerate(records[table]):
            key = tuple(rec[k] for k in keys)
            if key in seen:
                raise refused(f"{table}[{i}]", f"{'/'.join(key)} appears twice")
            seen.add(key)
    pois = {r["name"] for r in records["pois"]}
    actions = {r["name"] for r in records["actions"]}
    for table, field_name, known in (("poi_images", "poi", pois), ("action_images", "action", actions)):
        for i, rec in enumerate(records[table]):
            if rec[field_name] not in known:
                raise refused(f"{table}[{i}]", f"its {field_name} {rec[field_name]!r} is not in the archive")
    used = {rec[f] for table, (*_, files) in _TABLES.items() for rec in records[table] for f in files}
    if used - assets:
        raise refused(f"assets/{sorted(used - assets)[0]}.png", "named by a record but not in the archive")
    if assets - used:
        raise refused(f"assets/{sorted(assets - used)[0]}.png", "not used by any record")


def _check_meta(meta: Any) -> dict:
    """The catalog's bookkeeping (e.g. that the demo was seeded, so `demo` adds nothing back)."""
    if not isinstance(meta, dict):
        raise refused(MANIFEST, "meta is not an object")
    for key, value in meta.items():
        if not _META_KEY_RE.match(key) or not (
                isinstance(value, (bool, int)) or (isinstance(value, str) and len(value) <= 200)):
            raise refused(MANIFEST, f"meta {key!r}: a short name with a flag, number or short text expected")
    return meta


# --- the pictures ----------------------------------------------------------------------------

def _check_pictures(records: dict[str, list[dict]], staged: dict[str, Path]) -> None:
    """Every picture as the catalog would take it from a curator (`Catalog.set_action_image`)."""
    for i, rec in enumerate(records["poi_images"]):
        _picture(staged[rec["file"]], f"poi_images[{i}] file", "RGB", rec)
    for i, rec in enumerate(records["action_images"]):
        where = f"action_images[{i}]"
        _picture(staged[rec["pose_image"]], f"{where} pose_image", "RGB", rec)
        masks = [_picture(staged[rec[f]], f"{where} {f}", "L", rec) for f in ("pose_mask", "face_mask")]
        try:
            check_face_inside(*masks)
        except InvalidInput as exc:
            raise refused(where, str(exc)) from None


def _picture(path: Path, where: str, mode: str, rec: dict):
    with open(path, "rb") as fh:
        if fh.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
            raise refused(where, "not a PNG picture")
    try:
        img = images.load_image(path, field=where, mode=mode, max_bytes=MAX_MEMBER_BYTES, max_side=None)
    except InvalidInput as exc:
        raise refused(where, str(exc)) from None
    if img.size != (rec["width"], rec["height"]):
        raise refused(where, f"{img.width}x{img.height}, but the record says {rec['width']}x{rec['height']}")
    if mode == "L" and not (images.is_binary(img) and img.getbbox()):
        raise refused(where, "a mask must be black and white (0/255) with a white area")
    return img


# --- landing ---------------------------------------------------------------------------------

def _land(cat: Catalog, records: dict[str, list[dict]], meta: dict, staged: dict[str, Path],
          mode: str | None) -> dict:
    """Copy the pictures into assets/, then swap the catalog in one write under its lock; on
    any failure the copies go again and the catalog stays as it was."""
    placed: dict[tuple[str, str], str] = {}
    try:
        for table, (*_, files) in _TABLES.items():
            for rec in records[table]:
                for f in files:
                    where = (rec[f], _ASSET_KIND[f])
                    if where not in placed:
                        rel = f"{where[1]}/{secrets.token_hex(8)}.png"
                        images.atomic_write_bytes(cat.assets_dir / rel, staged[where[0]].read_bytes())
                        placed[where] = rel
                    rec[f] = placed[where]
        with cat.edit_document() as data:
            if mode is None and any(data.get(table) for table in _TABLES):
                raise InvalidInput("mode", None, "replace or merge",
                                   reason="the catalog is not empty: say whether the archive replaces it "
                                          "or merges into it")
            _merge_into(data, records, meta, replace=mode != "merge")
            check_document(json.dumps(data).encode("utf-8"), cat.path or Path("catalog"))
    except BaseException:
        kept = {d[f] for table, (*_, files) in _TABLES.items()
                for d in cat.document().get(table, {}).values() for f in files if f in d}
        for rel in set(placed.values()) - kept:
            (cat.assets_dir / rel).unlink(missing_ok=True)
        raise
    return {"mode": mode or "into an empty catalog",
            **{table: len(rows) for table, rows in records.items()}, "assets": len(placed)}


def _merge_into(data: dict, records: dict[str, list[dict]], meta: dict, replace: bool) -> None:
    """Put the archive's records into the catalog document. Each lands one version past the
    record it replaces, so an editor still showing that one is refused. Lists are numbered
    afresh: on a merge the catalog's records keep their places and new ones follow."""
    for table, (keys, _, optional, _) in _TABLES.items():
        old = {tuple(d[k] for k in keys): d for d in
               sorted(data.get(table, {}).values(), key=lambda d: (d.get("order", 0), d.get("name", "")))}
        new = {tuple(r[k] for k in keys): r for r in records[table]}
        for key, rec in new.items():
            rec["version"] = old[key].get("version", 1) + 1 if key in old else 1
        if replace:
            rows = sorted(new.values(), key=lambda r: (r.get("order", 0), r.get("name", "")))
        else:
            rows = [new.get(key, doc) for key, doc in old.items()] + [r for k, r in new.items() if k not in old]
        if "order" in optional:
            places = defaultdict(int)
            for row in rows:
                group = tuple(row[k] for k in keys[:-1])
                row["order"] = places[group]
                places[group] += 1
        data[table] = {str(i): row for i, row in enumerate(rows, 1)}
    if meta:
        rows = {d["key"]: d for d in data.get("meta", {}).values()}
        rows.update({key: {"key": key, "value": value} for key, value in meta.items()})
        data["meta"] = {str(i): row for i, row in enumerate(rows.values(), 1)}
