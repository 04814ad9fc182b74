"""Curators edit the catalog (in a real browser, and the texts in AppTests); bad input is refused
and loses nothing."""

import io

import pytest
from PIL import Image

from engine.catalog import Catalog
from engine.config import load_settings
from tests.homes import fill_demo_home
from tests.server import REPO, browser_page, settled, streamlit_server


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
        settled(page, "Add a place").get_by_text("Add a place").click()
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
        settled(page, "Add a photo")
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
        settled(page, "Add a place").get_by_text("Poses (actions)").click()
        settled(page, "Add a pose").get_by_text("Add a pose").click()
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


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def test_two_curators_never_overwrite_each_other_silently(demo_home, fresh_ui):
    first, second = _editor_app(), _editor_app()  # two browser sessions on the same place
    for at in (first, second):
        at.selectbox(key="edit_poi").select("Lungomare").run()
    _place_field(second, "description", second.text_area).input("The second curator's text.")
    _button(second, "Save texts").click().run()
    _place_field(first, "description", first.text_area).input("The first curator's text.")
    _button(first, "Save texts").click().run()
    assert "POI 'Lungomare': changed meanwhile by someone else — reload" in first.error[0].value
    assert _cat(demo_home).get_poi("Lungomare").description == "The second curator's text."
    assert _place_field(first, "description", first.text_area).value == "The second curator's text."  # reloaded
    _place_field(first, "description", first.text_area).input("Agreed text.")
    _button(first, "Save texts").click().run()
    assert [s.value for s in first.success] == ["Saved."]
    assert _cat(demo_home).get_poi("Lungomare").description == "Agreed text."


def _place_field(at, field, widgets):
    """A field of the place on screen (its key carries the version the screen shows)."""
    return next(w for w in widgets if w.key and w.key.startswith("poi:") and w.key.endswith(f":{field}"))


def test_curator_renames_a_place_and_its_photos_follow(demo_home, fresh_ui):
    at = _editor_app()
    at.selectbox(key="edit_poi").select("Lungomare").run()
    _place_field(at, "rename", at.text_input).input("Passeggiata")
    _button(at, "Rename").click().run()
    assert [s.value for s in at.success] == ["Renamed Lungomare to Passeggiata."]
    assert at.selectbox(key="edit_poi").value == "Passeggiata"
    cat = _cat(demo_home)
    assert [p.name for p in cat.list_poi_images("Passeggiata")] == ["Beach"] and "Lungomare" not in cat.poi_names()


def test_deleting_says_first_what_goes_with_it(demo_home, fresh_ui):
    at = _editor_app()
    at.selectbox(key="edit_poi").select("Lungomare").run()
    assert "Deletes the place Lungomare and its 1 photo: Beach." in [w.value for w in at.warning]
    _button(at, "Yes, delete Lungomare").click().run()
    assert [s.value for s in at.success] == ["Deleted Lungomare."]
    assert "Lungomare" not in _cat(demo_home).poi_names()
    at.radio(key="catalog_section").set_value("Poses (actions)").run()
    at.selectbox(key="edit_action").select("waving").run()
    assert "Deletes the pose waving and its pose image and masks at 3 distances (close, medium, far)." in \
        [w.value for w in at.warning]


def test_curator_reorders_places_and_visitors_see_that_order(demo_home, fresh_ui):
    first = _cat(demo_home).list_pois()[0].name
    at = _editor_app()
    _button(at, "Move down").click().run()
    assert [s.value for s in at.success] == [f"Moved {first} down."]
    assert _cat(demo_home).list_pois()[1].name == first
    from streamlit.testing.v1 import AppTest
    scene = AppTest.from_file(str(REPO / "app_pages" / "scene.py"), default_timeout=60).run()
    assert scene.session_state["scene_poi"] == _cat(demo_home).list_pois()[0].name  # the first place shown


def test_the_prompt_preview_follows_the_description_as_it_is_typed(demo_home, fresh_ui):
    at = _editor_app()
    photo = _cat(demo_home).get_poi_image(at.selectbox(key="edit_poi").value, at.selectbox(key="edit_photo").value)
    field = f"photo:{photo.poi}:{photo.name}:v{photo.version}:description"
    at.text_area(key=field).input("a windy pier at dawn").run()
    assert any("in a windy pier at dawn" in c.value for c in at.code)
    at.radio(key="catalog_section").set_value("Poses (actions)").run()
    action = _cat(demo_home).get_action(at.selectbox(key="edit_action").value)
    at.text_area(key=f"action:{action.name}:v{action.version}:description").input("juggling three oranges").run()
    assert any(c.value.startswith("a photo of a adult woman juggling three oranges") for c in at.code)


def test_curator_replaces_a_photo_and_its_texts_stay(demo_home, fresh_ui):
    at = _editor_app()
    at.selectbox(key="edit_poi").select("Lungomare").run()
    before = _cat(demo_home).get_poi_image("Lungomare", "Beach")
    at.file_uploader(key=f"photo:Lungomare:Beach:v{before.version}:replacement").upload(
        "new beach.png", _png_bytes(), "image/png").run()
    _button(at, "Replace picture").click().run()
    assert [s.value for s in at.success] == ["Replaced the picture of Beach."]
    after = _cat(demo_home).get_poi_image("Lungomare", "Beach")
    assert (after.width, after.height, after.description) == (320, 200, before.description)


def test_curator_imports_an_archive_and_a_bad_one_changes_nothing(demo_home, fresh_ui, tmp_path):
    from engine.catalog_archive import export_catalog
    source = Catalog(tmp_path / "elsewhere" / "catalog_db.json", tmp_path / "elsewhere" / "assets")
    source.add_poi("Pantheon", "The dome")
    source.add_poi_image("Pantheon", "Portico", Image.new("RGB", (64, 48), "grey"), "columns")
    buf = io.BytesIO()
    export_catalog(source, buf)
    at = _editor_app()
    at.radio(key="catalog_section").set_value("Export / import").run()
    assert at.download_button[0].label == "Download the catalog"
    at.file_uploader(key="import_file").upload("catalog.zip", b"PK not a zip", "application/zip").run()
    before = _cat(demo_home).summary()
    _button(at, "Check and import").click().run()
    assert "not a zip file" in at.error[0].value and _cat(demo_home).summary() == before
    at.file_uploader(key="import_file").upload("catalog.zip", buf.getvalue(), "application/zip").run()
    at.radio(key="import_mode").set_value("replace").run()
    assert at.warning[0].value == "Replaces the 4 places and 8 poses here."
    _button(at, "Check and import").click().run()
    assert [s.value for s in at.success] == ["Imported 1 places with 1 photos and 0 poses."]
    assert _cat(demo_home).poi_names() == ["Pantheon"]
