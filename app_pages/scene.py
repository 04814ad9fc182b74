"""Make a picture: a place and a pose chosen by looking, a live preview of where the person
will stand, who you are — then the picture waits its turn in the line and is painted, and the
visitor learns how like them the face came out (and can have it painted again)."""

import secrets
from dataclasses import asdict

import streamlit as st

from engine import codes, picker
from engine.catalog import Catalog
from engine.errors import InvalidInput, NotFound, ServiceUnavailable
from engine.backends import FINISHED, picture_backend
from engine.pose_check import offerable_actions
from ui.choosing import catalog_version, photo_thumbnail, pose_thumbnail, scene_preview, tiles
from ui.i18n import N_, _, catalog_text, error_text, word
from ui.kiosk import keep_awake
from ui.results import show_picture
from ui.state import catalog, settings

SHOTS = {"CLS": N_("Close"), "MES": N_("Medium"), "FUS": N_("Far")}
AGES = {"young": N_("young"), "adult": N_("adult"), "old": N_("old")}
GENDERS = {"woman": N_("woman"), "man": N_("man")}
CHOOSE, DESCRIBE = N_("Choose a pose"), N_("Describe it in words")
LIKENESS = {"high": N_("high"), "fair": N_("fair"), "low": N_("low")}
RANKED_SHOWN = 4
PREVIEW_WIDTH = 640
POLL_S = 1.0  # only while the visitor's own picture waits or is painted

cfg = settings()
cat = catalog()
ss = st.session_state
line = picture_backend(cfg)
version, home = catalog_version(), str(cfg.home)
DEFAULT_STEPS = 8 if cfg.uses_demo_models else 20


# --- what the visitor asked for, and sending it -------------------------------------------------

def current_ranking() -> list | None:
    """The poses ranked for the visitor's words, or None once the words changed since."""
    return ss.get("scene_ranking") if ss.get("scene_ranked_for") == ss.get("scene_words", "").strip() else None


def request_from_choices() -> dict:
    words = ss.get("scene_words", "").strip()
    describe = ss.get("scene_how") == DESCRIBE
    ranked = describe and current_ranking()
    request = {"poi_name": ss.get("scene_poi"), "poi_image": ss.get("scene_photo"),
               "action_shot_type": ss.get("scene_shot"), "age": ss.get("scene_age"),
               "gender": ss.get("scene_gender"), "other_details": ss.get("scene_details", ""),
               "selected_lora": ss.get("scene_lora", "").strip() or None,
               "steps": ss.get("scene_steps", DEFAULT_STEPS)}
    if describe and not ranked:  # the seed's flow: the studio picks the pose from the words
        return dict(request, dynamic_action_selection=True, action_name=None, action_prompt=words)
    return dict(request, dynamic_action_selection=False, action_name=ss.get("scene_action"),
                action_prompt=words if describe else "")


def send(request: dict) -> None:
    """Put the request in the line; a wrong field is kept to be shown next to that field."""
    try:
        code = line.submit(request)
    except InvalidInput as exc:
        ss["scene_errors"] = {exc.field: error_text(exc)}
    except Exception as exc:  # noqa: BLE001 - the page boundary: logged, worded plainly
        ss["scene_errors"] = {"": error_text(exc)}
    else:
        ss["scene_errors"] = {}
        ss["picture_job"], ss["scene_request"] = code, request
        st.query_params["job"] = code  # a reload finds the picture again


def field_error(*fields: str) -> None:
    for name in fields:
        if name in ss.get("scene_errors", {}):
            st.error(ss["scene_errors"][name], icon=":material/error:")


def choose(key: str):
    def set_value(value: str) -> None:
        ss[key] = value
    return set_value


def find_poses() -> None:
    """Rank the poses for the visitor's words and preselect the best; the others stay one tap away."""
    words = ss.get("scene_words", "").strip()
    try:
        fresh = Catalog.open(cfg)
        offered_now = set(offerable_actions(fresh))
        ranking = picker.rank_actions(words, [a for a in fresh.list_actions() if a.name in offered_now])["ranking"]
    except InvalidInput as exc:
        ss["scene_errors"] = {exc.field: error_text(exc)}
        return
    ss["scene_errors"] = {}
    ss["scene_ranking"], ss["scene_ranked_for"] = ranking[:RANKED_SHOWN], words
    ss["scene_action"] = ranking[0]["action_name"]


def try_face_again(s) -> None:
    """The same picture again (its seed, so the same body) with a new face: another face seed.
    "Make another with the same settings" keeps the visitor's own request."""
    original = ss.get("scene_request")
    send(dict(asdict(s.request), seed=s.result.seed, face_seed=secrets.randbelow(2**32)))
    ss["scene_request"] = original


