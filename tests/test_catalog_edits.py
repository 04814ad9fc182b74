"""Everything a curator edits: renames that references follow, a photo replaced, the order
visitors see, deletions that say what goes, the prompt a description makes, and two curators
who never overwrite each other silently."""

import pytest
from PIL import Image

from engine.catalog import Catalog
from engine.catalog_edit import action_deletion, poi_deletion, sample_prompt
from engine.errors import Conflict, InvalidInput, NotFound
from tests.test_catalog import _pose_set


@pytest.fixture
def cat(tmp_path):
    return Catalog(tmp_path / "catalog_db.json", tmp_path / "assets")


@pytest.fixture
def filled(cat):
    cat.add_poi("Colosseo", "The Flavian amphitheatre")
    for name in ("Arches", "Arena", "Night"):
        cat.add_poi_image("Colosseo", name, Image.new("RGB", (40, 30), "tan"), f"the {name.lower()}")
    cat.add_action("waving", "waving a hand")
    for shot in ("CLS", "MES", "FUS"):
        cat.set_action_image("waving", shot, *_pose_set(), placement={"x": 0.3, "bottom": 1, "height": 0.7})
    return cat


def test_renaming_a_place_takes_its_photos_along(filled):
    before = filled.list_poi_images("Colosseo")
    poi = filled.rename_poi("Colosseo", " Colosseum ")
    assert poi.name == "Colosseum" and poi.description == "The Flavian amphitheatre"
    after = filled.list_poi_images("Colosseum")
    assert [(p.name, p.file) for p in after] == [(p.name, p.file) for p in before]
    assert filled.list_poi_images("Colosseo") == [] and filled.poi_names() == ["Colosseum"]
    assert filled.validate() == []


def test_renaming_a_pose_takes_its_images_along_and_a_photo_keeps_its_place(filled):
    filled.rename_action("waving", "greeting")
    assert filled.shot_types("greeting") == ["CLS", "MES", "FUS"]
    assert filled.get_action_image("greeting", "MES").placement == {"x": 0.3, "bottom": 1.0, "height": 0.7}
    with pytest.raises(NotFound):
        filled.get_action("waving")
    filled.rename_poi_image("Colosseo", "Arena", "Inside")
    assert [p.name for p in filled.list_poi_images("Colosseo")] == ["Arches", "Inside", "Night"]
    assert filled.validate() == []


def test_a_rename_to_a_taken_or_bad_name_is_refused_and_changes_nothing(filled):
    filled.add_poi("Pantheon")
    before = filled.document()
    with pytest.raises(Conflict, match="poi_name: a POI named 'Pantheon' already exists"):
        filled.rename_poi("Colosseo", "Pantheon")
    with pytest.raises(Conflict, match="poi_image"):
        filled.rename_poi_image("Colosseo", "Arena", "Night")
    with pytest.raises(InvalidInput, match="action_name"):
        filled.rename_action("waving", "../up")
    assert filled.document() == before


def test_a_replaced_photo_keeps_its_name_texts_and_place_and_drops_the_old_file(filled):
    filled.update_poi_image("Colosseo", "Arena", translations={"it": {"title": "Arena"}})
    old = filled.get_poi_image("Colosseo", "Arena")
    new = filled.replace_poi_image("Colosseo", "Arena", Image.new("RGB", (64, 48), "navy"))
    assert (new.description, new.translations, new.order) == (old.description, old.translations, old.order)
    assert (new.width, new.height) == (64, 48) and new.file != old.file
    assert not filled.asset_path(old.file).exists()
    assert filled.open_asset(new.file).getpixel((0, 0)) == (0, 0, 128)
    with pytest.raises(InvalidInput, match="poi_image file"):
        filled.replace_poi_image("Colosseo", "Arena", b"not a picture")
    assert filled.get_poi_image("Colosseo", "Arena") == new


def test_lists_follow_the_curators_order_new_records_last(filled):
    filled.add_poi("Pantheon")
    filled.add_poi("Ara Pacis")
    assert [p.name for p in filled.list_pois()] == ["Colosseo", "Pantheon", "Ara Pacis"]
    filled.reorder_pois(["Pantheon", "Ara Pacis", "Colosseo"])
    assert [p.name for p in filled.list_pois()] == ["Pantheon", "Ara Pacis", "Colosseo"]
    filled.reorder_poi_images("Colosseo", ["Night", "Arches", "Arena"])
    assert [p.name for p in filled.list_poi_images("Colosseo")] == ["Night", "Arches", "Arena"]
    assert [p.name for p in filled.list_poi_images()] == ["Night", "Arches", "Arena"]
    filled.add_action("sitting")
    filled.reorder_actions(["sitting", "waving"])
    assert [a.name for a in filled.list_actions()] == ["sitting", "waving"]
    assert filled.summary()["pois"][2]["images"][0]["name"] == "Night"  # the command line's order too


def test_a_reorder_from_a_list_someone_changed_meanwhile_is_refused(filled):
    filled.add_poi("Pantheon")
    with pytest.raises(Conflict, match="changed meanwhile by someone else — reload"):
        filled.reorder_pois(["Colosseo"])  # Pantheon came in after the curator loaded the list
    assert [p.name for p in filled.list_pois()] == ["Colosseo", "Pantheon"]


