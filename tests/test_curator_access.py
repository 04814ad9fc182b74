"""Who reaches the catalog editor: anyone in studio mode; at a kiosk only a session that gave the
curators' password, a few tries a minute; nobody when no password is set."""

import re

import pytest
from streamlit.testing.v1 import AppTest

from engine.curator_access import CuratorGate
from tests.server import REPO

PASSWORD = "correct horse"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_right_password_opens_and_a_wrong_one_does_not():
    gate = CuratorGate(PASSWORD)
    assert not gate.attempt("correct hors", "a").ok
    assert not gate.attempt(PASSWORD + " ", "a").ok
    assert gate.attempt(PASSWORD, "a").ok
    assert gate.attempt("", "b").ok is False


def test_no_password_opens_nothing_not_even_an_empty_guess():
    gate = CuratorGate("")
    assert not gate.enabled
    assert not gate.attempt("", "a").ok


def test_a_client_past_its_tries_is_refused_unchecked_until_the_minute_is_over():
    clock = Clock()
    gate = CuratorGate(PASSWORD, per_client=3, per_process=100, window_s=60, clock=clock)
    for _ in range(3):
        assert gate.attempt("guess", "10.0.0.9").wait_s == 0
        clock.now += 1
    refused = gate.attempt(PASSWORD, "10.0.0.9")  # right, but too late: a limit must stop a guesser
    assert not refused.ok and refused.wait_s == pytest.approx(57)
    assert gate.attempt(PASSWORD, "10.0.0.7").ok  # another client has tries of its own
    clock.now += 57
    assert gate.attempt(PASSWORD, "10.0.0.9").ok


def test_the_whole_process_has_a_limit_too_for_guessers_with_many_addresses():
    clock = Clock()
    gate = CuratorGate(PASSWORD, per_client=3, per_process=5, window_s=60, clock=clock)
    for i in range(5):
        assert not gate.attempt("guess", f"10.0.0.{i}").ok
    assert gate.attempt(PASSWORD, "10.0.0.200").wait_s == pytest.approx(60)
    clock.now += 60.5
    assert gate.attempt(PASSWORD, "10.0.0.200").ok


# --- the pages ---------------------------------------------------------------------------------

@pytest.fixture
def app(demo_home, fresh_ui, monkeypatch):
    """Home.py as a browser opens it, with a fresh password gate (one per server process)."""
    from ui.curator_access import gate

    def start(mode: str, password: str | None = None) -> AppTest:
        monkeypatch.setenv("CARTOLINA_MODE", mode)
        if password is not None:
            monkeypatch.setenv("CARTOLINA_CURATOR_PASSWORD", password)
        gate.clear()
        return AppTest.from_file(str(REPO / "Home.py"), default_timeout=60).run()

    yield start
    gate.clear()


def _sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="staff_password").input(password)
    return next(b for b in at.button if b.label == "Sign in").click().run()


def _editor_shown(at: AppTest) -> bool:
    try:
        at.switch_page("app_pages/catalog.py").run()
    except ValueError:  # not in this session's navigation, so no address leads to it
        return False
    return [t.value for t in at.title] == ["Catalog"] and any(e.label == "Add a place" for e in at.expander)


def test_studio_mode_opens_the_editor_without_a_password(app):
    at = app("studio")
    assert _editor_shown(at)


def test_a_kiosk_without_a_password_has_no_editor_and_no_sign_in(app):
    at = app("kiosk")
    assert not _editor_shown(at)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/staff.py")
    page = AppTest.from_file(str(REPO / "app_pages" / "catalog.py"), default_timeout=60).run()
    assert not page.title and not page.expander  # the page itself draws nothing for such a session


def test_a_kiosk_refuses_a_wrong_password_and_then_too_many_tries(app):
    at = app("kiosk", PASSWORD)
    assert not _editor_shown(at)
    at.switch_page("app_pages/staff.py").run()
    _sign_in(at, "letmein")
    assert [e.value for e in at.error] == ["Wrong password."]
    for _ in range(2):
        _sign_in(at, "letmein")
    _sign_in(at, PASSWORD)  # the right one, after three wrong ones in a minute
    assert at.error[0].value.startswith("Too many tries: wait ")
    assert not _editor_shown(at)


def test_a_kiosk_opens_the_editor_after_the_right_password_for_that_session_only(app):
    at = app("kiosk", PASSWORD)
    at.switch_page("app_pages/staff.py").run()
    _sign_in(at, PASSWORD)
    assert not at.error and "Signed in" in at.success[0].value
    assert _editor_shown(at)
    other = AppTest.from_file(str(REPO / "Home.py"), default_timeout=60).run()  # another browser
    assert not _editor_shown(other)
    next(b for b in at.button if b.label == "Start over").click().run()
    assert not _editor_shown(at)


@pytest.mark.browser
def test_a_kiosk_editor_opens_only_after_the_password_in_that_browser(demo_home):
    from tests.server import chromium, new_visitor, screenshot, streamlit_server
    env = {"CARTOLINA_MODE": "kiosk", "CARTOLINA_CURATOR_PASSWORD": PASSWORD}
    with streamlit_server(demo_home, env=env) as base, chromium() as browser:
        curator = new_visitor(browser)
        curator.goto(base + "/catalog")  # not listed before sign-in: the welcome page instead
        curator.get_by_text(re.compile("Put yourself in the picture|Page not found")).first.wait_for()
        assert "Add a place" not in curator.inner_text("body")
        curator.goto(base + "/staff")  # a new page load, past the "page not found" dialog
        box = curator.get_by_label("Curator password")
        box.fill("letmein")
        curator.get_by_role("button", name="Sign in").click()
        curator.get_by_text("Wrong password.").wait_for()
        box.fill(PASSWORD)
        curator.get_by_role("button", name="Sign in").click()
        curator.get_by_role("link", name="Open the catalog editor").click()
        curator.get_by_text("Add a place").wait_for()
        screenshot(curator, "kiosk-catalog-editor")
        visitor = new_visitor(browser)  # another browser at the same kiosk
        visitor.goto(base + "/catalog")
        visitor.get_by_text(re.compile("Put yourself in the picture|Page not found")).first.wait_for()
        assert "Add a place" not in visitor.inner_text("body")
