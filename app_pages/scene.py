"""Make a picture: place, pose, distance, who you are — then the two passes run."""

import streamlit as st

from engine import generate as gen
from engine.catalog import SHOT_LABELS
from engine.errors import CartolinaError, InvalidInput
from ui.results import show_picture
from ui.state import catalog, pipelines, settings

st.title("Make a picture")
cfg = settings()
cat = catalog()
if cfg.uses_demo_models:
    st.caption("Demo models: the picture will be noise inside the person's outline — by design.")

pois = cat.poi_names()
actions = cat.action_names()
if not pois or not actions:
    st.error("The catalog has no places or no poses yet. A curator can add them on the Catalog page.")
    st.stop()

poi = st.selectbox("Place", pois, key="scene_poi")
poi_images = cat.list_poi_images(poi)
if not poi_images:
    st.error(f"{poi} has no photos yet.")
    st.stop()
image_name = st.radio("Photo", [i.name for i in poi_images], horizontal=True, key="scene_poi_image")
chosen = next(i for i in poi_images if i.name == image_name)
st.image(str(cat.asset_path(chosen.file)), caption=chosen.description, width=420)

with st.form("scene"):
    how = st.radio("Pose", ["Choose a pose", "Describe it in words"], horizontal=True)
    c1, c2 = st.columns(2)
    action = c1.selectbox("Pose to use", actions, help="Used with 'Choose a pose'")
    action_prompt = c2.text_input("Describe your pose", max_chars=300,
                                  placeholder="e.g. taking a photo of myself",
                                  help="Used with 'Describe it in words'")
    shot = st.radio("Distance", list(SHOT_LABELS), format_func=lambda s: SHOT_LABELS[s].title(),
                    index=1, horizontal=True)
    c1, c2 = st.columns(2)
    age = c1.radio("Age", ["young", "adult", "old"], index=1, horizontal=True)
    gender = c2.radio("Gender", ["woman", "man"], horizontal=True)
    details = st.text_input("Clothing and details", max_chars=200, placeholder="a red jacket and jeans")
    lora = st.text_input("Your 8-digit code (optional)", value=st.session_state.get("lora_code", ""),
                         max_chars=8, help="From the 'Your face' page. Without it the person gets a generic face.")
    steps = st.slider("Quality (steps)", 4, 50, 20 if not cfg.uses_demo_models else 8,
                      disabled=cfg.mode == "kiosk")
    submitted = st.form_submit_button("Make my picture", type="primary")

if submitted:
    request = {"poi_name": poi, "poi_image": image_name, "action_shot_type": shot, "age": age,
               "gender": gender, "other_details": details, "selected_lora": lora.strip() or None,
               "dynamic_action_selection": how != "Choose a pose",
               "action_name": action if how == "Choose a pose" else None,
               "action_prompt": action_prompt if how != "Choose a pose" else "", "steps": steps}
    bar = st.progress(0.0, text="Starting…")

    def progress(p):
        bar.progress(p.done / max(p.total, 1), text=f"{'Body' if p.stage == 'body' else 'Face'} pass, "
                                                    f"step {p.step} of {p.stage_steps}")

    try:
        with st.spinner("Loading the models…"):
            pipes = pipelines()
        result = gen.generate(request, cfg, catalog=cat, pipelines=pipes, on_progress=progress)
    except InvalidInput as exc:
        bar.empty()
        st.error(f"Please check **{exc.field.replace('_', ' ')}**: {exc}")
    except CartolinaError as exc:
        bar.empty()
        st.error(str(exc))
    else:
        bar.empty()
        st.session_state["last_output"] = result.code
        if result.ranking:
            st.info(f"Picked the pose **{result.action_name}** for “{action_prompt}”.")
        st.session_state["last_note"] = result.face_pass_note

code = st.session_state.get("last_output")
if code:
    path = cfg.outputs_dir / f"{code}.png"
    if path.is_file():
        st.divider()
        show_picture(code, path, st.session_state.get("last_note", ""))
