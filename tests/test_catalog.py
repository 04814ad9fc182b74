"""The catalog: typed records, unique names, atomic writes, cross-process safety, owned files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from engine.catalog import POI, Catalog, record_text
from engine.errors import CatalogError, Conflict, InvalidInput, NotFound

REPO = Path(__file__).resolve().parent.parent


def _pose_set(size=(64, 96)):
    pose = Image.new("RGB", size)
    ImageDraw.Draw(pose).line([(32, 10), (32, 80)], fill=(255, 0, 0), width=4)
    pmask = Image.new("L", size)
    ImageDraw.Draw(pmask).rectangle([10, 2, 54, 94], fill=255)
    fmask = Image.new("L", size)
    ImageDraw.Draw(fmask).ellipse([22, 4, 42, 24], fill=255)
    return pose, pmask, fmask


@pytest.fixture(params=["memory", "json"])
def cat(request, tmp_path):
    if request.param == "memory":
        return Catalog(None, tmp_path / "assets", memory=True)
    return Catalog(tmp_path / "catalog_db.json", tmp_path / "assets")


def test_records_round_trip(cat):
    cat.add_poi("Colosseo", "The Flavian amphitheatre")
    rec = cat.add_poi_image("Colosseo", "Arches", Image.new("RGB", (120, 80), "tan"), "arches at dusk")
    cat.add_action("waving", "waving a hand")
    cat.set_action_image("waving", "mes", *_pose_set(), placement={"x": 0.3, "bottom": 1, "height": 0.7})
    assert cat.get_poi("Colosseo").description == "The Flavian amphitheatre"
    assert cat.get_poi_image("Colosseo", "Arches") == rec
    assert (rec.width, rec.height) == (120, 80)
    ai = cat.get_action_image("waving", "MES")
    assert ai.placement == {"x": 0.3, "bottom": 1.0, "height": 0.7}
    assert cat.shot_types("waving") == ["MES"]
    assert cat.summary() == {
        "pois": [{"name": "Colosseo", "description": "The Flavian amphitheatre", "translations": {},
                  "images": [{"name": "Arches", "description": "arches at dusk", "translations": {},
                              "width": 120, "height": 80}]}],
        "actions": [{"name": "waving", "description": "waving a hand", "translations": {},
                     "shot_types": ["MES"]}]}
    assert cat.validate() == []


def test_translations_round_trip_and_one_language_never_touches_another(cat):
    cat.add_poi("Colosseum", "The Flavian amphitheatre")
    cat.add_poi_image("Colosseum", "Arches", Image.new("RGB", (12, 8)), "arches at dusk")
    cat.add_action("waving", "waving a hand")
    poi = cat.update_poi("Colosseum", translations={
        "it": {"title": " Colosseo ", "description": "L'anfiteatro  Flavio"},
        "de": {"title": "Kolosseum"}})
    assert poi == cat.get_poi("Colosseum")
    assert poi.translations == {"it": {"title": "Colosseo", "description": "L'anfiteatro Flavio"},
                                "de": {"title": "Kolosseum"}}
    assert poi.description == "The Flavian amphitheatre"  # no description given: kept
    poi = cat.update_poi("Colosseum", "The amphitheatre", translations={"it": {"title": "Il Colosseo"}})
    assert poi.translations == {"it": {"title": "Il Colosseo"}, "de": {"title": "Kolosseum"}}
    assert poi.description == "The amphitheatre"
    img = cat.update_poi_image("Colosseum", "Arches", translations={"it": {"title": "Archi"}})
    assert cat.get_poi_image("Colosseum", "Arches").translations == {"it": {"title": "Archi"}}
    assert img.description == "arches at dusk"
    cat.update_action("waving", translations={"it": {"title": "Saluto", "description": "Un saluto"}})
    assert cat.get_action("waving").translations == {"it": {"title": "Saluto", "description": "Un saluto"}}
    assert cat.summary()["actions"][0]["translations"] == {"it": {"title": "Saluto", "description": "Un saluto"}}


def test_a_visitor_reads_the_translation_else_english_else_the_name():
    poi = POI("Colosseum", "The Flavian amphitheatre",
              {"it": {"title": "Colosseo"}, "en": {"title": "The Colosseum"}})
    assert record_text(poi, "title", "it") == "Colosseo"
    assert record_text(poi, "description", "it") == "The Flavian amphitheatre"
    assert record_text(poi, "title", "fr") == "The Colosseum"
    assert record_text(POI("arms_crossed"), "title", "it") == "Arms crossed"  # a name written as an identifier, read as words
    with pytest.raises(ValueError):
        record_text(poi, "name", "it")


@pytest.mark.parametrize("translations, field", [
    ({"IT": {"title": "Colosseo"}}, "translations"),
    ({"italian": {"title": "Colosseo"}}, "translations"),
    ({"it": {"title": "x" * 61}}, "translations.it.title"),
    ({"it": {"title": "Colos\x00seo"}}, "translations.it.title"),
    ({"it": {"description": "x" * 401}}, "translations.it.description"),
    ({"it": {"subtitle": "Colosseo"}}, "translations.it"),
    ({"it": "Colosseo"}, "translations.it"),
    (["it", "Colosseo"], "translations"),
])
def test_bad_translations_name_the_field_and_change_nothing(cat, translations, field):
    cat.add_poi("Colosseum", "The Flavian amphitheatre")
    before = cat.summary()
    with pytest.raises(InvalidInput) as err:
        cat.update_poi("Colosseum", "new description", translations=translations)
    assert err.value.field == field and err.value.accepted
    assert cat.summary() == before


def test_emptied_and_deleted_translations_leave_nothing_behind(cat):
    cat.add_poi("Colosseum")
    cat.update_poi("Colosseum", translations={"it": {"title": "Colosseo"}, "de": {"title": "Kolosseum"}})
    assert cat.update_poi("Colosseum", translations={"it": {"title": " ", "description": ""}}).translations \
        == {"de": {"title": "Kolosseum"}}
    cat.delete_poi("Colosseum")
    assert cat.add_poi("Colosseum") == cat.get_poi("Colosseum") == POI("Colosseum")
    if cat.path:
        assert "Kolosseum" not in cat.path.read_text()


def test_a_catalog_written_before_translations_loads_unchanged(tmp_path):
    path = tmp_path / "catalog_db.json"
    path.write_text(json.dumps({
        "pois": {"1": {"name": "Pantheon", "description": "dome"}},
        "poi_images": {"1": {"poi": "Pantheon", "name": "Front", "file": "poi/x.png", "description": "",
                             "width": 5, "height": 4}},
        "actions": {"1": {"name": "waving", "description": "waving a hand"}}}))
    cat = Catalog(path, tmp_path / "assets")
    assert cat.get_poi("Pantheon") == POI("Pantheon", "dome")
    assert cat.get_poi_image("Pantheon", "Front").translations == {}
    assert record_text(cat.get_action("waving"), "title", "it") == "Waving"
    assert cat.update_action("waving", translations={"it": {"title": "Saluto"}}).description == "waving a hand"


def test_json_file_survives_reopening(tmp_path):
    a = Catalog(tmp_path / "catalog_db.json", tmp_path / "assets")
    a.add_poi("Pantheon", "dome")
    a.add_poi_image("Pantheon", "Front", Image.new("RGB", (50, 40)))
    b = Catalog(tmp_path / "catalog_db.json", tmp_path / "assets")
    assert b.list_poi_images("Pantheon")[0].name == "Front"
    json.loads((tmp_path / "catalog_db.json").read_text())  # plain, valid JSON


def test_duplicate_names_are_refused(cat):
    cat.add_poi("Colosseo")
    with pytest.raises(Conflict, match="poi_name"):
        cat.add_poi("  Colosseo ")
    cat.add_action("sitting")
    with pytest.raises(Conflict, match="action_name"):
        cat.add_action("sitting")
    cat.add_poi_image("Colosseo", "A", Image.new("RGB", (10, 10)))
    with pytest.raises(Conflict, match="poi_image"):
        cat.add_poi_image("Colosseo", "A", Image.new("RGB", (10, 10)))


@pytest.mark.parametrize("bad", ["", "   ", "../etc/passwd", "a/b", "x" * 61, "<script>", 42])
def test_bad_names_name_the_field_and_the_rule(cat, bad):
    with pytest.raises(InvalidInput) as err:
        cat.add_poi(bad)
    assert err.value.field == "poi_name" and "letters, digits" in err.value.accepted


def test_bad_description_and_shot_type_and_placement(cat):
    with pytest.raises(InvalidInput, match="description"):
        cat.add_poi("A", "x" * 500)
    cat.add_action("standing")
    with pytest.raises(InvalidInput) as err:
        cat.set_action_image("standing", "WIDE", *_pose_set())
    assert err.value.field == "action_shot_type" and "CLS" in err.value.accepted
    with pytest.raises(InvalidInput) as err:
        cat.set_action_image("standing", "CLS", *_pose_set(), placement={"x": 3, "bottom": 1, "height": 1})
    assert err.value.field == "placement.x"


def test_masks_must_match_the_pose_and_face_must_lie_inside(cat):
    cat.add_action("standing")
    pose, pmask, fmask = _pose_set()
    with pytest.raises(InvalidInput, match="pose_mask"):
        cat.set_action_image("standing", "CLS", pose, pmask.resize((10, 10)), fmask)
    wide_face = Image.new("L", pose.size, 255)
    with pytest.raises(InvalidInput, match="outside the pose mask"):
        cat.set_action_image("standing", "CLS", pose, pmask, wide_face)
    with pytest.raises(InvalidInput, match="all black"):
        cat.set_action_image("standing", "CLS", pose, Image.new("L", pose.size), fmask)
    assert cat.shot_types("standing") == []


def test_unknown_records_raise_not_found_listing_known_ones(cat):
    cat.add_poi("Colosseo")
    with pytest.raises(NotFound, match="known: Colosseo"):
        cat.get_poi("Colosseum")
    cat.add_action("waving")
    with pytest.raises(NotFound, match="no CLS images"):
        cat.get_action_image("waving", "CLS")


def test_files_get_catalog_names_and_stay_inside_assets(cat):
    cat.add_poi("P")
    rec = cat.add_poi_image("P", "Main", Image.new("RGB", (10, 10)))
    assert rec.file.startswith("poi/") and rec.file.endswith(".png")
    assert cat.asset_path(rec.file).is_file()
    with pytest.raises(CatalogError):
        cat.asset_path("../../etc/passwd")


def test_uploaded_bytes_are_checked_and_never_name_a_file(cat, tmp_path):
    cat.add_poi("P")
    with pytest.raises(InvalidInput, match="poi_image file"):
        cat.add_poi_image("P", "Main", b"GIF89a not really")
    assert not (cat.assets_dir / "poi").exists() or not any((cat.assets_dir / "poi").iterdir())


def test_deleting_removes_files_no_one_else_uses(cat):
    cat.add_poi("P")
    a = cat.add_poi_image("P", "A", Image.new("RGB", (10, 10)))
    b = cat.add_poi_image("P", "B", Image.new("RGB", (10, 10)))
    cat.delete_poi_image("P", "A")
    assert not cat.asset_path(a.file).exists() and cat.asset_path(b.file).exists()
    cat.add_action("w")
    first = cat.set_action_image("w", "CLS", *_pose_set())
    second = cat.set_action_image("w", "CLS", *_pose_set())  # replacing drops the old files
    assert not cat.asset_path(first.pose_image).exists()
    assert cat.asset_path(second.pose_image).exists()
    cat.delete_action("w")
    cat.delete_poi("P")
    assert not cat.asset_path(b.file).exists() and not cat.asset_path(second.face_mask).exists()
    assert cat.summary() == {"pois": [], "actions": []}


def test_a_corrupt_catalog_file_is_reported_not_overwritten(tmp_path):
    path = tmp_path / "catalog_db.json"
    path.write_text('{"pois": {"1": {"name": ')
    cat = Catalog(path, tmp_path / "assets")
    with pytest.raises(CatalogError, match="not valid JSON"):
        cat.list_pois()
    with pytest.raises(CatalogError):
        cat.add_poi("X")
    assert path.read_text() == '{"pois": {"1": {"name": '


_WRITER = """
import sys
from engine.catalog import Catalog
cat = Catalog(sys.argv[1], sys.argv[2])
prefix, n = sys.argv[3], int(sys.argv[4])
for i in range(n):
    cat.add_poi(f"{prefix} {i}", "x" * 200)
