"""A visitor trains their face in a real browser: per-photo errors, a code, the job followed
to the end by the page's polling fragment."""

import pytest
from PIL import Image

from tests.server import browser_page, streamlit_server


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Five slightly different shots of one face, as a phone would upload them."""
    from skimage import data
    folder = tmp_path_factory.mktemp("faces")
    astronaut = Image.fromarray(data.astronaut())
    paths = []
    for i in range(5):
        crop = astronaut.crop((20 + 8 * i, 0 + 4 * i, 420 + 8 * i, 400 + 4 * i))
        path = folder / f"me-{i}.jpg"
        crop.save(path, quality=92)
        paths.append(path)
    return paths


@pytest.mark.browser
def test_visitor_trains_a_face_and_follows_it_to_the_end(demo_home, faces):
    env = {"CARTOLINA_STEPS_PER_PHOTO": "1", "CARTOLINA_POLL_S": "1"}
    with streamlit_server(demo_home, env=env) as base, browser_page() as page:
        sent = []  # messages the page sends the server: each poll is one
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
        page.goto(base + "/train")
        page.locator("input[type=file]").set_input_files([str(p) for p in faces])
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("Training started").wait_for(timeout=60_000)
        code = [d.name for d in (demo_home / "jobs").iterdir() if d.name.isdigit()][0]
        assert code in page.inner_text("body")
        page.get_by_text("Your face is ready").wait_for(timeout=180_000)
        # The training is over, so the page stops polling. Absence can only be shown over a
        # window: three polling periods (1 s each) with nothing sent. No sleep decides a pass.
        polls = len(sent)
        page.wait_for_timeout(3_000)
        assert len(sent) == polls
    assert (demo_home / "loras" / code / "pytorch_lora_weights.safetensors").is_file()
    assert not (demo_home / "jobs" / code / "photos").exists()


@pytest.mark.browser
def test_bad_photos_get_per_photo_reasons_and_start_nothing(demo_home, faces, tmp_path):
    from engine.demo.scenes import draw_scene
    scene = tmp_path / "no-face.png"
    draw_scene("seaside", (512, 384)).save(scene)
    text = tmp_path / "notes.png"
    text.write_text("not a photo")
    with streamlit_server(demo_home) as base, browser_page() as page:
        page.goto(base + "/train")
        page.locator("input[type=file]").set_input_files([str(faces[0]), str(scene), str(text)])
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("retake just those").wait_for(timeout=60_000)
        # the per-photo verdicts stream in after the heading: wait for each
        page.get_by_text("3 photos given; exactly 5 needed").wait_for()
        page.get_by_text("no face found", exact=False).wait_for()
        page.get_by_text("not an image file", exact=False).wait_for()
        assert page.get_by_text("OK", exact=True).count() == 1
    assert not any(d.name.isdigit() for d in (demo_home / "jobs").iterdir())


@pytest.mark.browser
def test_visitor_cancels_a_training_and_the_page_stops_polling(demo_home, faces):
    env = {"CARTOLINA_STEPS_PER_PHOTO": "2000"}  # far longer than the test
    with streamlit_server(demo_home, env=env) as base, browser_page() as page:
        page.goto(base + "/train")
        page.locator("input[type=file]").set_input_files([str(p) for p in faces])
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("Training started").wait_for(timeout=60_000)
        code = [d.name for d in (demo_home / "jobs").iterdir() if d.name.isdigit()][0]
        page.get_by_role("button", name="Cancel this training").click()
        page.get_by_text("This training was cancelled.").wait_for(timeout=60_000)
        assert page.get_by_role("button", name="Cancel this training").count() == 0
    from engine.config import load_settings
    from engine.training import jobs
    st = jobs.read_status(load_settings(), code)
    assert st["state"] == "cancelled" and not jobs.pid_alive(st["pid"], st.get("pid_started_at"))
    assert not (demo_home / "loras" / code).exists()
