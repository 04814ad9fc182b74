"""Your face: photos added one at a time and each checked at once, then an 8-digit code, and
the training watched until it's ready.

The visitor is standing at the kiosk: a photo checked as it is added can be retaken on the
spot, so the page answers photo by photo instead of after five. The photos live in the session
(`train_photos`), and the uploader and the camera are emptied after each addition, so that list
is the only one a visitor sees and the only one sent to the training.
"""

import streamlit as st

from engine import codes
from engine.backends import training_backend
from engine.errors import Conflict, InvalidInput, NotFound, PhotoCheckFailed
from engine.training import jobs
from engine.training.photos import PhotoRules, identity_problems, photo_verdict, preview
from ui.code_card import show_code
from ui.i18n import _, error_text, word
from ui.state import settings

cfg = settings()
trainings = training_backend(cfg)  # on this machine, or Celery workers: the page does not know
RULES = PhotoRules.from_settings(cfg)
# Photos kept at once, good and bad: a kiosk session must not grow without bound.
KEPT = 2 * cfg.photos_max
COLUMNS = 5
N = cfg.photos_min if cfg.photos_min == cfg.photos_max else f"{cfg.photos_min}–{cfg.photos_max}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- adding photos -------------------------------------------------------------------------------

def _take_new(key: str) -> None:
    """The uploader's and the camera's on_change: swap in fresh, empty widgets (the counter is
    in their keys) and leave the checking to the run that follows, where a spinner shows and an
    error can be drawn beside the inputs; a callback can do neither."""
    value = st.session_state[key]
    files = value if isinstance(value, list) else [value] if value else []
    st.session_state["train_new"] = (st.session_state.get("train_new", [])
                                     + [(f.file_id, f.getvalue()) for f in files])
    st.session_state["train_widgets"] += 1


def add_new_photos() -> None:
    """Check each new photo once, as it arrives; a file already in the list is not added twice."""
    new = st.session_state.pop("train_new", [])
    if not new:
        return
    photos = list(st.session_state["train_photos"])
    with st.spinner(_("Checking your photo…")):
        for photo_id, data in new:
            if len(photos) < KEPT and photo_id not in {p["id"] for p in photos}:
                problem, face = photo_verdict(data, RULES)
                photos.append({"id": photo_id, "data": data, "thumb": preview(data, RULES),
                               "problem": problem, "face": face})
    st.session_state["train_photos"] = tuple(photos)


def _remove(photo_id: str) -> None:
    kept = (p for p in st.session_state["train_photos"] if p["id"] != photo_id)
    st.session_state["train_photos"] = tuple(kept)


def photo_inputs() -> None:
    if len(st.session_state["train_photos"]) >= KEPT:
        st.info(_("Remove a photo to add another."))
        return
    n = st.session_state["train_widgets"]
    st.file_uploader(_("Your photos (JPEG, PNG or WebP)"), type=["jpg", "jpeg", "png", "webp"],
                     accept_multiple_files=True, key=f"upload-{n}", on_change=_take_new,
                     args=(f"upload-{n}",))
    if st.toggle(_("Use the camera"), key="train_camera"):
        st.camera_input(_("Take a photo of your face"), key=f"camera-{n}", on_change=_take_new,
                        args=(f"camera-{n}",))


def show_photo(number: int, photo: dict) -> None:
    label = _("Photo {n}").format(n=number)
    if photo["thumb"]:
        st.image(photo["thumb"], caption=label)
    else:
        st.caption(label)
    if photo["problem"] is None:
        st.success(_("OK"), icon=":material/check:")
    else:
        st.error(_("{reason}. Remove it and add another.").format(reason=_sentence(word(photo["problem"]))))
    st.button(_("Remove"), key=f"remove-{photo['id']}", on_click=_remove, args=(photo["id"],))


def show_photos(photos: tuple) -> list[dict]:
    """The photos with their verdicts and the count; returns the good ones. A good photo whose
    face is not the one most photos show is refused as a different person, as it is added."""
    other = identity_problems({p["id"]: p["face"] for p in photos if p["problem"] is None and p.get("face")},
                              RULES.max_face_distance)
    photos = tuple(dict(p, problem=other[p["id"]]) if p["id"] in other else p for p in photos)
    good = [p for p in photos if p["problem"] is None]
    st.progress(min(1.0, len(good) / cfg.photos_min),
                text=_("{ok} of {n} photos OK").format(ok=len(good), n=N))
    if len(good) > cfg.photos_max:
        st.warning(_("Only {n} photos are used: remove {extra}.").format(n=cfg.photos_max,
                                                                         extra=len(good) - cfg.photos_max))
    cols = st.columns(COLUMNS)
    for i, photo in enumerate(photos):
        with cols[i % COLUMNS]:
            show_photo(i + 1, photo)
    return good


