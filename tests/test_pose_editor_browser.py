"""A curator makes a place and a pose in a real browser: adds the place with a photo, moves two
joints of a new pose's skeleton by clicking on the picture, cuts part of its person mask with
the brush, and visitors are offered the pose, at the new place, with its preview.

The editor sits in the catalog page's pose section, in the expander "Edit the skeleton and
masks". The joint picture is streamlit-image-coordinates (an iframe with an <img>, clicked at
a position); the mask canvas is streamlit-drawable-canvas (its <canvas> elements are in the
page itself, drawn on with the mouse)."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

from engine.catalog import Catalog
from engine.config import load_settings
from engine.poses import KEYPOINT_NAMES
from tests.homes import fill_demo_home
from tests.server import RUN_ENDED, browser_page, screenshot, settled, streamlit_server

K = {n: i for i, n in enumerate(KEYPOINT_NAMES)}
PICTURE = 'iframe[title="streamlit_image_coordinates.streamlit_image_coordinates"]'

# A fingerprint of the joint picture once it differs from `old` (the picture is redrawn after
# every change of the skeleton or the chosen joint); until then, null.
PICTURE_CHANGED = """old => {
  const frame = document.querySelector('%s');
  const img = frame && frame.contentDocument && frame.contentDocument.querySelector("img");
  if (!img || !img.complete || !img.src) return null;
  let h = 0;
  for (let i = 0; i < img.src.length; i++) h = (h * 31 + img.src.charCodeAt(i)) | 0;
  return h !== old ? h : null;
}""" % PICTURE

# The address of the "After your strokes" picture once it differs from `old`; until then, null.
RESULT_CHANGED = """old => {
  const imgs = [...document.querySelectorAll('[data-testid="stImage"]')]
    .filter(e => e.innerText.includes("After your strokes"))
    .map(e => e.querySelector("img") && e.querySelector("img").src);
  return imgs.length === 1 && imgs[0] && imgs[0] !== old ? imgs[0] : null;
}"""

@pytest.fixture
def studio(tmp_path, demo_models_root, demo_catalog_root):
    home = tmp_path / "home"
    home.mkdir()
    fill_demo_home(home, demo_models_root, demo_catalog_root)
    with streamlit_server(home) as base:
        yield base, home


@pytest.fixture
def site_photo(tmp_path):
    from engine.demo.scenes import draw_scene
    path = tmp_path / "temple steps.png"
    draw_scene("monument", (640, 480), seed=7).save(path)
    return path


def _cat(home):
    return Catalog.open(load_settings({"CARTOLINA_HOME": str(home)}))


def _move(page, joint_label: str, to: tuple[float, float], drawn):
    """Choose a joint, then click where it goes (`to` in the 512 px picture's pixels)."""
    choice = page.get_by_label("Joint")
    choice.click()
    choice.fill(joint_label)  # typing narrows the list to the one joint; Enter takes it
    page.get_by_role("option", name=joint_label, exact=True).wait_for()
    page.keyboard.press("Enter")
    drawn = page.wait_for_function(PICTURE_CHANGED, arg=drawn).json_value()  # the ring moved
    img = page.frame_locator(PICTURE).locator("img")
    box = img.bounding_box()
    img.click(position={"x": to[0] * box["width"] / 512, "y": to[1] * box["height"] / 512})
    return page.wait_for_function(PICTURE_CHANGED, arg=drawn).json_value()


@pytest.mark.browser
def test_curator_adds_a_place_builds_a_pose_by_moving_two_joints_and_cuts_its_mask(studio, site_photo):
    base, home = studio
    with browser_page(1280, 1000) as page:
        page.goto(base + "/catalog")
        settled(page, "Add a place").get_by_text("Add a place").click()
        page.get_by_label("Name of the place").fill("Scalinata")
        page.get_by_label("Description").first.fill("The temple steps")
        page.get_by_role("button", name="Add place").click()
        settled(page, "Added the place Scalinata.")  # selected: its photo form is drawn for it
        page.get_by_label("Photo name").fill("Gradini")
        page.locator("input[type=file]").first.set_input_files(str(site_photo))
        page.get_by_role("button", name="Add photo").click()
        settled(page, "Added the photo Gradini.").get_by_text("Poses (actions)").click()
        settled(page, "Add a pose").get_by_text("Add a pose").click()
        page.get_by_label("Name of the pose").fill("leaning")
        page.get_by_role("button", name="Add pose").click()
        page.get_by_text("Added the pose leaning.").wait_for()
        page.get_by_text("Edit the skeleton and masks").click()
        drawn = page.wait_for_function(PICTURE_CHANGED, arg=None).json_value()

        drawn = _move(page, "right wrist", (150, 60), drawn)
        _move(page, "left wrist", (360, 60), drawn)
        page.get_by_role("button", name="Save the skeleton").click()
        page.get_by_text("Saved the skeleton and its three distances.").wait_for()
        fus = _cat(home).get_action_image("leaning", "FUS")
        assert fus.keypoints[K["r_wrist"]] == pytest.approx([150, 60], abs=2.5)
        assert fus.keypoints[K["l_wrist"]] == pytest.approx([360, 60], abs=2.5)
        before = np.asarray(_cat(home).open_asset(fus.pose_mask, "L"))
        assert before[300, 120:400].any()  # the legs, where the railing will be

        page.get_by_text("Paint the masks", exact=True).click()
        shown = page.wait_for_function(RESULT_CHANGED, arg=None).json_value()
        page.get_by_role("radiogroup", name="Brush").get_by_text("Erase").click()
        page.get_by_role("radiogroup", name="Distance to paint").get_by_text("far (FUS)").click()
        page.wait_for_function(RESULT_CHANGED, arg=shown)  # the far shot's run drew its result...
        page.locator(RUN_ENDED).wait_for()                 # ...and ended, taking away the close
        canvas = page.locator("canvas.upper-canvas")       # shot's canvas (in a shadow root)
        expect(canvas).to_have_count(1)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        scale = box["width"] / 512
        page.mouse.move(box["x"] + 120 * scale, box["y"] + 300 * scale)
        page.mouse.down()
        page.mouse.move(box["x"] + 400 * scale, box["y"] + 300 * scale, steps=25)
        page.mouse.up()
        save = page.get_by_role("button", name="Save the masks")
        expect(save).to_be_enabled()
        save.click()
        page.get_by_text("Saved the painted masks of the far shot.").wait_for()
        page.locator(RUN_ENDED).wait_for()
        screenshot(page, "pose-editor-after-cutting-the-mask")

        fus = _cat(home).get_action_image("leaning", "FUS")
        after = np.asarray(_cat(home).open_asset(fus.pose_mask, "L"))
        assert set(np.unique(after)) == {0, 255}
        assert not after[300, 120:400].any()                  # cut where the brush went
        assert np.array_equal(after[200], before[200])        # the rest of the person is still there
        assert fus.keypoints[K["r_wrist"]] == pytest.approx([150, 60], abs=2.5)

        # Visitors are offered the pose at the new place: chosen by its tile, with its preview.
        page.goto(base + "/scene")
        settled(page, "1. The place").get_by_text("Scalinata", exact=True).click()
        chosen = page.get_by_test_id("stBaseButton-primary")
        expect(chosen.filter(has_text="Gradini")).to_have_count(1)  # the place's one photo
        page.locator(RUN_ENDED).wait_for()
        preview = page.get_by_test_id("stImage").filter(has_text="Preview. Blue").locator("img")
        before = preview.get_attribute("src")
        page.get_by_role("button", name="Leaning").click()
        expect(chosen.filter(has_text="Leaning")).to_have_count(1)
        expect(preview).not_to_have_attribute("src", before)  # the preview follows the pose
        screenshot(page, "pose-editor-new-pose-offered-at-the-new-place")
    rec = _cat(home).get_poi_image("Scalinata", "Gradini")
    assert (rec.width, rec.height) == (640, 480)
