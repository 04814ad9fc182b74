"""Two kiosks (two real Streamlit servers) on one data root, sharing one Celery worker through
a real redis-server, visited in a real browser: the second visitor sees their place in the
line while the first visitor's picture is painted, and a picture and a training asked at
each kiosk come back right."""

import re
import shutil

import pytest
from playwright.sync_api import expect

from engine.training import jobs
from engine.config import load_settings
from tests.celery_parts import RedisServer, Workers
from tests.server import chromium, new_visitor, screenshot, streamlit_server

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="Debian's redis-server is not installed (bin/setup --dev installs it)")]

PICTURE = re.compile(r"^Picture (\d{8})$")


def _picture_code(page) -> str:
    caption = page.get_by_text(PICTURE)
    caption.wait_for(timeout=240_000)
    return PICTURE.match(caption.inner_text().strip()).group(1)


def _train(page, base, faces) -> None:
    page.goto(base + "/train")
    uploader = page.locator("input[type=file]")
    expect(uploader).to_have_count(1)
    uploader.set_input_files([str(p) for p in faces])
    page.get_by_text("5 of 5 photos OK").wait_for()
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Training started. Your code is").wait_for()


def test_two_kiosks_share_one_worker_in_order(demo_home, faces, tmp_path, monkeypatch):
    redis = RedisServer(tmp_path)
    redis.start()
    env = {"CARTOLINA_BROKER_URL": redis.url, "CARTOLINA_STEPS_PER_PHOTO": "1", "CARTOLINA_POLL_S": "1",
           "CARTOLINA_LANGUAGE": "en"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the worker, started from here, inherits them
    workers = Workers(demo_home, redis.url)
    try:
        workers.start("gpu")
        with streamlit_server(demo_home, env=env) as one, streamlit_server(demo_home, env=env) as two, \
                chromium() as browser:
            first, second = new_visitor(browser), new_visitor(browser)
            for page, base in ((first, one), (second, two)):
                page.goto(base + "/scene")
                page.get_by_role("button", name="Make my picture").wait_for()
            first.get_by_role("slider").press("End")  # the most steps: a picture that takes a while
            first.get_by_role("button", name="Make my picture").click()
            first.get_by_text(re.compile("Painting you into the photo|Getting ready")).wait_for()
            second.get_by_role("button", name="Make my picture").click()
            second.get_by_text("Number 2 in line").wait_for()  # counted in Redis, across kiosks
            screenshot(second, "kiosks-second-visitor-waiting")
            pictures = [_picture_code(first), _picture_code(second)]

            for page, base in ((first, one), (second, two)):
                _train(page, base, faces)
            for page in (first, second):
                page.get_by_text("Your face is ready", exact=False).wait_for(timeout=300_000)
            screenshot(second, "kiosks-second-visitor-face-ready")
    finally:
        workers.stop_all()
        redis.stop()
    made = [(demo_home / "outputs" / f"{c}.png").stat().st_mtime_ns for c in pictures]
    assert pictures[0] != pictures[1] and made[0] < made[1]  # served in the order they asked
    trained = jobs.list_jobs(load_settings(), settle=False)
    assert [(t["state"], t["worker"]) for t in trained] == [("succeeded", "gpu@test")] * 2
    assert all((demo_home / "loras" / t["code"] / "meta.json").is_file() for t in trained)