def start_training(good: list[dict]) -> None:
    try:
        with st.spinner(_("Checking your photos…")):
            started = trainings.submit([p["data"] for p in good])
    except PhotoCheckFailed as exc:
        # Submit checks the set again by the same rules; should it disagree, its verdicts win
        # and are shown where the others are, beside each photo.
        bad = {good[i]["id"]: why for i, why in exc.problems.items()}
        st.session_state["train_photos"] = tuple(dict(p, problem=bad.get(p["id"], p["problem"]))
                                                 for p in st.session_state["train_photos"])
        st.rerun()
    code = started["code"]
    # follow_code's widget is drawn further down, so it can still be set in this run.
    st.session_state.update(train_photos=(), lora_code=code, follow_code=code, train_started=code)
    st.query_params["code"] = code  # a reload, or a restarted server, follows it again
    st.rerun()


def photos_section() -> None:
    st.write(_("Give us **{n} photos of your face**: one person per photo, looking at the camera, in good "
               "light, sharp. We train a small personal model on them and give you an 8-digit code. Your "
               "photos are deleted as soon as the training ends.").format(n=N))
    st.caption(_("Add them one at a time or several at once: each photo is checked as soon as you add it."))
    photo_inputs()
    try:
        add_new_photos()
    except Exception as exc:
        st.error(error_text(exc))
    good = show_photos(st.session_state["train_photos"])
    ready = cfg.photos_min <= len(good) <= cfg.photos_max
    if st.button(_("Start training"), type="primary", disabled=not ready, key="start_training"):
        try:
            start_training(good)
        except Exception as exc:
            st.error(error_text(exc))


# --- following a training ------------------------------------------------------------------------

def show_progress(code: str, s: dict) -> None:
    total = max(1, s.get("total_steps") or 1)
    step, eta = s.get("step") or 0, s.get("eta_s")
    text = _("Training: step {step} of {total}").format(step=step, total=total)
    if eta:
        text += _(" · about {min} min {s} s left").format(min=int(eta // 60), s=int(eta % 60))
    st.progress(min(1.0, step / total), text=text)
    history = trainings.loss_history(code)
    if history:
        st.caption(_("How far the model still is from your photos (lower is better)"))
        st.line_chart({"step": [p[0] for p in history], "loss": [p[1] for p in history]},
                      x="step", y="loss", height=220)


def show_status(code: str, s: dict) -> None:
    state = s["state"]
    if state == "queued":
        st.info(_("Waiting for its turn: number {n} in the queue.").format(n=s.get("queue_position") or "?"))
    elif state == "running":
        show_progress(code, s)
    elif state == "succeeded":
        st.success(_("Your face is ready. Use code **{code}** on *Make a picture*.").format(code=code))
        st.page_link("app_pages/scene.py", label=_("Make a picture now"), icon=":material/palette:")
    elif state == "cancelled":
        st.warning(_("This training was cancelled."))
    elif state == jobs.BROKEN:
        st.error(_("This training's files are damaged, so it cannot go on. Please ask the staff for help."))
    else:
        st.error(_("This training failed. Your photos were deleted; please start again."))
    if state not in jobs.ENDED and st.button(_("Cancel this training"), key=f"cancel-{code}"):
        try:
            trainings.cancel(code)  # returns once the trainer is gone
        except Conflict:
            pass  # it finished meanwhile: the rerun shows how
        st.rerun()


@st.fragment(run_every=cfg.poll_s)
def follow_live(code: str) -> None:
    """Re-reads the job's status file (no process handle needed, so an app restart loses
    nothing). Drawn only while the job is active: once it ends, a full rerun draws the final
    state without this fragment, so a page left open on a finished job sends nothing."""
    try:
        s = trainings.status(code)
        if s["state"] in jobs.ENDED:
            st.rerun()
        show_status(code, s)
    except NotFound:  # forgotten meanwhile: the full rerun says so
        st.rerun()
    except Exception as exc:
        st.error(error_text(exc))


def follow_code(text: str) -> None:
    try:
        code = codes.check_code(text, "code")
    except InvalidInput:
        st.error(_("A code is 8 digits, e.g. 04718263."))
        return
    try:
        current = trainings.status(code)
    except NotFound:
        st.warning(_("No training with code {code}.").format(code=code))
        return
    if st.query_params.get("code") != code:
        st.query_params["code"] = code
    if st.session_state.pop("train_started", None) == code:
        st.success(_("Training started. Your code is **{code}** — write it down: it's how "
                     "you get your face into pictures, here or later.").format(code=code))
    if current["state"] not in ("failed", "cancelled"):
        show_code(code)
    if current["state"] in jobs.ENDED:
        show_status(code, current)
    else:
        follow_live(code)


def follow_section() -> None:
    st.divider()
    st.subheader(_("Follow a training"))
    st.session_state.setdefault("follow_code", st.query_params.get("code") or st.session_state["lora_code"])
    text = st.text_input(_("Your 8-digit code"), max_chars=8, key="follow_code")
    if not text:
        st.query_params.pop("code", None)
        return
    try:
        follow_code(text)
    except Exception as exc:
        st.error(error_text(exc))


st.title(_("Your face"))
photos_section()
follow_section()