def show_likeness(s) -> None:
    """How like the visitor the face came out, in a word; when it is low, another try is one tap away."""
    level = (s.result.likeness or {}).get("level")
    if level not in LIKENESS:  # no face pass, or nothing measured (the demo models paint no face)
        return
    text = _("Likeness: {level}").format(level=_(LIKENESS[level]))
    if level != "low":
        st.success(text, icon=":material/face:")
        return
    st.warning(text + ". " + _("The face is not much like you this time: the same picture can get a new face."),
               icon=":material/face:")
    st.button(_("Try the face again"), on_click=try_face_again, args=(s,), icon=":material/refresh:",
              type="primary", key="try-face-again")


def try_another_pose() -> None:
    ss["picture_job"] = ""
    ss["scene_how"] = CHOOSE
    st.query_params.pop("job", None)


def cancel(code: str) -> None:
    try:
        line.cancel(code)
    except (NotFound, ServiceUnavailable):
        pass  # forgotten meanwhile (a server restart), or the service away: the rerun says so


# --- the visitor's picture: waiting, being painted, or ready --------------------------------------

def show_waiting(s) -> None:
    if s.state == "queued":
        text = (_("Number {n} in line").format(n=s.place_in_line) if s.place_in_line
                else _("Waiting for its turn"))  # a worker holds it but has not started it
        if s.eta_s is not None:
            text += " · " + _("about {s} s").format(s=max(1, round(s.eta_s)))
        st.info(text, icon=":material/hourglass_top:")
    else:
        stage = {"body": _("Painting you into the photo: step {step} of {total}"),
                 "face": _("Painting your face: step {step} of {total}")}.get(s.stage, _("Getting ready…"))
        text = stage.format(step=s.step, total=s.total_steps)
        if s.eta_s is not None:
            text += " · " + _("about {s} s left").format(s=max(1, round(s.eta_s)))
        st.progress(min(1.0, s.step / max(1, s.total_steps)), text=text)
    st.button(_("Cancel"), key="cancel-picture", on_click=cancel, args=(s.code,), icon=":material/close:")
    keep_awake()


@st.fragment(run_every=POLL_S)
def follow_picture(code: str) -> None:
    """Re-reads the line while the picture waits or is painted; once it is finished a full
    rerun draws the result without this fragment, so a finished page sends nothing."""
    try:
        s = line.status(code)
    except NotFound:
        st.rerun()
    except ServiceUnavailable as exc:  # said plainly; the next poll tries again
        st.warning(error_text(exc), icon=":material/cloud_off:")
        return
    if s.state in FINISHED:
        st.rerun()
    show_waiting(s)


def show_result(s) -> None:
    if s.state == "succeeded":
        show_picture(s.result.code, cfg.outputs_dir / f"{s.result.code}.png", word(s.result.face_pass_note))
        show_likeness(s)
        if s.request.dynamic_action_selection:
            st.info(_("Picked the pose **{pose}** for “{words}”.").format(
                pose=catalog_text(cat.get_action(s.result.action_name), "title")
                if s.result.action_name in cat.action_names() else s.result.action_name,
                words=s.request.action_prompt))
        c1, c2 = st.columns(2)
        c1.button(_("Make another with the same settings"), on_click=send, args=(ss.get("scene_request"),),
                  icon=":material/replay:", width="stretch", disabled=not ss.get("scene_request"))
        c2.button(_("Try another pose"), on_click=try_another_pose, icon=":material/accessibility_new:",
                  width="stretch")
    elif s.state == "cancelled":
        st.info(_("The picture was cancelled."), icon=":material/block:")
    else:
        st.error(error_text(s.error) if s.error else _("The picture could not be made."))


def current_job():
    """The visitor's picture: from this session, or from `?job=` after a reload."""
    code = ss.get("picture_job") or st.query_params.get("job", "")
    if not codes.is_code(code):
        return None
    try:
        s = line.status(code)
    except NotFound:
        st.query_params.pop("job", None)
        ss["picture_job"] = ""
        return None
    except ServiceUnavailable as exc:  # the picture is not forgotten: a later run finds it again
        st.warning(error_text(exc), icon=":material/cloud_off:")
        return None
    ss["picture_job"] = code
    return s


# --- the page ----------------------------------------------------------------------------------

st.title(_("Make a picture"))
if cfg.uses_demo_models:
    st.caption(_("Demo models: the picture will be noise inside the person's outline — by design."))

pois = [p for p in cat.list_pois() if cat.list_poi_images(p.name)]
offered = set(offerable_actions(cat))  # all three distances present and valid
actions = {a.name: a for a in cat.list_actions() if a.name in offered}
if not pois or not actions:
    st.error(_("There are no places or poses to choose from yet. Please ask the staff."))
    st.stop()

wanted_lora = st.query_params.get("lora", "")
if codes.is_code(wanted_lora) and not ss.get("scene_lora"):
    ss["scene_lora"] = wanted_lora  # from the QR code on the "Your face" page
for key, value in {"scene_poi": pois[0].name, "scene_how": CHOOSE, "scene_action": next(iter(actions)),
                   "scene_shot": "MES", "scene_age": "adult", "scene_gender": "woman",
                   "scene_lora": ss.get("lora_code", ""), "scene_steps": DEFAULT_STEPS}.items():
    ss.setdefault(key, value)
