"""The "Make a picture" page in Streamlit's AppTest: choosing by looking, the preview, errors
next to their field in the visitor's language, the line and cancel, the result's buttons.
The real engine runs underneath (demo models, the process's picture line); the tests hold the
pipelines' lock to keep another visitor's picture "being painted" while they look."""

import contextlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.config import load_settings
from engine.backends.embedded_pictures import picture_queue
from tests.lines import REQUEST, painting_blocked, until

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "scene.py")


@pytest.fixture
def studio(demo_home):
    from ui.state import settings
    settings.clear()  # each test reads its own data root
    yield load_settings()
    settings.clear()
    picture_queue(load_settings()).drain(timeout=300)  # no picture painted past the test


def _page(lang: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    if lang:
        at.query_params["lang"] = lang
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def _texts(at: AppTest) -> str:
    parts = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "error", "warning", "success"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def _chosen(at: AppTest) -> list[str]:
    """The tiles whose button is filled: the photo and the pose chosen."""
    return [b.key for b in at.button if b.key and b.key[:5] in ("photo", "pose-", "ranke")
            and b.proto.type == "primary"]


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _submit(at: AppTest) -> AppTest:
    """Press the form's one submit button, whatever the language calls it."""
    return next(b for b in at.button if (b.key or "").startswith("FormSubmitter:scene-you")).click().run()


@contextlib.contextmanager
def someone_else_painting(settings):
    """Another visitor's picture holds the pipelines: it is running, the line waits behind it."""
    line = picture_queue(settings)
    with painting_blocked(settings):
        other = line.submit(dict(REQUEST, steps=2))
        until(lambda: line.status(other).state == "running")
        yield line


def test_places_and_poses_are_chosen_from_thumbnails_with_a_live_preview(studio):
    at = _page()
    assert not at.exception
    assert [s.value for s in at.subheader] == ["1. The place", "2. The pose", "3. The distance",
                                                "4. You"]
    assert _chosen(at) == ["photo-0", "pose-0"]  # one photo and one pose are chosen from the start
    assert at.button(key="pose-0").label == "Arms crossed"  # the pose's name, read as words
    first_preview = at.image[-1].value[0]
    pose_buttons = [b for b in at.button if b.key and b.key.startswith("pose-")]
    assert len(pose_buttons) == 8  # every pose of the demo catalog, as a thumbnail
    at.button(key="pose-3").click().run()
    assert at.session_state["scene_action"] == "pointing"
    assert _chosen(at) == ["photo-0", "pose-3"]
    at.segmented_control(key="scene_shot").set_value("FUS").run()
    assert at.image[-1].value[0] != first_preview  # the preview follows the choice
    at.pills(key="scene_poi").set_value("Piazza del Duomo").run()
    assert at.image[-1].captions == ["Preview. Blue: where you will be. Red: your face."]
    assert not at.exception


def test_the_page_speaks_italian_including_catalog_texts(studio):
    at = _page("it")
    text = _texts(at)
    assert "1. Il luogo" in text and "2. La posa" in text and "4. Tu" in text
    assert at.image[-1].captions == ["Anteprima. Blu: dove sarai tu. Rosso: il tuo viso."]
    assert "Crea la mia foto" in [b.label for b in at.button]
    assert at.button(key="pose-7").label == "Saluto"  # the curators' Italian title of "waving"


@pytest.mark.parametrize("lang,expected", [
    (None, "Please check your 8-digit code: not a valid code. Accepted: 8 digits."),
    ("it", "Controlla il tuo codice di 8 cifre: non è un codice valido. Valori accettati: 8 cifre."),
])
def test_a_bad_code_is_shown_next_to_its_field_and_nothing_is_queued(studio, lang, expected):
    at = _page(lang)
    at.text_input(key="scene_lora").input("1234")  # a form field: sent with the submit
    at = _submit(at)
    assert expected in [e.value for e in at.error]
    assert "picture_job" not in at.session_state or not at.session_state["picture_job"]
    assert not picture_queue(studio)._jobs


def test_a_picture_waits_its_turn_can_be_cancelled_and_the_line_moves(studio):
    with someone_else_painting(studio) as line:
        at = _submit(_page())
        code = at.session_state["picture_job"]
        assert line.status(code).place_in_line == 2
        assert at.query_params["job"] == code  # a reload finds it again
        assert "Number 2 in line" in _texts(at)
        assert _button(at, "Make my picture").disabled  # one picture at a time per visitor
        _button(at, "Cancel").click().run()
        assert line.status(code).state == "cancelled"
        assert "The picture was cancelled." in _texts(at)


def test_a_picture_being_painted_is_cancelled_and_nothing_is_saved(studio):
    """Cancel works during the passes too: the visitor's own picture is running (the
    pipelines held, as at its first step) and stops at its next step once they are free."""
    line = picture_queue(studio)
    with painting_blocked(studio):
        at = _submit(_page())
        code = at.session_state["picture_job"]
        until(lambda: line.status(code).state == "running")
        at.run()
        assert [p.proto.text for p in at.progress] == ["Getting ready…"]  # no place in line: its turn
        assert "Number" not in _texts(at) and _button(at, "Make my picture").disabled
        _button(at, "Cancel").click().run()
        assert line.status(code).state == "running"  # it stops at its next step, not mid-step
    assert line.wait(code, timeout=300).state == "cancelled"
    at.run()
    assert "The picture was cancelled." in _texts(at) and not at.progress
    assert not (studio.outputs_dir / f"{code}.png").exists()
    assert not _button(at, "Make my picture").disabled


def test_the_picture_is_shown_with_another_and_another_pose(studio):
    at = _page()
    at.button(key="pose-1").click().run()
    at = _submit(at)
    code = at.session_state["picture_job"]
    line = picture_queue(studio)
    assert line.wait(code, timeout=300).state == "succeeded"
    at.run()
    assert f"Picture {code}" in [c.value for c in at.caption] or code in _texts(at)
    assert (studio.outputs_dir / f"{code}.png").is_file()
    _button(at, "Make another with the same settings").click().run()
    again = at.session_state["picture_job"]
    assert again != code and line.status(again).request == line.status(code).request
    line.wait(again, timeout=300)
    at.run()
    _button(at, "Try another pose").click().run()
    assert at.session_state["picture_job"] == "" and "job" not in at.query_params
    assert at.session_state["scene_how"] == "Choose a pose"


def test_a_reload_finds_the_picture_by_the_job_in_the_url(studio):
    line = picture_queue(studio)
    code = line.submit(REQUEST)
    line.wait(code, timeout=300)
    at = _page(job=code)
    assert "Make another with the same settings" in [b.label for b in at.button]


def test_described_poses_are_ranked_with_scores_and_the_second_is_one_tap_away(studio):
    at = _page()
    at.segmented_control(key="scene_how").set_value("Describe it in words").run()
    at.text_input(key="scene_words").input("waving hello to a friend").run()
    _button(at, "Find poses").click().run()
    ranked = [b for b in at.button if b.key and b.key.startswith("ranked-")]
    assert len(ranked) == 4 and "ranked-0" in _chosen(at)
    assert sum(c.value.startswith("match ") for c in at.caption) == 4
    best, second = (r["action_name"] for r in at.session_state["scene_ranking"][:2])
    assert at.session_state["scene_action"] == best
    at.button(key="ranked-1").click().run()
    assert at.session_state["scene_action"] == second and "ranked-1" in _chosen(at)
    at = _submit(at)
    status = picture_queue(studio).status(at.session_state["picture_job"])
    assert status.request.action_name == second and not status.request.dynamic_action_selection


def test_words_without_ranking_let_the_studio_pick(studio):
    at = _page()
    at.segmented_control(key="scene_how").set_value("Describe it in words").run()
    at.text_input(key="scene_words").input("sitting on a bench").run()
    at = _submit(at)
    request = picture_queue(studio).status(at.session_state["picture_job"]).request
    assert request.dynamic_action_selection and request.action_prompt == "sitting on a bench"


def test_the_code_from_the_qr_link_is_filled_in(studio):
    at = _page(lora="04718263")
    assert at.text_input(key="scene_lora").value == "04718263"


def test_a_pose_missing_a_distance_is_not_offered(studio):
    """A curator's half-made pose stays off the visitors' page until all three distances are there."""
    from engine.catalog import Catalog
    Catalog.open(studio).delete_action_image("selfie", "MES")
    at = _page()
    assert "Selfie" not in [b.label for b in at.button if (b.key or "").startswith("pose-")]
    assert len([b for b in at.button if (b.key or "").startswith("pose-")]) == 7
