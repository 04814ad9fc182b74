"""Catalogs that travel: export then import gives the same catalog and the same pictures, and an
archive that is not what it claims is refused whole, with nothing changed."""

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from engine.catalog import Catalog
from engine.catalog_archive import MAX_ENTRIES, MAX_RATIO, export_catalog, import_catalog
from engine.errors import Conflict, InvalidInput
from tests.server import REPO
from tests.test_catalog import _pose_set


def _engine(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True,
                          env={"CARTOLINA_HOME": str(home), "PATH": "/usr/bin:/bin"}, timeout=120)


def _pictures(home: Path) -> list[bytes]:
    """Every picture the catalog points to, in the catalog's order (names differ between homes)."""
    cat = Catalog(home / "catalog_db.json", home / "assets")
    rels = [r.file for r in cat.list_poi_images()]
    rels += [getattr(r, f) for r in cat.list_action_images() for f in ("pose_image", "pose_mask", "face_mask")]
    return [cat.asset_path(rel).read_bytes() for rel in rels]


def test_export_then_import_into_an_empty_data_root_gives_the_same_catalog(demo_home, tmp_path):
    cat = Catalog(demo_home / "catalog_db.json", demo_home / "assets")
    cat.reorder_pois(list(reversed(cat.poi_names())))  # a curator's order travels too
    cat.update_poi("Lungomare", translations={"it": {"title": "Il lungomare"}})
    archive = tmp_path / "catalog.zip"
    exported = _engine(demo_home, "catalog", "export", str(archive), "--json")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["pois"] == 4
    empty = tmp_path / "elsewhere"
    imported = _engine(empty, "catalog", "import", str(archive))
    assert imported.returncode == 0, imported.stderr
    assert "imported (into an empty catalog) 4 POIs" in imported.stdout
    assert _engine(empty, "catalog", "--json").stdout == _engine(demo_home, "catalog", "--json").stdout
    assert _pictures(empty) == _pictures(demo_home)  # byte for byte
    assert _engine(empty, "catalog", "--validate").returncode == 0
    assert not list(empty.glob(".catalog-import-*"))


def test_an_import_over_a_catalog_must_say_replace_or_merge(demo_home, tmp_path):
    archive = tmp_path / "catalog.zip"
    assert _engine(demo_home, "catalog", "export", str(archive)).returncode == 0
    refused = _engine(demo_home, "catalog", "import", str(archive))
    assert refused.returncode == 2 and "the catalog is not empty" in refused.stderr
    assert _engine(demo_home, "catalog", "import").returncode == 2  # no file


def _small(home: Path) -> Catalog:
    cat = Catalog(home / "catalog_db.json", home / "assets")
    cat.add_poi("Colosseo", "The amphitheatre")
    cat.add_poi_image("Colosseo", "Arches", Image.new("RGB", (40, 30), "tan"), "the arches")
    cat.add_action("waving", "waving a hand")
    cat.set_action_image("waving", "MES", *_pose_set(), placement={"x": 0.3, "bottom": 1, "height": 0.7},
                         keypoints=[[1.5, 2.0]] + [None] * 17)
    return cat


def _export(cat: Catalog) -> bytes:
    buf = io.BytesIO()
    export_catalog(cat, buf)
    return buf.getvalue()


def test_merge_keeps_what_the_archive_lacks_and_replace_does_not(tmp_path):
    source = _small(tmp_path / "a")
    source.update_poi("Colosseo", "the archive's text")
    archive = _export(source)
    target = _small(tmp_path / "b")
    target.add_poi("Pantheon")
    stale = target.get_poi("Colosseo").version
    report = import_catalog(target, io.BytesIO(archive), "merge")
    assert report["pois"] == 1 and report["mode"] == "merge"
    assert [p.name for p in target.list_pois()] == ["Colosseo", "Pantheon"]
    assert target.get_poi("Colosseo").description == "the archive's text"
    with pytest.raises(Conflict, match="changed meanwhile"):  # an editor still showing the old record
        target.update_poi("Colosseo", "mine", expected_version=stale)
    import_catalog(target, io.BytesIO(archive), "replace")
    assert target.poi_names() == ["Colosseo"]
    assert target.get_action_image("waving", "MES").keypoints[0] == [1.5, 2.0]
    assert target.validate() == []
    files = {p.relative_to(target.assets_dir) for p in target.assets_dir.rglob("*.png")}
    assert files == {Path(target.get_poi_image("Colosseo", "Arches").file)} | {
        Path(getattr(target.get_action_image("waving", "MES"), f)) for f in ("pose_image", "pose_mask", "face_mask")}


# --- malicious and broken archives -------------------------------------------------------------

