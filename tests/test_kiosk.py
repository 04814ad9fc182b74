"""Kiosk mode: the next visitor finds a clean screen, by a button or by waiting."""

import re

import pytest
from playwright.sync_api import expect

from tests.server import browser_page, screenshot, streamlit_server

WELCOME = "Put yourself in the picture"


@pytest.mark.browser
def test_start_over_clears_the_last_visitor_and_the_language(demo_home):
    with streamlit_server(demo_home, env={"CARTOLINA_MODE": "kiosk"}) as base, browser_page() as page:
        page.goto(base + "/train?lang=it")
        box = page.get_by_label("Il tuo codice di 8 cifre")
        box.fill("04718263")
        box.press("Enter")
        page.get_by_text("Nessun addestramento con il codice 04718263.").wait_for()
        expect(page.get_by_test_id("stSidebar")).to_have_count(0)  # navigation on top, no sidebar
        page.get_by_role("button", name="Ricomincia").click()
        page.get_by_text(WELCOME).wait_for()  # the default language again
        page.wait_for_url(base + "/")
        page.get_by_role("link", name="Your face").first.click()
        page.get_by_text("Follow a training").wait_for()
        assert page.get_by_label("Your 8-digit code").input_value() == ""
        assert "04718263" not in page.inner_text("body")


@pytest.mark.browser
def test_an_untouched_screen_goes_back_to_a_clean_welcome_page(demo_home):
    env = {"CARTOLINA_MODE": "kiosk", "CARTOLINA_IDLE_S": "3"}
    with streamlit_server(demo_home, env=env) as base, browser_page() as page:
        page.goto(base + "/gallery")
        box = page.get_by_label("Find your picture by its 8-digit code")
        box.fill("12345678")
        box.press("Enter")
        page.get_by_text("No picture with code 12345678.").wait_for()
        # nobody touches the screen: it reloads the welcome page in a new session
        page.wait_for_url(base + "/", timeout=60_000)
        page.get_by_text(WELCOME).wait_for()
        assert "12345678" not in page.inner_text("body")


@pytest.mark.browser
def test_studio_mode_has_no_kiosk_chrome(demo_home):
    with streamlit_server(demo_home) as base, browser_page() as page:
        page.goto(base)
        page.get_by_text(WELCOME).wait_for()
        page.get_by_role("radio", name="English").wait_for()  # the language switch is there
        expect(page.get_by_test_id("stSidebar")).to_be_visible()
        assert page.get_by_role("button", name="Start over").count() == 0


CATALOG_URLS = ["/catalog", "/catalog/", "/Catalog", "/catalog?lang=it", "/app_pages/catalog",
                "/app_pages/catalog.py", "/pages/catalog", "/?page=catalog", "/catalog_db.json",
                "/data/outputs/../catalog_db.json"]


@pytest.mark.browser
def test_the_catalog_editor_cannot_be_reached_by_any_url_at_a_kiosk(demo_home):
    with streamlit_server(demo_home, env={"CARTOLINA_MODE": "kiosk"}) as base, browser_page() as page:
        scripts = []  # the scripts each address loads: without its bundle the app cannot start
        page.on("response", lambda r: scripts.append(r) if r.request.resource_type == "script" else None)
        for url in CATALOG_URLS:
            scripts.clear()
            response = page.goto(base + url)  # returns once the page and its scripts loaded
            if not response.headers.get("content-type", "").startswith("text/html"):
                assert response.status in (400, 404) and b'"pois"' not in response.body(), url
                continue
            if any(r.ok and "javascript" in r.headers.get("content-type", "") for r in scripts):
                # the app started: Streamlit draws the default page (or "page not found"),
                # never the editor, since a kiosk's navigation has no such page
                page.get_by_text(re.compile(WELCOME + "|Mettiti nella foto|Page not found")).first.wait_for()
            body = page.inner_text("body")
            assert "Add a place" not in body and "Catalog" not in body, url


@pytest.mark.browser
def test_the_idle_timer_waits_while_a_picture_is_being_made_for_the_visitor(demo_home):
    env = {"CARTOLINA_MODE": "kiosk", "CARTOLINA_IDLE_S": "2"}
    with streamlit_server(demo_home, env=env) as base, browser_page() as page:
        page.goto(base + "/scene")
        page.get_by_text("1. The place").wait_for()
        # what the scene page draws while the visitor's picture waits or is painted
        page.evaluate("() => { const d = document.createElement('div');"
                      " d.className = 'cartolina-busy'; document.body.appendChild(d); }")
        # Absence of a reset can only be shown over a window: three idle periods untouched.
        page.wait_for_timeout(6_000)
        assert page.url == base + "/scene"
        page.evaluate("() => document.querySelector('.cartolina-busy').remove()")
        page.wait_for_url(base + "/", timeout=60_000)  # the picture is done: idle again
        page.get_by_text(WELCOME).wait_for()


SCREENS = {"portrait": (1080, 1920), "tablet": (1280, 800)}
VISITOR_PAGES = {"welcome": "/", "train": "/train", "scene": "/scene", "gallery": "/gallery",
                 "privacy": "/privacy"}


@pytest.mark.browser
@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_visitor_page_fits_a_kiosk_screen_with_touch_sized_controls(demo_home, screen):
    width, height = SCREENS[screen]
    with streamlit_server(demo_home, env={"CARTOLINA_MODE": "kiosk"}) as base, \
            browser_page(width, height) as page:
        for name, path in VISITOR_PAGES.items():
            page.goto(base + path)
            start_over = page.get_by_role("button", name="Start over")
            start_over.wait_for()
            page.get_by_role("radio", name="English").wait_for()
            if name == "scene":
                page.get_by_role("button", name="Make my picture").wait_for()
            screenshot(page, f"kiosk-{screen}-{name}")
            # nothing wider than the screen, no sidebar, no Streamlit menu, toolbar or deploy button
            overflow = page.evaluate("() => { const m = document.querySelector('[data-testid=stMain]');"
                                     " return m.scrollWidth - m.clientWidth; }")
            assert overflow <= 0, (name, overflow)
            for chrome in ("stSidebar", "stMainMenu", "stAppDeployButton", "stToolbarActions"):
                expect(page.get_by_test_id(chrome)).to_have_count(0)
            # a finger's worth: at least 44 CSS pixels high (Apple's and Google's guidance)
            for button in page.locator(".stButton button, .stFormSubmitButton button").all():
                if button.is_visible():
                    assert button.bounding_box()["height"] >= 44, (name, button.inner_text())
            assert start_over.bounding_box()["height"] >= 44