if ss["scene_poi"] not in {p.name for p in pois}:
    ss["scene_poi"] = pois[0].name  # a curator removed it meanwhile
if ss["scene_action"] not in actions:
    ss["scene_action"] = next(iter(actions))

job = current_job()
active = job is not None and job.state not in FINISHED

st.subheader(_("1. The place"))
poi_by_name = {p.name: p for p in pois}
if len(pois) > 1:
    st.pills(_("Place"), list(poi_by_name), key="scene_poi", required=True,
             format_func=lambda n: catalog_text(poi_by_name[n], "title"))
photos = {i.name: i for i in cat.list_poi_images(ss["scene_poi"])}
if ss.get("scene_photo") not in photos:
    ss["scene_photo"] = next(iter(photos))
tiles(list(photos), chosen=ss["scene_photo"], key="photo", columns=3,
      picture=lambda n: photo_thumbnail(version, home, ss["scene_poi"], n),
      label=lambda n: catalog_text(photos[n], "title"), on_choose=choose("scene_photo"))
field_error("poi_name", "poi_image")

st.subheader(_("2. The pose"))
st.segmented_control(_("How to choose the pose"), [CHOOSE, DESCRIBE], key="scene_how", required=True,
                     format_func=_, label_visibility="collapsed")
shot_for = lambda a: ss["scene_shot"] if ss["scene_shot"] in cat.shot_types(a) else cat.shot_types(a)[0]  # noqa: E731
if ss["scene_how"] == CHOOSE:
    tiles(list(actions), chosen=ss["scene_action"], key="pose", columns=4,
          picture=lambda a: pose_thumbnail(version, home, a, shot_for(a)),
          label=lambda a: catalog_text(actions[a], "title"), on_choose=choose("scene_action"))
else:
    st.text_input(_("Describe your pose"), key="scene_words", max_chars=300,
                  placeholder=_("e.g. taking a photo of myself"))
    st.button(_("Find poses"), on_click=find_poses, icon=":material/search:")
    ranking = current_ranking()
    if ranking:
        scores = {r["action_name"]: r["score"] for r in ranking if r["action_name"] in actions}
        st.caption(_("The best matches for your words, best first. Tap another to use it instead."))
        tiles(list(scores), chosen=ss["scene_action"], key="ranked", columns=RANKED_SHOWN,
              picture=lambda a: pose_thumbnail(version, home, a, shot_for(a)),
              label=lambda a: catalog_text(actions[a], "title"), on_choose=choose("scene_action"),
              extra=lambda a: _("match {score} %").format(score=round(100 * max(0.0, scores[a]))))
    elif ss.get("scene_words", "").strip():
        st.caption(_("Tap “Find poses” to see the poses that match, or make the picture and let the studio pick."))
field_error("action_name", "action_prompt")

st.subheader(_("3. The distance"))
describing = ss["scene_how"] == DESCRIBE and not current_ranking()
shots = list(SHOTS) if describing else cat.shot_types(ss["scene_action"])
if ss["scene_shot"] not in shots:
    ss["scene_shot"] = "MES" if "MES" in shots else shots[0]
st.segmented_control(_("Distance"), shots, key="scene_shot", required=True,
                     format_func=lambda s: _(SHOTS[s]), label_visibility="collapsed")
field_error("action_shot_type")
if describing:
    st.caption(_("The preview appears when the pose is chosen."))
else:
    st.image(scene_preview(version, home, ss["scene_poi"], ss["scene_photo"], ss["scene_action"],
                           ss["scene_shot"]), width=PREVIEW_WIDTH,
             caption=_("Preview. Blue: where you will be. Red: your face."))

st.subheader(_("4. You"))
with st.form("scene-you", border=False):
    c1, c2 = st.columns(2)
    with c1:
        st.segmented_control(_("Age"), list(AGES), format_func=lambda a: _(AGES[a]), key="scene_age",
                             required=True)
        field_error("age")
    with c2:
        st.segmented_control(_("Gender"), list(GENDERS), format_func=lambda g: _(GENDERS[g]),
                             key="scene_gender", required=True)
        field_error("gender")
    st.text_input(_("Clothing and details"), max_chars=200, placeholder=_("a red jacket and jeans"),
                  key="scene_details")
    field_error("other_details")
    st.text_input(_("Your 8-digit code (optional)"), max_chars=8, key="scene_lora",
                  help=_("From the 'Your face' page. Without it the person gets a generic face."))
    field_error("selected_lora")
    if cfg.mode == "studio":
        st.slider(_("Quality (steps)"), 4, 50, key="scene_steps")
        field_error("steps")
    st.form_submit_button(_("Make my picture"), type="primary", on_click=lambda: send(request_from_choices()),
                          disabled=active, icon=":material/palette:", width="stretch")

# Right under the button the visitor just pressed: their place in line, the passes, the picture.
field_error("")
if active:
    follow_picture(job.code)
elif job is not None:
    show_result(job)