"""


def _writer(tmp_path, prefix, n):
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path / "catalog_db.json"),
                             str(tmp_path / "assets"), prefix, str(n)], cwd=REPO)


def test_two_processes_writing_at_once_lose_no_update(tmp_path):
    procs = [_writer(tmp_path, "A", 60), _writer(tmp_path, "B", 60)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    names = Catalog(tmp_path / "catalog_db.json", tmp_path / "assets").poi_names()
    assert len(names) == 120
    assert {n.split()[0] for n in names} == {"A", "B"}


def _written(path, prefix) -> int:
    """How many of this writer's records the catalog holds now (0 while it has none)."""
    try:
        return sum(p["name"].startswith(prefix) for p in json.loads(path.read_text())["pois"].values())
    except (OSError, ValueError, KeyError):
        return 0


def test_a_writer_killed_mid_write_leaves_a_loadable_catalog(tmp_path):
    path = tmp_path / "catalog_db.json"
    for round_, more in enumerate((1, 7, 23)):  # killed at three different points of its work
        proc = _writer(tmp_path, f"K{round_}", 100_000)
        deadline = time.monotonic() + 120  # a busy machine starts the writer late: wait for it
        while _written(path, f"K{round_} ") < more:
            assert proc.poll() is None and time.monotonic() < deadline, "the writer never wrote"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        cat = Catalog(path, tmp_path / "assets")
        count = len(cat.poi_names())  # loads, no CatalogError
        json.loads(path.read_text())
        cat.add_poi(f"after {round_}")  # and is still writable (the lock was released)
        assert len(cat.poi_names()) == count + 1
