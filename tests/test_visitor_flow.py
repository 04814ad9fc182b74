"""The whole visitor flow, in Italian, in a real browser, on the studio started as the README
starts it (`bin/studio`, set-up included) on a fresh data root with the demo models: five
photos (one refused and replaced), the code, the training to the end, the code carried to the
scene page by its QR code, a pose chosen by its thumbnail with its preview, the picture made
with that code, fetched over HTTP at the URL its QR code holds. Screenshots of each step are
kept in test-artifacts/ for a person to look at."""

import json
import re
import urllib.request
from urllib.parse import urljoin

import cv2
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.server import bin_studio, browser_page, screenshot

ENV = {"CARTOLINA_STEPS_PER_PHOTO": "1", "CARTOLINA_POLL_S": "1", "CARTOLINA_LANGUAGE": "en"}


def decode_qr(page, base: str, image) -> str:
    """A QR code as a phone reads it: the very image the browser got, decoded by OpenCV."""
    png = page.request.get(urljoin(base + "/", image.get_attribute("src"))).body()
    text, _points, _ = cv2.QRCodeDetector().detectAndDecode(
        cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR))
    return text


def add_photos(page, paths, ok: int) -> None:
    uploader = page.locator("input[type=file]")
    expect(uploader).to_have_count(1)
    uploader.set_input_files([str(p) for p in paths])
    page.get_by_text(f"{ok} foto su 5 vanno bene").wait_for()


@pytest.mark.browser
def test_a_visitor_goes_from_five_photos_to_a_picture_on_the_phone_in_italian(home, faces, tmp_path):
    from engine.demo.scenes import draw_scene
    no_face = tmp_path / "panorama.png"
    draw_scene("seaside", (512, 384)).save(no_face)
    with bin_studio(home, ENV) as (base, _pid, _log), browser_page(1080, 1600) as page:
        # a poster's QR code opens the studio in Italian
        page.goto(base + "/?lang=it")
        page.get_by_role("link", name="1. Dacci cinque foto del tuo viso").click()

        # five photos, one without a face: refused at once, with the reason in Italian
        add_photos(page, [*faces[:4], no_face], ok=4)
        refused = page.get_by_test_id("stColumn").filter(has_text="Nessun viso trovato")
        expect(refused).to_have_count(1)
        expect(page.get_by_role("button", name="Avvia l'addestramento")).to_be_disabled()
        screenshot(page, "flow-1-photo-refused")
        refused.get_by_role("button", name="Togli").click()
        expect(refused).to_have_count(0)
        add_photos(page, [faces[4]], ok=5)
        page.get_by_role("button", name="Avvia l'addestramento").click()

        # the code, big, with its QR code; then the training runs to the end
        page.get_by_text("Il tuo viso è pronto", exact=False).wait_for(timeout=300_000)
        [code] = [d.name for d in (home / "jobs").iterdir() if d.name.isdigit()]
        assert code in page.inner_text("body")
        screenshot(page, "flow-2-face-ready")
        qr = page.get_by_test_id("stImage").filter(has_text="Inquadra").locator("img")
        scene_url = decode_qr(page, base, qr)
        assert "/scene?" in scene_url and f"lora={code}" in scene_url and "lang=it" in scene_url

        # the phone (here: the same browser) opens the scene page with the code filled in
        page.goto(scene_url)
        page.get_by_text("1. Il luogo").wait_for()
        expect(page.get_by_role("textbox", name="Il tuo codice di 8 cifre (facoltativo)")).to_have_value(code)
        preview = page.get_by_test_id("stImage").filter(has_text="Anteprima. Blu: dove sarai tu").locator("img")
        before = preview.get_attribute("src")
        page.get_by_role("button", name="Saluto").click()  # the pose's tile, by its Italian title
        expect(page.get_by_test_id("stBaseButton-primary").filter(has_text="Saluto")).to_have_count(1)
        expect(preview).not_to_have_attribute("src", before)  # the preview follows the pose
        screenshot(page, "flow-3-pose-and-preview")
        page.get_by_role("button", name="Crea la mia foto").click()

        # the picture, its code, and its QR code holding the URL a phone fetches
        caption = page.get_by_text(re.compile(r"^Foto \d{8}$"))
        caption.wait_for(timeout=300_000)
        picture = caption.inner_text().strip().split()[-1]
        screenshot(page, "flow-4-picture")
        url = decode_qr(page, base, page.get_by_test_id("stImage").filter(has_text="Inquadra").locator("img"))
        assert url == f"{base}/data/outputs/{picture}.png"
        assert page.get_by_text(url).count() == 1
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200 and response.headers["content-type"] == "image/png"
            body = response.read()
    saved = home / "outputs" / f"{picture}.png"
    assert body == saved.read_bytes()
    with Image.open(saved) as img:
        public = json.loads(img.text["cartolina"])
        assert code not in str(img.text)  # who fetches the picture cannot paint the visitor's face
    assert public["face_pass"] is True and public["action_name"] == "waving"
    record = json.loads((home / "records" / f"{picture}.json").read_text())
    assert record["request"]["selected_lora"] == code
