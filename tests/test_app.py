"""The real Streamlit server starts, answers its health check, serves outputs read-only,
and its pages render in a real headless Chromium."""

import urllib.error
import urllib.request

import pytest

from tests.homes import fill_demo_home
from tests.server import browser_page, settled, streamlit_server


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_models_root, demo_catalog_root):
    home = fill_demo_home(tmp_path_factory.mktemp("app-home"), demo_models_root, demo_catalog_root)
    (home / "outputs" / "12345678.png").write_bytes(b"\x89PNG fake")  # served as bytes only
    with streamlit_server(home) as base:
        yield base, home


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


def test_health_endpoint_answers_ok(server):
    base, _ = server
    assert _get(base + "/_stcore/health") == (200, b"ok")


def test_outputs_are_served_at_the_seed_url(server):
    base, _ = server
    assert _get(base + "/data/outputs/12345678.png") == (200, b"\x89PNG fake")


def test_outputs_route_does_not_escape_the_outputs_folder(server):
    import http.client
    base, _ = server
    host, port = base.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/data/outputs/../catalog_db.json")
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status in (400, 404) and b"pois" not in body


@pytest.mark.browser
def test_home_page_renders_in_a_browser(server):
    base, _ = server
    with browser_page() as page:
        page.goto(base)
        page.get_by_text("Put yourself in the picture").wait_for()
        page.get_by_text("demo models", exact=False).first.wait_for()
        for title in ("Your face", "Make a picture", "Gallery", "Catalog"):
            assert page.get_by_role("link", name=title).count() >= 1


@pytest.mark.browser
def test_catalog_page_shows_the_demo_catalog(server):
    base, _ = server
    with browser_page() as page:
        page.goto(base + "/catalog")
        settled(page, "Beach ·")  # Lungomare's photo, first place by name
        page.get_by_text("Poses (actions)").click()
        settled(page, "Pose guide")
        page.get_by_text("Check", exact=True).click()
        page.get_by_text("Every photo, pose image and mask is in place").wait_for()


@pytest.mark.browser
def test_a_visitor_makes_a_picture_in_the_browser(server):
    base, home = server
    before = set((home / "outputs").glob("*.png"))
    with browser_page() as page:
        page.goto(base + "/scene")
        settled(page, "Make my picture")
        page.get_by_label("Clothing and details").fill("a yellow raincoat")
        page.get_by_role("button", name="Make my picture").click()
        page.get_by_text("Your picture code").wait_for(timeout=120_000)
        new = set((home / "outputs").glob("*.png")) - before
        assert len(new) == 1
        code = next(iter(new)).stem
        page.get_by_text(code, exact=True).first.wait_for()
        page.get_by_text("no LoRA code given", exact=False).wait_for()
        page.get_by_text(f"/data/outputs/{code}.png", exact=False).wait_for()  # the QR code's URL
        assert page.get_by_role("button", name="Download").count() == 1


@pytest.mark.browser
def test_a_malformed_lora_code_is_explained_in_the_browser(server):
    base, home = server
    before = set((home / "outputs").glob("*.png"))
    with browser_page() as page:
        page.goto(base + "/scene")
        settled(page, "Make my picture")
        page.get_by_role("textbox", name="Your 8-digit code (optional)").fill("12ab")
        page.get_by_role("button", name="Make my picture").click()
        page.get_by_text("Please check your 8-digit code: not a valid code.").wait_for(timeout=60_000)
        page.get_by_text("Accepted: 8 digits.").wait_for()
    assert set((home / "outputs").glob("*.png")) == before


@pytest.mark.browser
def test_gallery_finds_a_picture_by_code(server):
    base, home = server
    from PIL import Image
    Image.new("RGB", (64, 64), "teal").save(home / "outputs" / "00424242.png")
    with browser_page() as page:
        page.goto(base + "/gallery")
        box = page.get_by_label("Find your picture by its 8-digit code")
        box.fill("00424242")
        box.press("Enter")
        page.get_by_text("Your picture code").wait_for()
        box.fill("4242")
        box.press("Enter")
        page.get_by_text("A picture code is 8 digits").wait_for()


@pytest.mark.browser
def test_first_request_to_a_page_url_runs_through_the_entry(demo_home):
    """A QR code or bookmark may hit /scene first, before anyone opened the home page:
    it must still get the app's navigation (Streamlit's old pages/ folder mode must not kick in)."""
    with streamlit_server(demo_home) as base, browser_page() as page:
        page.goto(base + "/scene")
        page.get_by_text("Make my picture").wait_for()
        nav = page.inner_text("[data-testid=stSidebarNav]")
        assert "Make a picture" in nav and "Your face" in nav
