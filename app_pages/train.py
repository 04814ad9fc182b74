"""Your face: five photos in, an 8-digit code out, and the training watched until it's ready."""

from contextlib import suppress

import streamlit as st

from engine import codes
from engine.errors import CartolinaError, Conflict, InvalidInput, NotFound, PhotoCheckFailed
from engine.training import jobs
from ui.i18n import _, error_text, word
from ui.state import settings

st.title(_("Your face"))
cfg = settings()
N = cfg.photos_min if cfg.photos_min == cfg.photos_max else f"{cfg.photos_min}–{cfg.photos_max}"
st.write(_("Give us **{n} photos of your face**: one person per photo, looking at the camera, in good "
           "light, sharp. We train a small personal model on them and give you an 8-digit code. Your "
           "photos are deleted as soon as the training ends.").format(n=N))

with st.form("photos", clear_on_submit=False):
    uploads = st.file_uploader(_("Your photos (JPEG, PNG or WebP)"), type=["jpg", "jpeg", "png", "webp"],
                               accept_multiple_files=True)
    go = st.form_submit_button(_("Start training"), type="primary")

if go:
    files = uploads or []
    try:
        with st.spinner(_("Checking your photos…")):
            started = jobs.submit([f.getvalue() for f in files], cfg)
    except PhotoCheckFailed as exc:
        st.error(_("Some photos can't be used yet — retake just those:"))
        if exc.count_problem:
            st.warning(word(exc.count_problem).capitalize() + ".")
        cols = st.columns(max(1, min(5, len(files))))
        for i, f in enumerate(files):
            with cols[i % len(cols)]:
                try:
                    st.image(f.getvalue(), caption=_("Photo {n}: {name}").format(n=i + 1, name=f.name))
                except Exception:
                    st.caption(_("Photo {n}: {name}").format(n=i + 1, name=f.name))
                if i in exc.problems:
                    st.error(word(exc.problems[i]))
                else:
                    st.success(_("OK"))
    except CartolinaError as exc:
        st.error(error_text(exc))
    else:
        st.session_state["lora_code"] = started["code"]
        st.session_state["follow_code"] = started["code"]  # the widget below is not drawn yet
        st.success(_("Training started. Your code is **{code}** — write it down: it's how "
                     "you get your face into pictures, here or later.").format(code=started["code"]))

st.divider()
st.subheader(_("Follow a training"))
st.session_state.setdefault("follow_code", st.session_state.get("lora_code", ""))
code_text = st.text_input(_("Your 8-digit code"), max_chars=8, key="follow_code")


def show_status(code: str, s: dict) -> None:
    state = s["state"]
    if state == "queued":
        st.info(_("Waiting for its turn: number {n} in the queue.").format(n=s.get("queue_position") or "?"))
    elif state == "running":
        total = max(1, s.get("total_steps") or 1)
        eta = s.get("eta_s")
        st.progress(min(1.0, (s.get("step") or 0) / total),
                    text=_("Training: step {step} of {total}").format(step=s.get("step") or 0, total=total)
                         + (_(" · about {min} min {s} s left").format(min=int(eta // 60), s=int(eta % 60))
                            if eta else ""))
    elif state == "succeeded":
        st.success(_("Your face is ready. Use code **{code}** on *Make a picture*.").format(code=code))
        st.page_link("app_pages/scene.py", label=_("Make a picture now"), icon=":material/palette:")
    elif state == "cancelled":
        st.warning(_("This training was cancelled."))
    else:
        st.error(_("This training failed. Your photos were deleted; please start again."))
    if state not in jobs.FINISHED and st.button(_("Cancel this training"), key=f"cancel-{code}"):
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
        st.error(_("A code is 8 digits, e.g. 04718263."))
    else:
        try:
            current = jobs.status(cfg, code)
        except NotFound:
            st.warning(_("No training with code {code}.").format(code=code))
        else:
            if current["state"] in jobs.FINISHED:
                show_status(code, current)
            else:
                follow_live(code)