def test_deletions_say_what_goes_with_the_record(filled):
    assert poi_deletion(filled, "Colosseo") == \
        "Deletes the place Colosseo and its 3 photos: Arches, Arena, Night."
    filled.add_poi("Pantheon")
    assert poi_deletion(filled, "Pantheon") == "Deletes the place Pantheon (it has no photos)."
    assert action_deletion(filled, "waving") == \
        "Deletes the pose waving and its pose image and masks at 3 distances (close, medium, far)."
    files = [filled.asset_path(r.file) for r in filled.list_poi_images("Colosseo")]
    filled.delete_poi("Colosseo")
    assert filled.list_poi_images() == [] and not any(f.exists() for f in files)


def test_the_prompt_preview_is_the_prompt_a_description_makes(filled):
    built = sample_prompt(filled, poi_description="a sunny arena")
    assert built.prompt.startswith("a photo of a adult woman waving a hand, medium shot, in a sunny arena")
    assert sample_prompt(filled, action_description="sitting on the steps").prompt.startswith(
        "a photo of a adult woman sitting on the steps, medium shot, in the arches")
    assert sample_prompt(filled, poi_description="stones " * 100).cut[0]["part"] == "place"


# --- two curators at once -----------------------------------------------------------------------

def test_an_edit_made_on_a_stale_version_is_refused_naming_the_record(tmp_path):
    """Two handles, as two browser sessions or the editor and the command line hold them."""
    first = Catalog(tmp_path / "catalog_db.json", tmp_path / "assets")
    second = Catalog(tmp_path / "catalog_db.json", tmp_path / "assets")
    first.add_poi("Colosseo", "old text")
    seen_by_first = first.get_poi("Colosseo").version
    seen_by_second = second.get_poi("Colosseo").version
    second.update_poi("Colosseo", "the second curator's text", expected_version=seen_by_second)
    with pytest.raises(Conflict) as err:
        first.update_poi("Colosseo", "the first curator's text", expected_version=seen_by_first)
    assert "POI 'Colosseo': changed meanwhile by someone else — reload" in str(err.value)
    assert first.get_poi("Colosseo").description == "the second curator's text"
    fresh = first.get_poi("Colosseo").version  # after a reload the edit goes through
    assert first.update_poi("Colosseo", "agreed", expected_version=fresh).version == fresh + 1
    second.update_poi("Colosseo", "a script overwrites on purpose")  # no version: no check


@pytest.mark.parametrize("stale_edit", [
    lambda c, v: c.update_poi_image("Colosseo", "Arena", "x", expected_version=v["photo"]),
    lambda c, v: c.rename_poi_image("Colosseo", "Arena", "Inside", expected_version=v["photo"]),
    lambda c, v: c.replace_poi_image("Colosseo", "Arena", Image.new("RGB", (8, 8)), expected_version=v["photo"]),
    lambda c, v: c.delete_poi_image("Colosseo", "Arena", expected_version=v["photo"]),
    lambda c, v: c.rename_poi("Colosseo", "Colosseum", expected_version=v["poi"]),
    lambda c, v: c.delete_poi("Colosseo", expected_version=v["poi"]),
    lambda c, v: c.update_action("waving", "x", expected_version=v["action"]),
    lambda c, v: c.rename_action("waving", "greeting", expected_version=v["action"]),
    lambda c, v: c.delete_action("waving", expected_version=v["action"]),
    lambda c, v: c.update_placement("waving", "MES", None, expected_version=v["image"]),
    lambda c, v: c.set_action_image("waving", "MES", *_pose_set(), expected_version=v["image"]),
], ids=["photo texts", "photo rename", "photo replace", "photo delete", "poi rename", "poi delete",
        "action texts", "action rename", "action delete", "placement", "action images"])
def test_every_kind_of_edit_refuses_a_stale_version_and_changes_nothing(filled, stale_edit):
    seen = {"photo": filled.get_poi_image("Colosseo", "Arena").version, "poi": filled.get_poi("Colosseo").version,
            "action": filled.get_action("waving").version,
            "image": filled.get_action_image("waving", "MES").version}
    # someone else changes each record meanwhile
    filled.update_poi_image("Colosseo", "Arena", translations={"it": {"title": "Arena"}})
    filled.update_poi("Colosseo", translations={"it": {"title": "Colosseo"}})
    filled.update_action("waving", translations={"it": {"title": "Saluto"}})
    filled.update_placement("waving", "MES", {"x": 0.6, "bottom": 1, "height": 0.5})
    before = filled.document()
    with pytest.raises(Conflict, match="changed meanwhile by someone else — reload"):
        stale_edit(filled, seen)
    assert filled.document() == before


def test_images_shown_as_missing_are_not_made_twice(filled):
    filled.add_action("sitting")
    filled.set_action_image("sitting", "CLS", *_pose_set(), expected_version=0)
    with pytest.raises(Conflict, match="action image 'sitting'/CLS: changed meanwhile"):
        filled.set_action_image("sitting", "CLS", *_pose_set(), expected_version=0)
