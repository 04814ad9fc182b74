"""Your face: five photos in, an 8-digit code out, and the training watched until it's ready."""

from contextlib import suppress

import streamlit as st

from engine import codes
from engine.errors import CartolinaError, Conflict, InvalidInput, NotFound, PhotoCheckFailed
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


def show_status(code: str, s: dict) -> None:
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
    if state not in jobs.FINISHED and st.button("Cancel this training", key=f"cancel-{code}"):
        with suppress(Conflict):  # it finished meanwhile: the rerun shows how
            jobs.cancel(cfg, code)  # returns once the trainer is gone
        st.rerun()


@st.fragment(run_every=cfg.poll_s)
def follow_live(code: str) -> None:
    """Re-reads the job's status file (no process handle needed, so an app restart loses
    nothing). Drawn only while the job is active: once it ends, a full rerun draws the final
    state without this fragment, so a page left open on a finished job sends nothing."""
    try:
        s = jobs.status(cfg, code)
    except NotFound:  # forgotten meanwhile: the full rerun says so
        st.rerun()
    if s["state"] in jobs.FINISHED:
        st.rerun()
    show_status(code, s)


if code_text:
    try:
        code = codes.check_code(code_text, "code")
    except InvalidInput:
        st.error("A code is 8 digits, e.g. 04718263.")
    else:
        try:
            current = jobs.status(cfg, code)
        except NotFound:
            st.warning(f"No training with code {code}.")
        else:
            if current["state"] in jobs.FINISHED:
                show_status(code, current)
            else:
                follow_live(code)
