"""Catalog editor for curators: places and their photos, poses and their images per distance."""

import streamlit as st
from babel import Locale

from engine import poses
from engine.catalog import DESCRIPTION_MAX, NAME_MAX, SHOT_LABELS, SHOT_TYPES
from engine.catalog_edit import add_action_from_library, placement_preview
from engine.config import available_languages
from engine.errors import CartolinaError
from ui.state import catalog

st.title("Catalog")
cat = catalog()
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp"]


def attempt(action, done: str, select: tuple[str, str] | None = None) -> None:
    """Run a catalog change; show its error in words, or remember a success note and rerun
    (optionally selecting the record just made)."""
    try:
        action()
    except CartolinaError as exc:
        st.error(str(exc))
        return
    st.session_state["catalog_note"] = done
    if select:
        st.session_state[select[0]] = select[1]
    st.rerun()


def translation_fields(record) -> dict:
    """Inside a record's form: its title and description in each language the visitor pages
    speak besides English, ready for the catalog's `translations=`. Empty means untranslated:
    visitors then read the English description and the name."""
    texts = {}
    for lang in available_languages():
        if lang == "en":
            continue
        now, language = record.translations.get(lang, {}), Locale.parse(lang).english_name
        shown = f"What visitors reading {language} see; names and the English texts stay as they are."
        c1, c2 = st.columns([1, 2])
        title = c1.text_input(f"Title in {language}", value=now.get("title", ""), max_chars=NAME_MAX,
                              placeholder=record.name, help=shown)
        desc = c2.text_area(f"Description in {language}", value=now.get("description", ""),
                            max_chars=DESCRIPTION_MAX, help=shown)
        texts[lang] = {"title": title, "description": desc}
    return texts


if note := st.session_state.pop("catalog_note", None):
    st.success(note)

# A keyed radio rather than st.tabs: its choice survives the reruns every edit causes.
SECTIONS = ["Places (POIs)", "Poses (actions)", "Check"]
section = st.radio("Section", SECTIONS, horizontal=True, key="catalog_section", label_visibility="collapsed")

if section == SECTIONS[0]:
    with st.expander("Add a place"):
        with st.form("add_poi", clear_on_submit=True):
            name = st.text_input("Name of the place", max_chars=60)
            desc = st.text_area("Description", max_chars=400)
            if st.form_submit_button("Add place"):
                attempt(lambda: cat.add_poi(name, desc), f"Added the place {name}.", ("edit_poi", name))
    pois = cat.list_pois()
    if not pois:
        st.info("No places yet.")
    else:
        poi_name = st.selectbox("Place", [p.name for p in pois], key="edit_poi")
        poi = next(p for p in pois if p.name == poi_name)
        with st.form("edit_poi_form"):
            desc = st.text_area("Description", value=poi.description, max_chars=400)
            texts = translation_fields(poi)
            if st.form_submit_button("Save texts"):
                attempt(lambda: cat.update_poi(poi_name, desc, translations=texts), "Saved.")
        st.subheader("Photos")
        for rec in cat.list_poi_images(poi_name):
            left, right = st.columns([2, 3])
            left.image(str(cat.asset_path(rec.file)), caption=f"{rec.name} · {rec.width}×{rec.height}")
            with right.form(f"photo_{rec.name}"):
                pdesc = st.text_area("Photo description (goes into the prompt)", value=rec.description,
                                     max_chars=400)
                ptexts = translation_fields(rec)
                c1, c2 = st.columns(2)
                if c1.form_submit_button("Save"):
                    attempt(lambda r=rec, d=pdesc, t=ptexts:
                            cat.update_poi_image(r.poi, r.name, d, translations=t), "Saved.")
                if c2.form_submit_button("Delete photo"):
                    attempt(lambda r=rec: cat.delete_poi_image(r.poi, r.name), f"Deleted {rec.name}.")
        with st.form("add_photo", clear_on_submit=True):
            st.markdown("**Add a photo**")
            pname = st.text_input("Photo name", max_chars=60)
            pdesc = st.text_area("Photo description", max_chars=400)
            upload = st.file_uploader("Photo (JPEG, PNG or WebP)", type=UPLOAD_TYPES)
            if st.form_submit_button("Add photo"):
                if upload is None:
                    st.error("Choose a photo file to upload.")
                else:
                    attempt(lambda: cat.add_poi_image(poi_name, pname, upload.getvalue(), pdesc),
                            f"Added the photo {pname}.")
        with st.expander("Delete this place"):
            sure = st.checkbox(f"Yes, delete {poi_name} and all its photos")
            if st.button("Delete place", disabled=not sure):
                attempt(lambda: cat.delete_poi(poi_name), f"Deleted {poi_name}.")

