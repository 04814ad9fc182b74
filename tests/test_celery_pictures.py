"""Pictures on Celery: a real redis-server on a loopback port and real `python -m engine worker`
processes on the demo models, started here and stopped in teardown. Pictures are submitted
before a worker starts when the test looks at the line, so nothing depends on timing."""

import shutil
import time

import psutil
import pytest

from engine.backends.celery_pictures import CeleryPictures
from engine.config import load_settings
from engine.errors import InvalidInput, ServiceUnavailable
from engine.generate import read_output_meta
from engine.backends import picture_backend
from engine.backends.celery_app import SPEED_KEY
from engine.backends.embedded_pictures import PictureQueue
from tests.celery_parts import RedisServer, Workers, _until
from tests.lines import REQUEST

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="Debian's redis-server is not installed (bin/setup --dev installs it)")


@pytest.fixture
def site(demo_home, tmp_path, monkeypatch):
    server = RedisServer(tmp_path)
    server.start()
    monkeypatch.setenv("CARTOLINA_BROKER_URL", server.url)
    settings = load_settings()
    workers = Workers(demo_home, server.url)
    try:
        yield settings, server, workers
    finally:
        workers.stop_all()
        server.stop()


def test_the_broker_url_picks_the_backend_and_only_redis_urls_are_accepted(demo_home, monkeypatch):
    assert isinstance(picture_backend(load_settings()), PictureQueue)
    monkeypatch.setenv("CARTOLINA_BROKER_URL", "redis://127.0.0.1:1/0")
    assert isinstance(picture_backend(load_settings()), CeleryPictures)
    assert "secret" not in repr(load_settings({"CARTOLINA_BROKER_URL": "redis://:secret@host:6379/0"}))
    assert load_settings({"CARTOLINA_VISIBILITY_TIMEOUT_S": "600"}).visibility_timeout_s == 600
    with pytest.raises(InvalidInput) as err:
        load_settings({"CARTOLINA_VISIBILITY_TIMEOUT_S": "5"})
    assert err.value.field == "CARTOLINA_VISIBILITY_TIMEOUT_S"
    for wrong in ("amqp://user:secret@host//", "localhost:6379", "redis://"):
        with pytest.raises(InvalidInput) as err:
            load_settings({"CARTOLINA_BROKER_URL": wrong})
        assert err.value.field == "CARTOLINA_BROKER_URL" and "secret" not in str(err.value)


def test_a_picture_comes_back_under_its_code_with_its_progress(site):
    settings, _, workers = site
    line = picture_backend(settings)
    workers.start("one")
    code = line.submit(dict(REQUEST, steps=6))
    seen = []
    _until(lambda: seen.append(line.status(code)) or seen[-1].state in ("succeeded", "failed", "cancelled"),
           "picture finished", 300)
    done = seen[-1]
    assert done.state == "succeeded" and done.result.code == code and done.error is None
    assert any(s.state == "running" and s.step > 0 and s.stage == "body" for s in seen)
    assert done.step == done.total_steps > 0
    meta = read_output_meta(settings.outputs_dir / f"{code}.png")
    assert meta["request"]["action_name"] == "waving"
    assert line.wait(code, timeout=5).result.to_dict()["code"] == code


def test_four_pictures_at_once_are_served_in_order_with_their_places(site):
    settings, _, workers = site
    line = picture_backend(settings)
    codes = [line.submit(dict(REQUEST, seed=i)) for i in range(4)]
    places = [(line.status(c).state, line.status(c).place_in_line, line.status(c).queue_position)
              for c in codes]
    assert places == [("queued", n, n) for n in (1, 2, 3, 4)]
    workers.start("one")
    finished = [line.wait(c, timeout=300) for c in codes]
    assert [f.state for f in finished] == ["succeeded"] * 4
    made = [(settings.outputs_dir / f"{c}.png").stat().st_mtime_ns for c in codes]
    assert made == sorted(made)


def test_the_eta_comes_from_the_workers_measured_speed(site):
    settings, _, workers = site
    line = picture_backend(settings)
    first = line.submit(dict(REQUEST, steps=4))
    assert line.status(first).eta_s is None  # nothing timed yet: no figure is better than a guess
    workers.start("one")
    assert line.wait(first, timeout=300).state == "succeeded"
    control = line.app.control
    assert control.cancel_consumer("generate", destination=["one@test"], reply=True, timeout=10)
    second, third = line.submit(dict(REQUEST, steps=20)), line.submit(dict(REQUEST, steps=40))
    a, b = line.status(second), line.status(third)
    speed = float(line.redis.get(SPEED_KEY))  # seconds per step, as the worker measured it
    assert 0 < a.eta_s < b.eta_s
    assert (a.eta_s, b.eta_s) == (round(20 * speed, 1), round((20 + 40) * speed, 1))  # its own after those ahead
    assert control.add_consumer("generate", destination=["one@test"], reply=True, timeout=10)
    assert [line.wait(c, timeout=300).eta_s for c in (second, third)] == [None, None]


