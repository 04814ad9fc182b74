"""A visitor trains their face in a real browser: photos added one at a time and several at
once, each with its verdict at once, the refused one replaced, a code with its QR code, the
loss chart while it trains, a reload and a server restart that keep following it, and the
page's polling fragment that stops once the job is over."""

import re
from urllib.parse import urljoin

import cv2
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.server import browser_page, streamlit_server


def add_photos(page, paths, ok_after: int) -> None:
    """Add photos through the uploader and wait for their verdicts."""
    uploader = page.locator("input[type=file]")
    expect(uploader).to_have_count(1)  # the last one emptied: a run drops it when it ends
    uploader.set_input_files([str(p) for p in paths])
    page.get_by_text(f"{ok_after} of 5 photos OK").wait_for()


def job_code(home) -> str:
    [code] = [d.name for d in (home / "jobs").iterdir() if d.name.isdigit()]
    return code


def qr_text(page, base: str) -> str:
    """The QR code as a phone reads it: the image the browser got, decoded."""
    image = page.get_by_test_id("stImage").filter(has_text="Scan to make a picture").locator("img")
    png = page.request.get(urljoin(base + "/", image.get_attribute("src"))).body()
    text, _points, _ = cv2.QRCodeDetector().detectAndDecode(cv2.imdecode(np.frombuffer(png, np.uint8),
                                                                         cv2.IMREAD_COLOR))
    return text


@pytest.mark.browser
def test_visitor_trains_a_face_and_follows_it_to_the_end(demo_home, faces):
    env = {"CARTOLINA_STEPS_PER_PHOTO": "1", "CARTOLINA_POLL_S": "1"}
    with streamlit_server(demo_home, env=env) as base, browser_page() as page:
        sent = []  # messages the page sends the server: each poll is one
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
        page.goto(base + "/train")
        start = page.get_by_role("button", name="Start training")
        add_photos(page, faces[:1], ok_after=1)  # one, then the rest at once
        expect(start).to_be_disabled()
        add_photos(page, faces[1:], ok_after=5)
        expect(page.get_by_text("OK", exact=True)).to_have_count(5)
        start.click()
        page.get_by_text("Your code", exact=True).wait_for(timeout=60_000)
        code = job_code(demo_home)
        page.get_by_text(code, exact=True).first.wait_for()
        page.wait_for_url(f"**/train?code={code}")  # a reload follows it again
        assert qr_text(page, base) == f"{base}/scene?lora={code}&lang=en"
        page.get_by_text("Your face is ready").wait_for(timeout=180_000)
        # The training is over, so the page stops polling. Absence can only be shown over a
        # window: three polling periods (1 s each) with nothing sent. No sleep decides a pass.
        polls = len(sent)
        page.wait_for_timeout(3_000)
        assert len(sent) == polls
    assert (demo_home / "loras" / code / "pytorch_lora_weights.safetensors").is_file()
    assert not (demo_home / "jobs" / code / "photos").exists()


@pytest.mark.browser
def test_refused_photos_get_their_reasons_at_once_and_are_replaced(demo_home, faces, tmp_path):
    from engine.demo.scenes import draw_scene
    scene = tmp_path / "no-face.png"
    draw_scene("seaside", (512, 384)).save(scene)
    text = tmp_path / "notes.png"
    text.write_text("not a photo")
    with streamlit_server(demo_home) as base, browser_page() as page:
        page.goto(base + "/train")
        add_photos(page, [faces[0], scene, text], ok_after=1)
        no_face = page.get_by_test_id("stColumn").filter(has_text="No face found")
        not_image = page.get_by_test_id("stColumn").filter(has_text="Not an image file")
        expect(no_face).to_have_count(1)
        expect(not_image).to_have_count(1)
        expect(page.get_by_role("button", name="Start training")).to_be_disabled()
        no_face.get_by_role("button", name="Remove").click()
        expect(no_face).to_have_count(0)
        not_image.get_by_role("button", name="Remove").click()
        expect(not_image).to_have_count(0)
        add_photos(page, faces[1:], ok_after=5)
        expect(page.get_by_role("button", name="Start training")).to_be_enabled()
        expect(page.get_by_text("Remove it and add another")).to_have_count(0)
    assert not any(d.name.isdigit() for d in (demo_home / "jobs").iterdir())


@pytest.mark.browser
def test_the_loss_chart_shows_while_it_trains_a_reload_and_a_server_restart_keep_it_and_cancel_ends_it(
        demo_home, faces):
    from engine.config import load_settings
    from engine.training import jobs
    env = {"CARTOLINA_STEPS_PER_PHOTO": "2000", "CARTOLINA_POLL_S": "1"}  # far longer than the test
    with browser_page() as page:
        with streamlit_server(demo_home, env=env) as base:
            page.goto(base + "/train")
            add_photos(page, faces, ok_after=5)
            page.get_by_role("button", name="Start training").click()
            page.get_by_text("Training started").wait_for(timeout=60_000)
            code = job_code(demo_home)
            # The first loss point comes at step 20 (a point per 20 steps of 10000): a limit, not a
            # wait, and generous, since a busy 2-core machine has taken 120 s to reach step 11.
            page.get_by_test_id("stVegaLiteChart").wait_for(timeout=300_000)
            page.reload()  # a new session: the URL alone brings the training back
            expect(page.get_by_label("Your 8-digit code")).to_have_value(code)
            page.get_by_test_id("stVegaLiteChart").wait_for()
        # The server is stopped: the trainer, in a session of its own, trains on.
        st = jobs.read_status(load_settings(), code)
        assert st["state"] == "running" and jobs.pid_alive(st["pid"], st.get("pid_started_at"))
        with streamlit_server(demo_home, env=env) as base:  # started again (on another port)
            page.goto(f"{base}/train?code={code}")
            expect(page.get_by_label("Your 8-digit code")).to_have_value(code)
            page.get_by_test_id("stVegaLiteChart").wait_for()
            page.get_by_text(re.compile(r"^Training: step \d+ of 10000")).wait_for()  # 5 photos × 2000
            page.get_by_role("button", name="Cancel this training").click()
            page.get_by_text("This training was cancelled.").wait_for(timeout=60_000)
            assert page.get_by_role("button", name="Cancel this training").count() == 0
            assert page.get_by_test_id("stVegaLiteChart").count() == 0
    st = jobs.read_status(load_settings(), code)
    assert st["state"] == "cancelled" and not jobs.pid_alive(st["pid"], st.get("pid_started_at"))
    assert not (demo_home / "loras" / code).exists()
