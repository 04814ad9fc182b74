"""Curators edit the catalog (in a real browser, and the texts in AppTests); bad input is refused
and loses nothing."""

import io

import pytest
from PIL import Image

from engine.catalog import Catalog
from engine.config import load_settings
from tests.homes import fill_demo_home
from tests.server import REPO, browser_page, streamlit_server


@pytest.fixture(scope="module")
def editor(tmp_path_factory, demo_models_root, demo_catalog_root):
    home = fill_demo_home(tmp_path_factory.mktemp("editor-home"), demo_models_root, demo_catalog_root)
    with streamlit_server(home) as base:
        yield base, home


def _cat(home):
    return Catalog.open(load_settings({"CARTOLINA_HOME": str(home)}))


def _png_bytes():
    buf = io.BytesIO()
    Image.new("RGB", (320, 200), "orange").save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.browser
def test_curator_adds_a_place_with_a_photo(editor, tmp_path):
    base, home = editor
    photo = tmp_path / "whatever name.png"
    photo.write_bytes(_png_bytes())
    with browser_page() as page:
        page.goto(base + "/catalog")
        page.get_by_text("Add a place").click()
        page.get_by_label("Name of the place").fill("Colosseo")
        page.get_by_label("Description").first.fill("The Flavian amphitheatre")
        page.get_by_role("button", name="Add place").click()
        page.get_by_text("Added the place Colosseo.").wait_for()
        assert "Colosseo" in _cat(home).poi_names()
        # the new place is selected: give it a photo
        page.get_by_label("Photo name").fill("Arena")
        page.locator("input[type=file]").first.set_input_files(str(photo))
        page.get_by_role("button", name="Add photo").click()
        page.get_by_text("Added the photo Arena.").wait_for()
    rec = _cat(home).get_poi_image("Colosseo", "Arena")
    assert (rec.width, rec.height) == (320, 200)
    assert "whatever" not in rec.file and rec.file.startswith("poi/")


@pytest.mark.browser
def test_a_fake_image_upload_is_refused_and_nothing_changes(editor, tmp_path):
    base, home = editor
    fake = tmp_path / "holiday.png"
    fake.write_text("this is not a picture")
    before = _cat(home).summary()
    with browser_page() as page:
        page.goto(base + "/catalog")
        page.get_by_text("Add a photo").wait_for()
        page.get_by_label("Photo name").fill("Fake")
        page.locator("input[type=file]").first.set_input_files(str(fake))
        page.get_by_role("button", name="Add photo").click()
        page.get_by_text("not an image file").wait_for()
        assert "JPEG, PNG, WebP or BMP" in page.inner_text("body")
    assert _cat(home).summary() == before


# The placement preview's image address once exactly one preview is on the page (a rerun
# briefly shows the old one beside the new) and it differs from `arg`; until then, falsy.
PREVIEW_SRC = """old => {
  const srcs = [...document.querySelectorAll('[data-testid="stImage"]')]
    .filter(e => e.innerText.includes("Blue: the person"))
    .map(e => e.querySelector("img") && e.querySelector("img").src);
  return srcs.length === 1 && srcs[0] && srcs[0] !== old ? srcs[0] : null;
}"""


@pytest.mark.browser
def test_curator_adds_a_pose_and_moves_it(editor):
    base, home = editor
    with browser_page() as page:
        page.goto(base + "/catalog")
        page.get_by_text("Poses (actions)").click()
        page.get_by_text("Add a pose").click()
        page.get_by_label("Name of the pose").fill("greeting")
        page.get_by_role("button", name="Add pose").click()
        page.get_by_text("Added the pose greeting.").wait_for()
        assert _cat(home).shot_types("greeting") == ["CLS", "MES", "FUS"]
        page.get_by_text("Pose guide").first.wait_for()  # still on the poses, greeting selected
        drawn = page.wait_for_function(PREVIEW_SRC, arg=None).json_value()
        slider = page.locator("input[type=range][aria-label=\"Across (centre)\"]").first
        slider.focus()
        slider.press("Home")  # all the way to the left edge: one change, one rerun
        page.get_by_text("0.00", exact=True).first.wait_for()
        page.wait_for_function(PREVIEW_SRC, arg=drawn)  # the rerun drew the new placement
        page.get_by_role("button", name="Save placement").click()
        page.get_by_text("Placement saved.").wait_for()
    placement = _cat(home).get_action_image("greeting", "CLS").placement
    assert placement == {"x": 0.0, "bottom": 1.0, "height": 0.95}


@pytest.mark.browser
def test_kiosk_mode_hides_the_editor(demo_home):
    with streamlit_server(demo_home, env={"CARTOLINA_MODE": "kiosk"}) as base, browser_page() as page:
        page.goto(base)
        page.get_by_text("Put yourself in the picture").wait_for()
        assert page.get_by_role("link", name="Catalog").count() == 0
        page.goto(base + "/catalog")
        page.get_by_text("Put yourself in the picture").wait_for()
        assert "Add a place" not in page.inner_text("body")


def _editor_app():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(REPO / "app_pages" / "catalog.py"), default_timeout=60)
    return at.run()


def _labelled(widgets, label):
    return [w for w in widgets if w.label == label]


def test_curator_saves_italian_texts_of_a_place_and_its_photo(demo_home, fresh_ui):
    at = _editor_app()
    at.selectbox(key="edit_poi").select("Lungomare").run()
    place_title, photo_title = _labelled(at.text_input, "Title in Italian")  # the place's form first
    place_title.input("Il lungomare")
    _labelled(at.text_area, "Description in Italian")[0].input("La passeggiata.")
    _labelled(at.button, "Save texts")[0].click().run()
    assert [s.value for s in at.success] == ["Saved."] and not at.error
    _labelled(at.text_input, "Title in Italian")[1].input("")
    _labelled(at.text_area, "Description in Italian")[1].input("Sabbia e mare.")
    _labelled(at.button, "Save")[0].click().run()
    cat = _cat(demo_home)
    assert cat.get_poi("Lungomare").translations == {"it": {"title": "Il lungomare",
                                                            "description": "La passeggiata."}}
    assert cat.get_poi_image("Lungomare", "Beach").translations == {"it": {"description": "Sabbia e mare."}}
    assert cat.get_poi("Lungomare").description == "The seaside promenade, beach and lighthouse."


def test_curator_saves_the_italian_title_of_a_pose_and_a_bad_one_is_refused(demo_home, fresh_ui):
    at = _editor_app()
    at.radio(key="catalog_section").set_value("Poses (actions)").run()
    at.selectbox(key="edit_action").select("selfie").run()
    _labelled(at.text_input, "Title in Italian")[0].input("Autoscatto")
    _labelled(at.button, "Save texts")[0].click().run()
    assert _cat(demo_home).get_action("selfie").translations["it"]["title"] == "Autoscatto"
    _labelled(at.text_area, "Description in Italian")[0].input("x" * 390 + "\x07")
    _labelled(at.button, "Save texts")[0].click().run()
    assert "translations.it.description" in at.error[0].value
    assert _cat(demo_home).get_action("selfie").translations["it"]["title"] == "Autoscatto"
