"""Your face: five photos in, an 8-digit code out, and the training watched until it's ready."""

import time

import streamlit as st

from engine import codes
from engine.errors import CartolinaError, InvalidInput, NotFound, PhotoCheckFailed
from engine.training import jobs
from ui.state import settings

st.title("Your face")
cfg = settings()
N = cfg.photos_min if cfg.photos_min == cfg.photos_max else f"{cfg.photos_min}–{cfg.photos_max}"
st.write(f"Give us **{N} photos of your face**: one person per photo, looking at the camera, in good "
         "light, sharp. We train a small personal model on them and give you an 8-digit code. Your "
         "photos are deleted as soon as the training ends.")

with st.form("photos", clear_on_submit=False):
    uploads = st.file_uploader("Your photos (JPEG, PNG or WebP)", type=["jpg", "jpeg", "png", "webp"],
                               accept_multiple_files=True)
    go = st.form_submit_button("Start training", type="primary")

if go:
    files = uploads or []
    try:
        with st.spinner("Checking your photos…"):
            started = jobs.submit([f.getvalue() for f in files], cfg)
    except PhotoCheckFailed as exc:
        st.error("Some photos can't be used yet — retake just those:")
        if exc.count_problem:
            st.warning(exc.count_problem.capitalize() + ".")
        cols = st.columns(max(1, min(5, len(files))))
        for i, f in enumerate(files):
            with cols[i % len(cols)]:
                try:
                    st.image(f.getvalue(), caption=f"Photo {i + 1}: {f.name}")
                except Exception:
                    st.caption(f"Photo {i + 1}: {f.name}")
                if i in exc.problems:
                    st.error(exc.problems[i])
                else:
                    st.success("OK")
    except CartolinaError as exc:
        st.error(str(exc))
    else:
        st.session_state["lora_code"] = started["code"]
        st.session_state["follow_code"] = started["code"]  # the widget below is not drawn yet
        st.success(f"Training started. Your code is **{started['code']}** — write it down: it's how "
                   "you get your face into pictures, here or later.")

st.divider()
st.subheader("Follow a training")
st.session_state.setdefault("follow_code", st.session_state.get("lora_code", ""))
code_text = st.text_input("Your 8-digit code", max_chars=8, key="follow_code")


@st.fragment(run_every=2)
def follow(code: str) -> None:
    """Re-reads the job's status file every 2 s; no process handle needed, so an app restart
    loses nothing."""
    try:
        s = jobs.status(cfg, code)
    except NotFound:
        st.warning(f"No training with code {code}.")
        return
    state = s["state"]
    if state == "queued":
        st.info(f"Waiting for its turn: number {s.get('queue_position') or '?'} in the queue.")
    elif state == "running":
        total = max(1, s.get("total_steps") or 1)
        eta = s.get("eta_s")
        st.progress(min(1.0, (s.get("step") or 0) / total),
                    text=f"Training: step {s.get('step') or 0} of {total}"
                         + (f" · about {int(eta // 60)} min {int(eta % 60)} s left" if eta else ""))
    elif state == "succeeded":
        st.success(f"Your face is ready. Use code **{code}** on *Make a picture*.")
        st.page_link("app_pages/scene.py", label="Make a picture now", icon=":material/palette:")
    elif state == "cancelled":
        st.warning("This training was cancelled.")
    else:
        st.error(f"This training failed: {s.get('error') or 'unknown reason'}. Your photos were "
                 "deleted; please start again.")
    if state in ("queued", "running"):
        if st.button("Cancel this training", key=f"cancel-{code}"):
            jobs.cancel(cfg, code)
            time.sleep(0.2)
            st.rerun(scope="fragment")


if code_text:
    try:
        follow(codes.check_code(code_text, "code"))
    except InvalidInput:
        st.error("A code is 8 digits, e.g. 04718263.")
