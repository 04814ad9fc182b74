"""The demo catalog is complete, passes its own validation, and respects curators' edits."""

import numpy as np

from engine import poses
from engine.catalog import Catalog, record_text
from engine.config import load_settings
from engine.demo.catalog import DEMO_POIS, build_demo_catalog


def test_demo_catalog_has_pois_actions_and_every_shot(demo_home):
    cat = Catalog.open(load_settings())
    assert len(cat.poi_names()) >= 3 and len(cat.action_names()) >= 6
    assert {"standing", "waving", "pointing", "sitting", "arms_crossed", "selfie"} <= set(cat.action_names())
    for action in cat.action_names():
        assert cat.shot_types(action) == ["CLS", "MES", "FUS"]
    assert cat.validate() == []


def test_demo_places_photos_and_poses_speak_italian(demo_home):
    cat = Catalog.open(load_settings())
    records = cat.list_pois() + cat.list_poi_images() + cat.list_actions()
    for rec in records:
        assert set(rec.translations["it"]) == {"title", "description"}, rec
        assert record_text(rec, "description", "it") != record_text(rec, "description", "en"), rec
    assert record_text(cat.get_action("arms_crossed"), "title", "it") == "Braccia conserte"
    assert record_text(cat.get_poi_image("Lungomare", "Beach"), "title", "it") == "Spiaggia"
    assert record_text(cat.get_poi("Lungomare"), "title", "en") == "Lungomare"


def test_pose_images_use_the_openpose_colours_on_black(demo_home):
    cat = Catalog.open(load_settings())
    allowed = {(0, 0, 0)} | {tuple(c) for c in poses.COLORS} | \
              {tuple(int(v * 0.6) for v in c) for c in poses.COLORS}
    rec = cat.get_action_image("selfie", "MES")
    pixels = np.asarray(cat.open_asset(rec.pose_image)).reshape(-1, 3)
    colours = {tuple(int(v) for v in p) for p in np.unique(pixels, axis=0)}
    assert colours <= allowed and len(colours) > 10


def test_validation_reports_a_missing_file_and_a_bad_mask(demo_home):
    cat = Catalog.open(load_settings())
    poi_rec = cat.list_poi_images()[0]
    cat.asset_path(poi_rec.file).unlink()
    rec = cat.get_action_image("waving", "FUS")
    mask = cat.open_asset(rec.face_mask, "L")
    mask.point(lambda v: 128 if v else 0).save(cat.asset_path(rec.face_mask))
    problems = cat.validate()
    assert any(poi_rec.name in p for p in problems)
    assert any("waving/FUS: face mask is not binary" in p for p in problems)


def test_reseeding_respects_deletions_unless_asked_to_refill(demo_home):
    settings = load_settings()
    cat = Catalog.open(settings)
    cat.delete_action("waving")
    poi = next(iter(DEMO_POIS))
    cat.update_poi(poi, "edited by a curator", translations={"it": {"title": "Il mio titolo"}})
    cat.update_action("selfie", translations={"it": {}})
    assert build_demo_catalog(settings)["added"] == []
    assert "waving" not in cat.action_names()
    report = build_demo_catalog(settings, refill=True)
    assert "action waving" in report["added"] and report["problems"] == []
    assert cat.get_poi(poi).description == "edited by a curator"
    assert cat.get_poi(poi).translations == {"it": {"title": "Il mio titolo"}}
    assert "Italian texts of action selfie" in report["added"]
    assert cat.get_action("selfie").translations["it"]["title"] == "Selfie"
