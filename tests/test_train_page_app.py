"""Your face, driven by Streamlit's AppTest: photos checked one by one as they are added (files
and camera), removed, Start only with enough good ones, the code card and its QR code, the
queue, the loss chart, cancel, and a followed code that comes back from the URL.

The page runs for real on a temporary data root with the demo models: real photo checks, real
jobs and, where a test starts one, a real trainer process. Only Streamlit's browser is missing
(the browser tests in test_train_page.py cover that).
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine.config import load_settings
from engine.training import jobs
from test_training_photos import face_photos
from ui.state import SESSION_DEFAULTS, settings as cached_settings

PAGE = Path(__file__).resolve().parent.parent / "app_pages" / "train.py"
PUBLIC = "http://kiosk.local:8501"
WAIT_S = 60  # a condition's limit, not a wait: the machine may be busy


@pytest.fixture(scope="module")
def faces() -> list[tuple[str, bytes, str]]:
    """Five slightly different phone shots of one face, as uploads."""
    from skimage import data
    astronaut = Image.fromarray(data.astronaut())
    shots = []
    for i in range(5):
        buf = io.BytesIO()
        astronaut.crop((20 + 8 * i, 4 * i, 420 + 8 * i, 400 + 4 * i)).save(buf, format="JPEG", quality=92)
        shots.append((f"me-{i}.jpg", buf.getvalue(), "image/jpeg"))
    return shots


@pytest.fixture(scope="module")
def seaside() -> tuple[str, bytes, str]:
    from engine.demo.scenes import draw_scene
    buf = io.BytesIO()
    draw_scene("seaside", (512, 384)).save(buf, format="PNG")
    return ("seaside.png", buf.getvalue(), "image/png")


@pytest.fixture
def page_env(demo_home, monkeypatch):
    """The page's settings come from a process-wide cache: cleared so each test reads its own
    data root (and a public URL, so the QR codes are absolute)."""
    monkeypatch.setenv("CARTOLINA_PUBLIC_URL", PUBLIC)
    monkeypatch.setenv("CARTOLINA_STEPS_PER_PHOTO", "2000")  # longer than any test
    cached_settings.clear()
    s = load_settings()
    yield s
    for st in jobs.list_jobs(s, settle=False):  # no trainer outlives its test
        if st["state"] not in jobs.FINISHED:
            jobs.cancel(s, st["code"])
    cached_settings.clear()


@pytest.fixture
def media(monkeypatch):
    """The bytes behind an image's URL in an AppTest run. AppTest keeps its media in a fresh
    in-memory store per run and drops it; this keeps a handle on that (real) store."""
    from streamlit.testing.v1 import app_test
    stores = []

    class Kept(app_test.MemoryMediaFileStorage):
        def __init__(self, endpoint: str):
            super().__init__(endpoint)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Kept)
    return lambda url: stores[-1].get_file(url.rsplit("/", 1)[1]).content


def open_page(lang: str = "en", **query) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=WAIT_S)
    for key, value in SESSION_DEFAULTS.items():  # what Home.py sets before any page runs
        at.session_state[key] = value
    at.query_params.update(lang=lang, **query)
    return at.run()


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def start_button(at: AppTest):
    return at.button(key="start_training")


def added(at: AppTest) -> tuple:
    return at.session_state["train_photos"]


def run_until(at: AppTest, condition, what: str) -> AppTest:
    """Rerun the page (as its polling fragment does) until `condition(at)` holds."""
    deadline = time.monotonic() + WAIT_S
    while not condition(at):
        assert time.monotonic() < deadline, f"never saw {what}; page: {texts(at.markdown)} {texts(at.info)}"
        time.sleep(0.2)
        at.run()
    return at


def chart_points(chart) -> list[tuple[int, float]]:
    import pyarrow as pa
    [dataset] = chart.proto.datasets
    table = pa.ipc.open_stream(dataset.data.data).read_all().to_pydict()
    return list(zip(table["step"], table["loss"]))


def decode_qr(png: bytes) -> str:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    text, _points, _ = cv2.QRCodeDetector().detectAndDecode(img)
    return text


REFUSED = {"en": "No face found: take a photo of your face from the front, in good light. "
                 "Remove it and add another.",
           "it": "Nessun viso trovato: fotografa il tuo viso di fronte, con buona luce. "
                 "Toglila e aggiungine un'altra."}
PROGRESS = {"en": "4 of 5 photos OK", "it": "4 foto su 5 vanno bene"}


@pytest.mark.parametrize("lang", ["en", "it"])
def test_each_photo_gets_its_verdict_in_the_visitors_language_as_it_is_added(page_env, faces, seaside, lang):
    at = open_page(lang)
    assert start_button(at).disabled
    at.file_uploader[0].set_value([faces[0], seaside, *faces[1:4]]).run()
    assert not at.exception
    assert [p["problem"] is None for p in added(at)] == [True, False, True, True, True]
    assert texts(at.success) == ["OK"] * 4
    assert texts(at.error) == [REFUSED[lang]]
    assert [p.proto.text for p in at.progress] == [PROGRESS[lang]]
    assert start_button(at).disabled  # four good photos of five
    # The uploader is a fresh, empty one: the list above is the only place photos live.
    assert at.file_uploader[0].key == "upload-1" and not at.file_uploader[0].value


def test_the_refused_photo_is_removed_and_a_camera_shot_completes_the_five(page_env, faces, seaside):
    at = open_page()
    at.file_uploader[0].set_value([faces[0], seaside, faces[1]]).run()
    at.file_uploader[0].upload(*faces[2]).run()  # one more, alone: checked once, as it comes
    assert len(added(at)) == 4
    refused = next(p for p in added(at) if p["problem"])
    at.button(key=f"remove-{refused['id']}").click().run()
    assert [p["problem"] for p in added(at)] == [None, None, None]
    assert not at.error

    at.toggle(key="train_camera").set_value(True).run()
    at.camera_input[0].upload("shot.jpg", faces[3][1]).run()
    assert at.camera_input[0].key == "camera-3" and not at.camera_input[0].value  # ready for the next
    assert len(added(at)) == 4 and start_button(at).disabled
    at.camera_input[0].upload("shot.jpg", faces[4][1]).run()
    assert [p.proto.text for p in at.progress] == ["5 of 5 photos OK"]
    assert not start_button(at).disabled
    assert not jobs.list_jobs(page_env)  # nothing starts before the visitor asks


def test_start_shows_the_code_big_with_a_qr_code_to_the_scene_page_and_cancel_ends_it(page_env, faces, media):
    at = open_page()
    at.file_uploader[0].set_value(faces).run()
    start_button(at).click().run()
    assert not at.exception and not at.error
    [job] = jobs.list_jobs(page_env, settle=False)
    code = job["code"]
    assert added(at) == () and at.query_params["code"] == code  # a reload follows it again
    assert any("Training started" in m for m in texts(at.success))
    assert any(code in m and "font-size" in m for m in texts(at.markdown))  # the big one
    assert texts(at.code) == [code]  # st.code: the copy button
    url = f"{PUBLIC}/scene?lora={code}&lang=en"
    assert url in texts(at.caption)
    [qr] = [img for img in at.image
            if img.captions == ["Scan to make a picture with your face on your phone"]]
    assert decode_qr(media(qr.value[0])) == url

    at.button(key=f"cancel-{code}").click().run()
    assert "This training was cancelled." in texts(at.warning)
    assert f"cancel-{code}" not in [b.key for b in at.button]
    done = jobs.read_status(page_env, code)
    assert done["state"] == "cancelled" and not jobs.pid_alive(done["pid"], done.get("pid_started_at"))


def test_a_training_waits_for_the_one_before_it_and_says_its_place(page_env, faces):
    other = jobs.submit(face_photos(), page_env, jobs.TrainOptions(total_steps=4, resolution=64), start=False)
    busy = pretend_running(page_env, other["code"])
    try:
        at = open_page("it")
        at.file_uploader[0].set_value(faces).run()
        start_button(at).click().run()
        assert "In attesa del suo turno: numero 1 in coda." in texts(at.info)
        code = at.query_params["code"]
        at.button(key=f"cancel-{code}").click().run()
        assert "Questo addestramento è stato annullato." in texts(at.warning)
        assert jobs.read_status(page_env, other["code"])["state"] == "running"  # untouched
    finally:
        busy.kill()
        busy.wait()


def test_a_followed_training_comes_back_from_the_url_with_its_loss_chart(page_env):
    """A reload or a server restart is a new session: only the URL remembers the code."""
    st = jobs.submit(face_photos(), page_env, jobs.TrainOptions(total_steps=40, resolution=64), start=False)
    code = st["code"]
    busy = pretend_running(page_env, code, step=3)
    try:
        losses = jobs.LossLog(page_env.jobs_dir / code, 40)
        for step, loss in enumerate([0.9, 0.7, 0.6], start=1):
            losses.add(step, loss)
        at = open_page(code=code)
        assert at.text_input(key="follow_code").value == code
        assert [p.proto.text for p in at.progress][-1] == "Training: step 3 of 40"
        [chart] = at.get("vega_lite_chart")
        assert chart_points(chart) == [(1, 0.9), (2, 0.7), (3, 0.6)]  # loss.csv, as the trainer wrote it
        assert texts(at.code) == [code]
    finally:
        busy.kill()
        busy.wait()
    at = run_until(at, lambda at: any("failed" in w for w in texts(at.error)), "the dead trainer's job fail")
    assert not at.get("vega_lite_chart") and not at.code  # no code card for a failed job


def test_a_bad_code_in_the_box_is_explained(page_env):
    at = open_page("it")
    at.text_input(key="follow_code").input("12ab").run()
    assert texts(at.error) == ["Un codice è di 8 cifre, per esempio 04718263."]
    at.text_input(key="follow_code").input("04718263").run()
    assert texts(at.warning) == ["Nessun addestramento con il codice 04718263."]
    assert "code" not in at.query_params


def pretend_running(settings, code: str, step: int = 0) -> subprocess.Popen:
    """A job that holds the one training slot: `running`, with a live process and a fresh
    heartbeat, as a trainer's status file would say (the sleeper is the test's to kill)."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    job = settings.jobs_dir / code
    now = time.time()
    jobs.write_status(job, dict(jobs.read_status(settings, code), state="running", pid=sleeper.pid,
                                pid_started_at=jobs._pid_started(sleeper.pid), heartbeat_at=now,
                                started_at=now, attempt=1, step=step))
    return sleeper