elif section == SECTIONS[1]:
    with st.expander("Add a pose"):
        with st.form("add_action", clear_on_submit=True):
            name = st.text_input("Name of the pose", max_chars=60)
            desc = st.text_area("Description (goes into the prompt and is used to pick poses from words)",
                                max_chars=400)
            template = st.selectbox("Draw its images from the built-in pose", list(poses.ACTIONS))
            if st.form_submit_button("Add pose"):
                attempt(lambda: add_action_from_library(cat, name, desc, template), f"Added the pose {name}.",
                        ("edit_action", name))
    actions = cat.list_actions()
    if not actions:
        st.info("No poses yet.")
    else:
        action_name = st.selectbox("Pose", [a.name for a in actions], key="edit_action")
        action = next(a for a in actions if a.name == action_name)
        with st.form("edit_action_form"):
            desc = st.text_area("Description", value=action.description, max_chars=400)
            texts = translation_fields(action)
            if st.form_submit_button("Save texts"):
                attempt(lambda: cat.update_action(action_name, desc, translations=texts), "Saved.")
        shot = st.radio("Distance", SHOT_TYPES, format_func=lambda s: f"{SHOT_LABELS[s]} ({s})",
                        horizontal=True, key="edit_shot")
        have = cat.shot_types(action_name)
        if shot in have:
            rec = cat.get_action_image(action_name, shot)
            c1, c2, c3 = st.columns(3)
            c1.image(str(cat.asset_path(rec.pose_image)), caption="Pose guide")
            c2.image(str(cat.asset_path(rec.pose_mask)), caption="Person mask")
            c3.image(str(cat.asset_path(rec.face_mask)), caption="Face mask")
            st.markdown("**Where the person stands in the photos**")
            current = poses.placement_from_dict(rec.placement, poses.DEFAULT_PLACEMENT[shot])
            photos = cat.list_poi_images()
            if photos:
                labels = [f"{p.poi} · {p.name}" for p in photos]
                chosen = photos[labels.index(st.selectbox("Preview on", labels, key="preview_photo"))]
                c1, c2, c3 = st.columns(3)
                x = c1.slider("Across (centre)", 0.0, 1.0, current.x, 0.01, key=f"px_{action_name}_{shot}")
                bottom = c2.slider("Feet at (from top)", 0.05, 1.5, current.bottom, 0.01,
                                   key=f"pb_{action_name}_{shot}")
                height = c3.slider("Size (share of photo height)", 0.05, 2.0, current.height, 0.01,
                                   key=f"ph_{action_name}_{shot}")
                wanted = {"x": x, "bottom": bottom, "height": height}
                try:
                    st.image(placement_preview(cat, action_name, shot, chosen.poi, chosen.name, wanted),
                             caption="Blue: the person's area · red: the face", width=560)
                except CartolinaError as exc:
                    st.error(str(exc))
                c1, c2 = st.columns(2)
                if c1.button("Save placement"):
                    attempt(lambda: cat.update_placement(action_name, shot, wanted), "Placement saved.")
                if c2.button("Back to the default for this distance", disabled=rec.placement is None):
                    attempt(lambda: cat.update_placement(action_name, shot, None), "Placement reset.")
        else:
            st.warning(f"No images for the {SHOT_LABELS[shot]} distance yet: visitors cannot use this "
                       "pose at that distance.")
        with st.form(f"upload_{action_name}_{shot}", clear_on_submit=True):
            st.markdown(f"**Upload images for {SHOT_LABELS[shot]} ({shot})** — three images of one size; "
                        "masks white where the person (or face) goes")
            c1, c2, c3 = st.columns(3)
            up_pose = c1.file_uploader("Pose guide (OpenPose skeleton)", type=UPLOAD_TYPES)
            up_mask = c2.file_uploader("Person mask", type=UPLOAD_TYPES)
            up_face = c3.file_uploader("Face mask", type=UPLOAD_TYPES)
            if st.form_submit_button("Save images"):
                if not (up_pose and up_mask and up_face):
                    st.error("All three images are needed: pose guide, person mask and face mask.")
                else:
                    attempt(lambda: cat.set_action_image(action_name, shot, up_pose.getvalue(),
                                                         up_mask.getvalue(), up_face.getvalue()),
                            f"Saved the {SHOT_LABELS[shot]} images of {action_name}.")
        with st.expander("Delete this pose"):
            sure = st.checkbox(f"Yes, delete {action_name} and its images")
            if st.button("Delete pose", disabled=not sure):
                attempt(lambda: cat.delete_action(action_name), f"Deleted {action_name}.")

else:
    problems = cat.validate()
    if problems:
        st.error("Problems a visitor would run into:\n\n" + "\n".join(f"- {p}" for p in problems))
    else:
        st.success("Every photo, pose image and mask is in place, sizes match, masks are clean and "
                   "every face lies inside its person.")
