"""The skeleton and mask editor for one pose, drawn inside the catalog page.

The unsaved skeleton lives in the session; every change to it happens in a widget callback,
which Streamlit runs before drawing the page again, so the picture a curator clicks on is
always the skeleton they just made, without a second rerun. What a change means is the
engine's (`pose_edit`, `pose_masks`, `pose_from_photo`, `pose_check`): this module lays out.
"""

from __future__ import annotations

from typing import Callable

import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from engine import images, pose_check, pose_edit, pose_masks, poses
from engine.catalog import SHOT_LABELS, Catalog
from engine.errors import CartolinaError
from engine.poses import KEYPOINT_NAMES, SHOT_TYPES

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp"]
PREVIEW_SIDE = 480  # POI photos are previewed this small: three redraws on every click
SAVED = "saved"
MASKS = {"person": "Person", "face": "Face"}
BRUSHES = {"paint": ("Paint", pose_masks.PAINT), "erase": ("Erase", pose_masks.ERASE)}


def pose_editor(cat: Catalog, action_name: str) -> None:
    """Everything a curator needs to make one pose: where the skeleton starts, moving its
    joints, how it looks at each distance on a photo, masks by hand, and what visitors
    are still missing."""
    def key(name: str) -> str:
        return f"pose_editor:{action_name}:{name}"

    ss = st.session_state
    if key("kps") not in ss:
        _load_saved(cat, action_name, key)
        ss[key("kps")] = ss[key("kps")] or pose_edit.from_builtin("standing")
    if note := ss.get(key("note")):
        st.success(note)
    _readiness(cat, action_name)
    _start(cat, action_name, key)
    _skeleton(cat, action_name, key)
    _masks(cat, action_name, key)


def _attempt(key: Callable[[str], str], change: Callable[[], object], done: str) -> None:
    """Run a catalog change: its error in words, or a note and a fresh page that shows it.
    The note stays until the next edit, not just one run: the drawing canvas reruns the page
    as it mounts, which would wipe it before the curator could read it."""
    try:
        change()
    except CartolinaError as exc:
        st.error(str(exc))
        return
    st.session_state[key("note")] = done
    st.rerun()


def _canvas(**kwargs):
    """streamlit-drawable-canvas registers its component on import, which needs a running
    app: importing it here keeps this module importable by tests and tools."""
    from streamlit_drawable_canvas import st_canvas
    return st_canvas(**kwargs)


def _load_saved(cat: Catalog, action_name: str, key) -> None:
    """The saved skeleton, and the drawings a save will be checked against: what this
    curator saw, so someone else's change in between is refused, not overwritten."""
    st.session_state[key("kps")] = pose_edit.from_catalog(cat, action_name)
    st.session_state[key("based_on")] = pose_edit.drawings(cat, action_name)


def _saved(cat: Catalog, action_name: str, key, save: Callable[[], object]) -> Callable[[], None]:
    """A save, after which this curator's own drawings are the ones to check against."""
    def run():
        save()
        st.session_state[key("based_on")] = pose_edit.drawings(cat, action_name)
    return run


def _apply(key, edit: Callable, *args) -> None:
    """A callback: one edit of the session's skeleton (what was saved is no news any more)."""
    st.session_state[key("kps")] = edit(st.session_state[key("kps")], *args)
    st.session_state.pop(key("note"), None)


def _readiness(cat: Catalog, action_name: str) -> None:
    problems = pose_check.action_problems(cat, action_name)
    if problems:
        st.warning("Visitors are not offered this pose until every distance is ready:\n\n"
                   + "\n".join(f"- {p}" for p in problems))
    else:
        st.caption("Visitors are offered this pose at every distance.")


# --- where the skeleton starts -------------------------------------------------------------

def _start(cat: Catalog, action_name: str, key) -> None:
    saved = pose_edit.from_catalog(cat, action_name)
    options = ([SAVED] if saved else []) + list(poses.ACTIONS)
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    choice = c1.selectbox("Start from", options, key=key("start"),
                          format_func=lambda o: "the saved skeleton" if o == SAVED else f"the built-in pose {o}")

    def start_over():
        if choice == SAVED:
            _load_saved(cat, action_name, key)
        else:
            st.session_state[key("kps")] = pose_edit.from_builtin(choice)
        st.session_state.pop(key("note"), None)

    c2.button("Start over from it", on_click=start_over, key=key("start_over"))
    with st.form(key("photo_form"), clear_on_submit=True):
        upload = st.file_uploader("A pose from a photo: a person standing as the pose should",
                                  type=UPLOAD_TYPES, key=key("photo_upload"))
        if st.form_submit_button("Find the pose in the photo"):
            if upload is None:
                st.error("Choose a photo of a person first.")
            else:
                _attempt(key, lambda: _from_photo(key, upload.getvalue()),
                         "Found the pose in the photo: joints it could not see are hidden; show "
                         "them and click where they go.")


def _from_photo(key, data: bytes) -> None:
    from engine.pose_from_photo import find_pose  # loads mediapipe: only when asked
    photo = images.load_image(data, field="photo")
    st.session_state[key("kps")] = pose_edit.from_photo(find_pose(photo), photo.size)


# --- the skeleton ---------------------------------------------------------------------------

