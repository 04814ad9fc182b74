"""The poses (actions) and their images per distance, in the catalog editor."""

from __future__ import annotations

import streamlit as st

from engine import poses
from engine.catalog import DESCRIPTION_MAX, NAME_MAX, SHOT_LABELS, SHOT_TYPES, Action, Catalog
from engine.catalog_edit import action_deletion, add_action_from_library, placement_preview
from engine.errors import CartolinaError, InvalidInput
from engine.pose_check import action_problems
from ui.catalog_forms import (UPLOAD_TYPES, change_button, manage_row, pick, prompt_preview, record_key,
                              run_change, select_record, translation_fields, value)
from ui.pose_editor import pose_editor


def poses_section(cat: Catalog) -> None:
    with st.expander("Add a pose"):
        with st.form("add_action", clear_on_submit=True):
            st.text_input("Name of the pose", max_chars=NAME_MAX, key="new_action_name")
            st.text_area("Description (goes into the prompt and is used to pick poses from words)",
                         max_chars=DESCRIPTION_MAX, key="new_action_description")
            st.selectbox("Draw its images from the built-in pose", list(poses.ACTIONS), key="new_action_template")
            st.form_submit_button("Add pose", on_click=run_change, args=(_add_action(cat),
                                                                          lambda rec: f"Added the pose {rec.name}."))
    actions = cat.list_actions()
    if not actions:
        st.info("No poses yet.")
        return
    names = [a.name for a in actions]
    action = select_record("Pose", actions, "edit_action")
    key = record_key("action", action.name, action.version)
    described = st.text_area("Description", value=action.description, max_chars=DESCRIPTION_MAX,
                             key=f"{key}:description")
    prompt_preview(cat, action_description=described)
    texts = translation_fields(action, key)
    change_button("Save texts", lambda: cat.update_action(action.name, value(f"{key}:description"),
                                                          translations=texts(), expected_version=action.version),
                  "Saved.", key=f"{key}:save")
    manage_row(key=key, what="pose", name=action.name, names=names,
               rename=lambda new: pick("edit_action", cat.rename_action(action.name, new,
                                                                       expected_version=action.version)),
               reorder=cat.reorder_actions, goes=action_deletion(cat, action.name),
               delete=lambda: cat.delete_action(action.name, expected_version=action.version))
    problems = action_problems(cat, action.name)
    if problems:  # what keeps it off the visitors' pages
        st.warning("Not offered to visitors until fixed: " + "; ".join(problems))
    opened = f"pose_editor_open:{action.name}"
    # Keyed, and drawn only while open: the editor's reruns must not close it, and a closed
    # editor should cost nothing.
    with st.expander("Edit the skeleton and masks", key=opened, on_change="rerun"):
        if st.session_state.get(opened):
            pose_editor(cat, action.name)
    shot = st.radio("Distance", SHOT_TYPES, format_func=lambda s: f"{SHOT_LABELS[s]} ({s})",
                    horizontal=True, key="edit_shot")
    distance(cat, action, shot)


def _add_action(cat: Catalog):
    def add() -> Action:
        made = add_action_from_library(cat, value("new_action_name"), value("new_action_description"),
                                       value("new_action_template"))
        return pick("edit_action", cat.get_action(made[0].action))
    return add


def distance(cat: Catalog, action: Action, shot: str) -> None:
    """One distance of a pose: its images, where the person stands in the photos, new images."""
    have = shot in cat.shot_types(action.name)
    rec = cat.get_action_image(action.name, shot) if have else None
    if rec:
        c1, c2, c3 = st.columns(3)
        c1.image(str(cat.asset_path(rec.pose_image)), caption="Pose guide")
        c2.image(str(cat.asset_path(rec.pose_mask)), caption="Person mask")
        c3.image(str(cat.asset_path(rec.face_mask)), caption="Face mask")
        placement(cat, action, shot, rec)
    else:
        st.warning(f"No images for the {SHOT_LABELS[shot]} distance yet: visitors cannot use this "
                   "pose at that distance.")
    key = f"upload:{action.name}:{shot}:v{rec.version if rec else 0}"
    with st.form(key, clear_on_submit=True):
        st.markdown(f"**Upload images for {SHOT_LABELS[shot]} ({shot})** — three images of one size; "
                    "masks white where the person (or face) goes")
        c1, c2, c3 = st.columns(3)
        c1.file_uploader("Pose guide (OpenPose skeleton)", type=UPLOAD_TYPES, key=f"{key}:pose")
        c2.file_uploader("Person mask", type=UPLOAD_TYPES, key=f"{key}:mask")
        c3.file_uploader("Face mask", type=UPLOAD_TYPES, key=f"{key}:face")
        st.form_submit_button("Save images", on_click=run_change, args=(
            lambda: cat.set_action_image(action.name, shot, *_three(key), expected_version=rec.version if rec else 0),
            f"Saved the {SHOT_LABELS[shot]} images of {action.name}."))


def _three(key: str) -> list[bytes]:
    uploads = [value(f"{key}:{part}") for part in ("pose", "mask", "face")]
    if not all(uploads):
        raise InvalidInput("images", None, "pose guide, person mask and face mask",
                           reason="all three images are needed")
    return [u.getvalue() for u in uploads]


def placement(cat: Catalog, action: Action, shot: str, rec) -> None:
    st.markdown("**Where the person stands in the photos**")
    photos = cat.list_poi_images()
    if not photos:
        return
    current = poses.placement_from_dict(rec.placement, poses.DEFAULT_PLACEMENT[shot])
    labels = [f"{p.poi} · {p.name}" for p in photos]
    chosen = photos[labels.index(st.selectbox("Preview on", labels, key="preview_photo"))]
    key = f"{action.name}_{shot}_v{rec.version}"
    c1, c2, c3 = st.columns(3)
    c1.slider("Across (centre)", 0.0, 1.0, current.x, 0.01, key=f"px_{key}")
    c2.slider("Feet at (from top)", 0.05, 1.5, current.bottom, 0.01, key=f"pb_{key}")
    c3.slider("Size (share of photo height)", 0.05, 2.0, current.height, 0.01, key=f"ph_{key}")

    def wanted() -> dict:
        return {"x": value(f"px_{key}"), "bottom": value(f"pb_{key}"), "height": value(f"ph_{key}")}

    try:
        st.image(placement_preview(cat, action.name, shot, chosen.poi, chosen.name, wanted()),
                 caption="Blue: the person's area · red: the face", width=560)
    except CartolinaError as exc:
        st.error(str(exc))
    c1, c2 = st.columns(2)
    with c1:
        change_button("Save placement", lambda: cat.update_placement(action.name, shot, wanted(),
                                                                     expected_version=rec.version),
                      "Placement saved.", key=f"save_{key}")
    with c2:
        change_button("Back to the default for this distance", lambda: cat.update_placement(
            action.name, shot, None, expected_version=rec.version), "Placement reset.",
            key=f"reset_{key}", disabled=rec.placement is None)