def _members(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _with_manifest(archive: bytes, change) -> bytes:
    members = _members(archive)
    manifest = json.loads(members["manifest.json"])
    change(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    return _zip(members)


def _with_picture(archive: bytes, table: str, field: str, data: bytes) -> bytes:
    """The archive with one record's picture swapped for `data`, named by its hash as it should be."""
    members = _members(archive)
    manifest = json.loads(members["manifest.json"])
    sha = hashlib.sha256(data).hexdigest()
    old = manifest["records"][table][0][field]
    manifest["records"][table][0][field] = sha
    if not any(old == rec.get(f) for rows in manifest["records"].values() for rec in rows for f in rec):
        del members[f"assets/{old}.png"]
    members[f"assets/{sha}.png"] = data
    members["manifest.json"] = json.dumps(manifest).encode()
    return _zip(members)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _first_asset(archive: bytes) -> str:
    return next(n for n in _members(archive) if n.startswith("assets/"))


BAD = {
    "dot-dot name": (lambda a: _zip({**_members(a), "../evil.png": b"x"}), "unexpected member"),
    "absolute path": (lambda a: _zip({**_members(a), "/etc/cron.d/evil": b"x"}), "unexpected member"),
    "asset in a subfolder": (lambda a: _zip({("assets/../" + n[7:] if n.startswith("assets/") else n): d
                                             for n, d in _members(a).items()}), "unexpected member"),
    "zip bomb": (lambda a: _zip({**_members(a), "assets/" + "0" * 64 + ".png": b"\0" * (MAX_RATIO * 40_000)},
                                zipfile.ZIP_DEFLATED), "zip bomb"),
    "too many members": (lambda a: _zip({**_members(a), **{f"assets/{i:064x}.png": b"" for i in range(MAX_ENTRIES)}}),
                         "too many members"),
    "not a zip": (lambda a: b"PK\x03\x04 not really", "not a zip file"),
    "non-image": (lambda a: _with_picture(a, "poi_images", "file", b"#!/bin/sh\necho pwned\n"), "not a PNG"),
    "JPEG named .png": (lambda a: _with_picture(a, "poi_images", "file", _jpeg()), "not a PNG"),
    "truncated picture": (lambda a: _with_picture(a, "poi_images", "file", _png(Image.new("RGB", (40, 30)))[:60]),
                          "truncated or corrupt"),
    "size unlike the record": (lambda a: _with_picture(a, "poi_images", "file", _png(Image.new("RGB", (41, 30)))),
                               "record says 40x30"),
    "grey mask": (lambda a: _with_picture(a, "action_images", "pose_mask", _png(Image.new("L", (64, 96), 128))),
                  "black and white"),
    "content unlike its name": (lambda a: _zip({n: (b"x" + d if n.startswith("assets/") else d)
                                                for n, d in _members(a).items()}), "does not match its name"),
    "no manifest": (lambda a: _zip({n: d for n, d in _members(a).items() if n != "manifest.json"}), "no manifest"),
    "manifest not JSON": (lambda a: _zip({**_members(a), "manifest.json": b"{oops"}), "not JSON"),
    "another format": (lambda a: _with_manifest(a, lambda m: m.update(format="zipped-photos")), "format is"),
    "a newer format": (lambda a: _with_manifest(a, lambda m: m.update(format_version=2)), "update the studio"),
    "unknown field": (lambda a: _with_manifest(a, lambda m: m["records"]["pois"][0].update(path="/etc/passwd")),
                      "unknown fields"),
    "bad name": (lambda a: _with_manifest(a, lambda m: m["records"]["pois"][0].update(name="../x")), "poi_name"),
    "file as a path": (lambda a: _with_manifest(a, lambda m: m["records"]["poi_images"][0].update(
        file="../../catalog_db.json")), "sha256"),
    "photo of no place": (lambda a: _with_manifest(a, lambda m: m["records"]["poi_images"][0].update(poi="Nowhere")),
                          "not in the archive"),
    "record twice": (lambda a: _with_manifest(a, lambda m: m["records"]["actions"].append(m["records"]["actions"][0])),
                     "appears twice"),
    "bad placement": (lambda a: _with_manifest(a, lambda m: m["records"]["action_images"][0].update(
        placement={"x": 9, "bottom": 1, "height": 1})), "placement.x"),
    "bad keypoints": (lambda a: _with_manifest(a, lambda m: m["records"]["action_images"][0].update(
        keypoints=[["x", 1]])), "keypoints"),
    "unused picture": (lambda a: _zip({**_members(a), f"assets/{hashlib.sha256(b'z').hexdigest()}.png": b"z"}),
                       "not used by any record"),
}


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def _state(home: Path) -> dict:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()
            and not p.name.endswith(".lock")}


@pytest.mark.parametrize("mode", ["merge", "replace"])
@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_archive_is_refused_whole_and_changes_nothing(tmp_path, case, mode):
    make, message = BAD[case]
    archive = make(_export(_small(tmp_path / "source")))
    target = _small(tmp_path / "target")
    target.add_poi("Pantheon")
    before = _state(tmp_path / "target")
    with pytest.raises(InvalidInput) as err:
        import_catalog(target, io.BytesIO(archive), mode)
    assert err.value.field == "archive" and message in str(err.value)
    assert _state(tmp_path / "target") == before
    assert not list((tmp_path / "target").glob(".catalog-import-*"))


def test_a_failure_while_landing_leaves_the_catalog_and_its_pictures_as_they_were(tmp_path, monkeypatch):
    archive = _export(_small(tmp_path / "source"))
    target = _small(tmp_path / "target")
    before = _state(tmp_path / "target")

    def full_disk(self, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(type(target._db.storage), "write", full_disk)
    with pytest.raises(OSError):
        import_catalog(target, io.BytesIO(archive), "replace")
    assert _state(tmp_path / "target") == before
