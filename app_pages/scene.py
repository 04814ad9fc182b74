"""Make a picture: place, pose, distance, who you are — then the two passes run."""

import streamlit as st

from engine import generate as gen
from engine.errors import CartolinaError
from ui.i18n import N_, _, error_text, word
from ui.results import show_picture
from ui.state import catalog, pipelines, settings

SHOTS = {"CLS": N_("Close"), "MES": N_("Medium"), "FUS": N_("Far")}
AGES = {"young": N_("young"), "adult": N_("adult"), "old": N_("old")}
GENDERS = {"woman": N_("woman"), "man": N_("man")}
CHOOSE, DESCRIBE = N_("Choose a pose"), N_("Describe it in words")

st.title(_("Make a picture"))
cfg = settings()
cat = catalog()
if cfg.uses_demo_models:
    st.caption(_("Demo models: the picture will be noise inside the person's outline — by design."))

pois = cat.poi_names()
actions = cat.action_names()
if not pois or not actions:
    st.error(_("There are no places or poses to choose from yet. Please ask the staff."))
    st.stop()

poi = st.selectbox(_("Place"), pois, key="scene_poi")
poi_images = cat.list_poi_images(poi)
if not poi_images:
    st.error(_("{place} has no photos yet.").format(place=poi))
    st.stop()
image_name = st.radio(_("Photo"), [i.name for i in poi_images], horizontal=True, key="scene_poi_image")
chosen = next(i for i in poi_images if i.name == image_name)
st.image(str(cat.asset_path(chosen.file)), caption=chosen.description, width=420)

with st.form("scene"):
    how = st.radio(_("Pose"), [CHOOSE, DESCRIBE], format_func=_, horizontal=True)
    c1, c2 = st.columns(2)
    action = c1.selectbox(_("Pose to use"), actions, help=_("Used with 'Choose a pose'"))
    action_prompt = c2.text_input(_("Describe your pose"), max_chars=300,
                                  placeholder=_("e.g. taking a photo of myself"),
                                  help=_("Used with 'Describe it in words'"))
    shot = st.radio(_("Distance"), list(SHOTS), format_func=lambda s: _(SHOTS[s]), index=1, horizontal=True)
    c1, c2 = st.columns(2)
    age = c1.radio(_("Age"), list(AGES), format_func=lambda a: _(AGES[a]), index=1, horizontal=True)
    gender = c2.radio(_("Gender"), list(GENDERS), format_func=lambda g: _(GENDERS[g]), horizontal=True)
    details = st.text_input(_("Clothing and details"), max_chars=200, placeholder=_("a red jacket and jeans"))
    lora = st.text_input(_("Your 8-digit code (optional)"), value=st.session_state.get("lora_code", ""),
                         max_chars=8, help=_("From the 'Your face' page. Without it the person gets a generic face."))
    steps = st.slider(_("Quality (steps)"), 4, 50, 20 if not cfg.uses_demo_models else 8,
                      disabled=cfg.mode == "kiosk")
    submitted = st.form_submit_button(_("Make my picture"), type="primary")

if submitted:
    request = {"poi_name": poi, "poi_image": image_name, "action_shot_type": shot, "age": age,
               "gender": gender, "other_details": details, "selected_lora": lora.strip() or None,
               "dynamic_action_selection": how == DESCRIBE,
               "action_name": action if how == CHOOSE else None,
               "action_prompt": action_prompt if how == DESCRIBE else "", "steps": steps}
    bar = st.progress(0.0, text=_("Starting…"))

    def progress(p):
        stage = _("Body pass, step {step} of {total}") if p.stage == "body" else _("Face pass, step {step} of {total}")
        bar.progress(p.done / max(p.total, 1), text=stage.format(step=p.step, total=p.stage_steps))

    try:
        with st.spinner(_("Loading the models…")):
            pipes = pipelines()
        result = gen.generate(request, cfg, catalog=cat, pipelines=pipes, on_progress=progress)
    except CartolinaError as exc:
        bar.empty()
        st.error(error_text(exc))
    else:
        bar.empty()
        st.session_state["last_output"] = result.code
        if result.ranking:
            st.info(_("Picked the pose **{pose}** for “{words}”.").format(pose=result.action_name,
                                                                          words=action_prompt))
        st.session_state["last_note"] = result.face_pass_note

code = st.session_state.get("last_output")
if code:
    path = cfg.outputs_dir / f"{code}.png"
    if path.is_file():
        st.divider()
        show_picture(code, path, word(st.session_state.get("last_note", "")))
