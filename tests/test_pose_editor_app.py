"""The skeleton and mask editor's paths, run as a page in AppTest on a copy of the demo
catalog. AppTest cannot click inside a component, so the image-coordinates component and the
drawing canvas are replaced by stand-ins that hand the editor what a browser would: a click
at a point of the picture as shown, or an RGBA picture of brush strokes (the real components
are driven in a browser in tests/test_pose_editor_browser.py)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from engine import pose_edit
from engine.catalog import Catalog
from engine.config import load_settings
from engine.pose_masks import ERASE
from engine.poses import KEYPOINT_NAMES

K = {n: i for i, n in enumerate(KEYPOINT_NAMES)}
SHOWN_WIDTH = 256  # the picture as the browser shows it: half its size, as in a narrow column


def _editor_page(action):
    from ui.pose_editor import pose_editor
    from ui.state import catalog
    pose_editor(catalog(), action)


class Browser:
    """What the two components would hand back: clicks waiting to be made, strokes on the canvas."""

    def __init__(self):
        self.clicks: list[tuple[float, float]] = []
        self.strokes: np.ndarray | None = None
        self.canvases: list[dict] = []

    def image_coordinates(self, source, key, on_click, **_):
        import streamlit as st
        if self.clicks:
            x, y = self.clicks.pop(0)
            st.session_state[key] = {"x": x, "y": y, "width": SHOWN_WIDTH, "height": SHOWN_WIDTH,
                                     "unix_time": 0}
            on_click()

    def canvas(self, **kwargs):
        self.canvases.append(kwargs)
        return SimpleNamespace(image_data=self.strokes)


@pytest.fixture
def browser(monkeypatch):
    import ui.pose_editor
    fake = Browser()
    monkeypatch.setattr(ui.pose_editor, "streamlit_image_coordinates", fake.image_coordinates)
    monkeypatch.setattr(ui.pose_editor, "_canvas", fake.canvas)
    return fake


def _cat(home):
    return Catalog.open(load_settings({"CARTOLINA_HOME": str(home)}))


def _run(action):
    from streamlit.testing.v1 import AppTest
    return AppTest.from_function(_editor_page, args=(action,), default_timeout=60).run()


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _key(action, name):
    return f"pose_editor:{action}:{name}"


def test_it_opens_on_the_saved_skeleton_and_says_visitors_have_the_pose(demo_home, fresh_ui, browser):
    at = _run("waving")
    assert not at.exception and not at.error
    assert at.session_state[_key("waving", "kps")] == pose_edit.from_catalog(_cat(demo_home), "waving")
    assert at.selectbox(key=_key("waving", "start")).options[:2] == ["the saved skeleton", "the built-in pose standing"]
    assert "Visitors are offered this pose at every distance." in [c.value for c in at.caption]
    assert len(at.image) == 3  # the three distances on a photo


def test_a_curator_moves_two_joints_with_clicks_and_saves(demo_home, fresh_ui, browser):
    at = _run("standing")
    at.selectbox(key=_key("standing", "joint")).select("r_wrist").run()
    browser.clicks.append((60.0, 20.0))
    at.run()
    at.selectbox(key=_key("standing", "joint")).select("l_wrist").run()
    browser.clicks.append((200.0, 20.0))
    at.run()
    _button(at, "Save the skeleton").click().run()
    assert [s.value for s in at.success] == ["Saved the skeleton and its three distances."]
    fus = _cat(demo_home).get_action_image("standing", "FUS").keypoints
    assert fus[K["r_wrist"]] == [120.0, 40.0] and fus[K["l_wrist"]] == [400.0, 40.0]  # shown at half size
    mes = _cat(demo_home).get_action_image("standing", "MES").keypoints
    assert mes[K["r_wrist"]][1] < mes[K["r_shoulder"]][1]  # the arms went up at every distance


def test_hide_show_and_mirror_change_the_skeleton(demo_home, fresh_ui, browser):
    at = _run("waving")
    start = at.session_state[_key("waving", "kps")]
    at.selectbox(key=_key("waving", "joint")).select("l_ear").run()
    _button(at, "Hide this joint").click().run()
    assert at.session_state[_key("waving", "kps")][K["l_ear"]] is None
    _button(at, "Show this joint").click().run()
    assert at.session_state[_key("waving", "kps")][K["l_ear"]] is not None
    _button(at, "Mirror left and right").click().run()
    mirrored = at.session_state[_key("waving", "kps")]
    assert mirrored[K["l_wrist"]][1] == start[K["r_wrist"]][1]


def test_starting_over_from_a_built_in_pose(demo_home, fresh_ui, browser):
    at = _run("waving")
    at.selectbox(key=_key("waving", "start")).select("arms_raised").run()
    _button(at, "Start over from it").click().run()
    assert at.session_state[_key("waving", "kps")] == pose_edit.from_builtin("arms_raised")


def test_a_pose_from_a_photo_of_a_person_becomes_the_skeleton(demo_home, fresh_ui, browser):
    from skimage import data
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG")
    at = _run("waving")
    at.file_uploader(key=_key("waving", "photo_upload")).upload("me.jpg", buf.getvalue(), "image/jpeg")
    next(b for b in at.button if b.label == "Find the pose in the photo").click().run()
    assert not at.error
    assert at.success[0].value.startswith("Found the pose in the photo")
    kps = at.session_state[_key("waving", "kps")]
    assert kps[K["nose"]] is not None and kps[K["r_knee"]] is None


def test_a_photo_without_a_person_is_refused_in_words(demo_home, fresh_ui, browser):
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), "skyblue").save(buf, format="PNG")
    at = _run("waving")
    before = at.session_state[_key("waving", "kps")]
    at.file_uploader(key=_key("waving", "photo_upload")).upload("sky.png", buf.getvalue(), "image/png")
    next(b for b in at.button if b.label == "Find the pose in the photo").click().run()
    assert "no person found in the photo" in at.error[0].value
    assert at.session_state[_key("waving", "kps")] == before


def test_a_skeleton_without_a_head_is_refused(demo_home, fresh_ui, browser):
    at = _run("waving")
    for joint in ("nose", "neck", "r_eye", "l_eye", "r_ear", "l_ear"):
        at.selectbox(key=_key("waving", "joint")).select(joint).run()
        _button(at, "Hide this joint").click().run()
    before = _cat(demo_home).list_action_images("waving")
    _button(at, "Save the skeleton").click().run()
    assert "face mask is empty" in at.error[0].value
    assert _cat(demo_home).list_action_images("waving") == before


def _band(y0, y1):
    strokes = np.zeros((512, 512, 4), np.uint8)
    strokes[y0:y1, :] = (*ERASE, 255)
    return strokes


def test_a_curator_cuts_the_person_mask_where_a_railing_stands(demo_home, fresh_ui, browser):
    at = _run("standing")
    at.toggle(key=_key("standing", "painting")).set_value(True).run()
    assert _button(at, "Save the masks").disabled  # nothing painted yet
    at.radio(key=_key("standing", "mask_shot")).set_value("FUS").run()
    browser.strokes = _band(300, 330)
    at.run()
    assert not at.warning
    _button(at, "Save the masks").click().run()
    assert [s.value for s in at.success] == ["Saved the painted masks of the far shot."]
    cat = _cat(demo_home)
    mask = np.asarray(cat.open_asset(cat.get_action_image("standing", "FUS").pose_mask, "L"))
    assert set(np.unique(mask)) == {0, 255}
    assert not mask[300:330].any() and mask[200:300].any()
    assert browser.canvases[-1]["key"] != browser.canvases[0]["key"]  # a clean canvas after saving


def test_erasing_the_whole_face_is_refused_with_what_is_wrong(demo_home, fresh_ui, browser):
    at = _run("standing")
    at.toggle(key=_key("standing", "painting")).set_value(True).run()
    at.radio(key=_key("standing", "mask_which")).set_value("face").run()
    browser.strokes = _band(0, 512)
    at.run()
    assert "the face mask is empty: paint where the face goes" in [w.value for w in at.warning]
    before = _cat(demo_home).get_action_image("standing", "CLS")
    _button(at, "Save the masks").click().run()
    assert "face mask is empty" in at.error[0].value
    assert _cat(demo_home).get_action_image("standing", "CLS") == before


def test_a_skeleton_someone_else_redrew_meanwhile_is_refused_until_reloaded(demo_home, fresh_ui, browser):
    at = _run("waving")
    at.selectbox(key=_key("waving", "joint")).select("l_wrist").run()
    browser.clicks.append((230.0, 30.0))
    at.run()
    pose_edit.save_skeleton(_cat(demo_home), "waving", pose_edit.from_builtin("sitting"))  # another curator
    theirs = _cat(demo_home).list_action_images("waving")
    _button(at, "Save the skeleton").click().run()
    assert "changed meanwhile by someone else — reload" in at.error[0].value
    assert _cat(demo_home).list_action_images("waving") == theirs
    at.selectbox(key=_key("waving", "start")).select("saved").run()
    _button(at, "Start over from it").click().run()
    assert at.session_state[_key("waving", "kps")] == pose_edit.from_builtin("sitting")
    _button(at, "Save the skeleton").click().run()
    assert not at.error and at.success[0].value == "Saved the skeleton and its three distances."


def test_after_painting_its_own_masks_a_curator_can_still_save_the_skeleton(demo_home, fresh_ui, browser):
    at = _run("standing")
    at.toggle(key=_key("standing", "painting")).set_value(True).run()
    browser.strokes = _band(480, 512)
    at.run()
    _button(at, "Save the masks").click().run()
    browser.strokes = None
    _button(at, "Save the skeleton").click().run()
    assert not at.error and at.success[0].value == "Saved the skeleton and its three distances."


def test_a_pose_missing_a_distance_says_what_visitors_lack(demo_home, fresh_ui, browser):
    _cat(demo_home).delete_action_image("selfie", "MES")
    at = _run("selfie")
    assert "medium (MES): no images yet" in at.warning[0].value


def test_a_pose_without_images_starts_standing_and_asks_for_a_skeleton_first(demo_home, fresh_ui, browser):
    _cat(demo_home).add_action("bow", "bowing to the audience")
    at = _run("bow")
    assert at.session_state[_key("bow", "kps")] == pose_edit.from_builtin("standing")
    assert "the saved skeleton" not in at.selectbox(key=_key("bow", "start")).options
    assert "Save the skeleton first; then its masks can be painted." in [i.value for i in at.info]
    _button(at, "Save the skeleton").click().run()
    assert _cat(demo_home).shot_types("bow") == ["CLS", "MES", "FUS"]
    assert "Visitors are offered this pose at every distance." in [c.value for c in at.caption]