def test_cancel_while_waiting_leaves_the_line_and_nothing_is_painted(site):
    settings, server, workers = site
    line = picture_backend(settings)
    first, second, third = (line.submit(REQUEST) for _ in range(3))
    assert line.cancel(second).state == "cancelled"
    assert line.status(third).place_in_line == 2
    workers.start("one")
    assert line.wait(first, timeout=300).state == "succeeded"
    assert line.wait(third, timeout=300).state == "succeeded"
    assert line.status(second).state == "cancelled"
    assert not (settings.outputs_dir / f"{second}.png").exists()
    assert line.cancel(first).state == "succeeded"  # a finished picture stays as it ended


def test_cancel_while_painting_stops_at_the_next_step(site):
    settings, _, workers = site
    line = picture_backend(settings)
    workers.start("one")
    code = line.submit(dict(REQUEST, steps=50))
    _until(lambda: line.status(code).step > 0, "painting", 300)
    line.cancel(code)
    done = line.wait(code, timeout=300)
    assert done.state == "cancelled" and done.result is None and done.step < 50
    assert not (settings.outputs_dir / f"{code}.png").exists()


def test_a_wrong_field_is_refused_at_submit(site):
    settings, _, _ = site
    with pytest.raises(InvalidInput) as err:
        picture_backend(settings).submit(dict(REQUEST, action_shot_type="XXL"))
    assert err.value.field == "action_shot_type"


def test_redis_stopped_says_so_clearly_and_the_studio_recovers_when_it_is_back(site):
    settings, server, workers = site
    line = picture_backend(settings)
    workers.start("one")
    before = line.submit(REQUEST)
    assert line.wait(before, timeout=300).state == "succeeded"
    server.stop()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="the picture service is not reachable, try again"):
        line.submit(REQUEST)
    with pytest.raises(ServiceUnavailable):
        line.status(before)
    with pytest.raises(ServiceUnavailable):
        line.cancel(before)
    assert time.monotonic() - started < 15  # said at once, never a frozen page
    server.start()  # empty: Redis here keeps nothing on disk
    code = line.submit(REQUEST)  # the same worker, reconnected on its own
    assert line.wait(code, timeout=300).state == "succeeded"


def test_a_worker_killed_mid_picture_leaves_it_to_another_worker(site):
    settings, _, workers = site
    line = picture_backend(settings)
    control = line.app.control  # Celery's own remote control: which worker may take messages
    first, second = workers.start("first"), workers.start("second")
    assert control.cancel_consumer("generate", destination=["second@test"], reply=True, timeout=10)
    code = line.submit(dict(REQUEST, steps=50))  # so the first worker paints it
    _until(lambda: line.status(code).step > 0, "painting", 300)
    # the first worker takes nothing more and the second one does, then the pool process
    # painting the picture dies with SIGKILL, as on a crash or an out-of-memory kill
    assert control.cancel_consumer("generate", destination=["first@test"], reply=True, timeout=10)
    assert control.add_consumer("generate", destination=["second@test"], reply=True, timeout=10)
    painters = psutil.Process(first.pid).children(recursive=True)
    assert painters
    for child in painters:
        child.kill()
    done = line.wait(code, timeout=300)
    assert done.state == "succeeded" and done.result.code == code
    assert sorted(p.name for p in settings.outputs_dir.glob("*.png")) == [f"{code}.png"]
    assert code in second.log.read_text()


# --- the page does not know the backend -----------------------------------------------------------

def _scene_page(lang: str | None = None):
    from pathlib import Path
    from streamlit.testing.v1 import AppTest
    from ui.state import settings
    settings.clear()  # read this test's environment
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app_pages" / "scene.py"),
                           default_timeout=120)
    if lang:
        at.query_params["lang"] = lang
    at.run()
    submit = next(b for b in at.button if (b.key or "").startswith("FormSubmitter:scene-you"))
    return submit.click().run()


def _shown(at) -> str:
    return "\n".join(str(e.value) for kind in ("error", "warning", "info", "caption") for e in getattr(at, kind))


@pytest.mark.parametrize("lang, text", [(None, "The picture service is not reachable, try again."),
                                        ("it", "Il servizio delle foto non è raggiungibile, riprova.")])
def test_the_page_says_plainly_when_redis_is_not_reachable(demo_home, monkeypatch, lang, text):
    from tests.server import free_port
    from ui.state import settings
    monkeypatch.setenv("CARTOLINA_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    try:
        at = _scene_page(lang)
        assert text in _shown(at) and not at.exception
        assert "picture_job" not in at.session_state or not at.session_state["picture_job"]
    finally:
        settings.clear()


def test_the_page_shows_the_place_in_line_from_redis_and_says_when_redis_is_gone(site):
    settings, server, workers = site
    from ui.state import settings as ui_settings
    line = picture_backend(settings)
    ahead = line.submit(REQUEST)  # another kiosk's picture, no worker yet
    try:
        at = _scene_page()
        code = at.session_state["picture_job"]
        assert line.status(code).place_in_line == 2 and line.status(ahead).place_in_line == 1
        assert "Number 2 in line" in _shown(at)
        server.stop()
        at.run()
        assert "The picture service is not reachable, try again." in _shown(at) and not at.exception
        assert at.session_state["picture_job"] == code  # not forgotten
        server.start()  # back, empty (this Redis keeps nothing): the page says the job is gone
        at.run()
        assert not at.exception
    finally:
        ui_settings.clear()
