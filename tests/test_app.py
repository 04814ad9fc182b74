"""The real Streamlit server starts, answers its health check, serves outputs read-only,
and its pages render in a real headless Chromium."""

import urllib.error
import urllib.request

import pytest

from tests.server import browser_page, streamlit_server


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_models_root, demo_catalog_root):
    import shutil
    home = tmp_path_factory.mktemp("app-home")
    (home / "models").mkdir()
    (home / "models" / "demo").symlink_to(demo_models_root / "demo")
    shutil.copy2(demo_catalog_root / "catalog_db.json", home / "catalog_db.json")
    shutil.copytree(demo_catalog_root / "assets", home / "assets")
    (home / "outputs").mkdir()
    (home / "outputs" / "12345678.png").write_bytes(b"\x89PNG fake")
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


def test_home_page_renders_in_a_browser(server):
    base, _ = server
    with browser_page() as page:
        page.goto(base)
        page.get_by_text("Put yourself in the picture").wait_for()
        assert "demo models" in page.inner_text("body")
        for title in ("Your face", "Make a picture", "Gallery", "Catalog"):
            assert page.get_by_role("link", name=title).count() >= 1


def test_catalog_page_shows_the_demo_catalog(server):
    base, _ = server
    with browser_page() as page:
        page.goto(base + "/catalog")
        page.get_by_text("Piazza del Duomo").first.wait_for()
        page.get_by_role("tab", name="Poses (actions)").click()
        page.get_by_text("selfie", exact=True).first.wait_for()
        assert page.locator("img").count() >= 4