def _skeleton(cat: Catalog, action_name: str, key) -> None:
    ss = st.session_state
    st.markdown("**The skeleton**: choose a joint, then click where it goes. Right and left are "
                "the person's own.")
    view, controls = st.columns([3, 2])
    with controls:
        joint = st.selectbox("Joint", KEYPOINT_NAMES, format_func=pose_edit.JOINT_LABELS.get, key=key("joint"))
        hidden = ss[key("kps")][KEYPOINT_NAMES.index(joint)] is None
        toggle = pose_edit.show if hidden else pose_edit.hide
        st.button("Show this joint" if hidden else "Hide this joint", key=key("toggle"),
                  on_click=_apply, args=(key, toggle, joint))
        st.button("Mirror left and right", key=key("mirror"), on_click=_apply, args=(key, pose_edit.mirror))

    def clicked():
        at = ss[key("click")]
        scale = pose_edit.EDIT_SIZE[0] / at["width"]
        _apply(key, pose_edit.move, ss[key("joint")], (at["x"] * scale, at["y"] * scale))

    try:
        drawn = pose_edit.draw_shots(ss[key("kps")])
        picture = pose_edit.editing_view(ss[key("kps")], joint)
    except CartolinaError as exc:
        st.error(str(exc))
        return
    with view:
        streamlit_image_coordinates(picture, key=key("click"), on_click=clicked, cursor="crosshair",
                                    width="stretch")
    _previews(cat, action_name, key, drawn)
    st.caption("Saving redraws the person and face masks of all three distances from the skeleton: "
               "masks cut by hand have to be cut again.")
    if st.button("Save the skeleton", type="primary", key=key("save")):
        _attempt(key, _saved(cat, action_name, key, lambda: pose_edit.save_skeleton(
            cat, action_name, ss[key("kps")], based_on=ss[key("based_on")])),
                 "Saved the skeleton and its three distances.")


def _previews(cat: Catalog, action_name: str, key, drawn: dict) -> None:
    photos = cat.list_poi_images()
    photo = None
    if photos:
        labels = [f"{p.poi} · {p.name}" for p in photos]
        chosen = photos[labels.index(st.selectbox("See it on the photo", labels, key=key("photo")))]
        photo = cat.open_asset(chosen.file)
        photo.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    for column, shot in zip(st.columns(len(SHOT_TYPES)), SHOT_TYPES):
        d = drawn[shot]
        shown = pose_edit.preview_on_photo(cat, action_name, shot, d, photo) if photo is not None \
            else pose_masks.painting_view(d["pose"], d["pose_mask"], d["face_mask"])
        column.image(shown, caption=f"{SHOT_LABELS[shot]} ({shot})")


# --- masks by hand --------------------------------------------------------------------------

def _masks(cat: Catalog, action_name: str, key) -> None:
    st.markdown("**Masks by hand**: paint or erase where the person, or the face, may be painted "
                "(cut the person where a railing stands in front of them).")
    have = cat.shot_types(action_name)
    if not have:
        st.info("Save the skeleton first; then its masks can be painted.")
        return
    if not st.toggle("Paint the masks", key=key("painting")):  # the canvas costs a rerun as it mounts
        return
    c1, c2, c3, c4 = st.columns(4)
    shot = c1.radio("Distance to paint", have, key=key("mask_shot"), format_func=lambda s: f"{SHOT_LABELS[s]} ({s})")
    which = c2.radio("Mask to paint", list(MASKS), format_func=MASKS.get, key=key("mask_which"))
    brush = c3.radio("Brush", list(BRUSHES), format_func=lambda b: BRUSHES[b][0], key=key("mask_brush"))
    width = c4.slider("Brush size", 2, 60, 16, key=key("mask_width"))
    rec = cat.get_action_image(action_name, shot)
    pose = cat.open_asset(rec.pose_image)
    pmask, fmask = cat.open_asset(rec.pose_mask, "L"), cat.open_asset(rec.face_mask, "L")
    side = min(pose.width, 512)
    # Named after the stored drawing, which gets a new name at every save: the canvas then
    # starts clean, and strokes never land on a drawing they were not painted over.
    drawing = _canvas(background_image=pose_masks.painting_view(pose, pmask, fmask),
                      stroke_color=pose_masks.hex_colour(BRUSHES[brush][1]), stroke_width=width,
                      drawing_mode="freedraw", width=side, height=round(pose.height * side / pose.width),
                      return_image_data=True, key=key(f"canvas:{rec.pose_image}:{which}"))
    strokes = drawing.image_data
    painted = {"person": pmask, "face": fmask}
    painted[which] = pose_masks.apply_strokes(painted[which], strokes)
    result, verdict = st.columns([1, 2])
    result.image(pose_masks.painting_view(pose, painted["person"], painted["face"]),
                 caption="After your strokes · blue: the person · red: the face", width=side // 2)
    with verdict:
        for problem in pose_check.mask_problems(pose.size, painted["person"], painted["face"]):
            st.warning(problem)
        # A click that reaches a run whose canvas was reset (the shot redrawn meanwhile) has no strokes.
        if st.button("Save the masks", key=key("save_masks"), disabled=not pose_masks.has_strokes(strokes)) \
                and pose_masks.has_strokes(strokes):
            _attempt(key, _saved(cat, action_name, key, lambda: pose_masks.save_masks(
                cat, action_name, shot, painted["person"], painted["face"], based_on=rec.pose_image)),
                     f"Saved the painted masks of the {SHOT_LABELS[shot]} shot.")
