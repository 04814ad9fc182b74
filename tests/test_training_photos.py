"""Training photo checks: each bad photo is named with its reason; good ones are cropped on the face.

The face photos are variations of scikit-image's `astronaut` (one clear face), a test-only
dependency. The helpers here are imported by the other training tests.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from engine import codes
from engine.errors import Conflict, InvalidInput, PhotoCheckFailed
from engine.training.photos import (CheckedPhoto, PhotoRules, check_photos, crop_around_face,
                                    detect_faces, photo_problem, preview)


def astronaut() -> Image.Image:
    from skimage import data
    return Image.fromarray(data.astronaut())


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def face_photos() -> list[bytes]:
    """Five different, valid photos of one face."""
    a = astronaut()
    variants = [a, ImageOps.mirror(a), a.crop((60, 0, 512, 452)),
                ImageEnhance.Brightness(a).enhance(1.2), a.rotate(5, resample=Image.Resampling.BICUBIC)]
    return [png(v) for v in variants]


def two_faces() -> bytes:
    a = astronaut()
    both = Image.new("RGB", (1024, 512))
    both.paste(a, (0, 0))
    both.paste(ImageOps.mirror(a), (512, 0))
    return png(both)


def no_face() -> bytes:
    from skimage import data
    return png(Image.fromarray(data.coffee()))


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny file claiming a huge canvas."""
    raw = zlib.compress(b"\x00" * (width // 8 + 1) * 16)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


# --- codes ---------------------------------------------------------------------------------------

def test_new_codes_are_eight_digits_and_skip_taken_ones():
    seen = {codes.new_code(lambda c: False) for _ in range(200)}
    assert all(len(c) == 8 and c.isdigit() for c in seen)
    assert len(seen) > 190
    taken = set(seen)
    fresh = codes.new_code(lambda c: c in taken)
    assert fresh not in taken


def test_new_code_gives_up_when_everything_is_taken():
    with pytest.raises(Conflict):
        codes.new_code(lambda c: True)


@pytest.mark.parametrize("bad", ["1234567", "123456789", "1234567a", "", None, 12345678, "١٢٣٤٥٦٧٨"])
def test_check_code_refuses_anything_but_eight_ascii_digits(bad):
    with pytest.raises(InvalidInput) as err:
        codes.check_code(bad, "selected_lora")
    assert err.value.field == "selected_lora"
    assert "8 digits" in str(err.value)


def test_check_code_keeps_leading_zeros_and_trims_blanks():
    assert codes.check_code(" 00123456\n") == "00123456"


# --- photos --------------------------------------------------------------------------------------

def test_five_good_photos_pass_and_are_cropped_square_on_the_face():
    checked = check_photos(face_photos(), PhotoRules(resolution=256))
    assert [c.index for c in checked] == [0, 1, 2, 3, 4]
    for c in checked:
        assert isinstance(c, CheckedPhoto)
        assert c.image.size == (256, 256)
        x0, y0, x1, y1 = c.face_box
        assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
        # the face sits in the middle with a margin around it
        assert 60 < (x0 + x1) / 2 < 196 and 60 < (y0 + y1) / 2 < 196
        assert 0.3 < (x1 - x0) / 256 < 0.6
        spec = c.to_spec("photo_0.png")
        assert spec["face_box"] == list(c.face_box) and spec["file"] == "photo_0.png"


def test_crop_near_the_border_shifts_inside_the_photo():
    img = Image.new("RGB", (400, 300), "gray")
    crop, box = crop_around_face(img, (0, 0, 100, 100), margin=2.0, resolution=128)
    assert crop.size == (128, 128)
    assert box == (0, 0, 64, 64)


def test_four_photos_is_a_count_problem_and_the_good_ones_are_not_blamed():
    with pytest.raises(PhotoCheckFailed) as err:
        check_photos(face_photos()[:4])
    assert err.value.count_problem == "4 photos given; exactly 5 needed"
    assert err.value.problems == {}
    assert err.value.to_dict()["count_problem"]


def test_each_bad_photo_is_named_with_its_own_reason():
    photos = face_photos()
    photos[0] = b"this is not an image at all"
    photos[1] = no_face()
    photos[2] = two_faces()
    photos[3] = png(astronaut().resize((64, 64)))
    with pytest.raises(PhotoCheckFailed) as err:
        check_photos(photos)
    problems = err.value.problems
    assert sorted(problems) == [0, 1, 2, 3]  # photo 5 is fine and not mentioned
    assert "not an image" in problems[0]
    assert "no face" in problems[1]
    assert "2 faces" in problems[2]
    assert "too small" in problems[3]
    assert err.value.count_problem is None
    assert "photo 3: 2 faces found" in str(err.value)
    listed = [p["photo"] for p in err.value.to_dict()["problems"]]
    assert listed == [1, 2, 3, 4]


def test_a_decompression_bomb_is_refused_without_decoding():
    photos = face_photos()
    photos[4] = bomb_png()
    with pytest.raises(PhotoCheckFailed) as err:
        check_photos(photos)
    assert list(err.value.problems) == [4]
    assert "too many pixels" in err.value.problems[4]


def test_one_photo_at_a_time_gets_the_verdict_the_set_check_gives_it():
    """What a page asks as each photo is added; the reason keeps its template for translation."""
    good, scene, text = face_photos()[0], no_face(), b"this is not an image at all"
    assert photo_problem(good) is None
    assert photo_problem(scene).template.startswith("no face found")
    assert "not an image" in photo_problem(text)
    with pytest.raises(PhotoCheckFailed) as err:
        check_photos([good, scene, text, good, good])
    assert err.value.problems == {1: photo_problem(scene), 2: photo_problem(text)}


def test_a_preview_is_a_small_jpeg_and_a_bomb_or_a_non_image_gets_none():
    small = Image.open(io.BytesIO(preview(png(astronaut()), side=128)))
    assert small.format == "JPEG" and small.size == (128, 128)
    assert preview(bomb_png()) is None and preview(b"this is not an image at all") is None


def test_a_blurred_face_is_refused_as_blurred():
    photos = face_photos()
    photos[2] = png(astronaut().filter(ImageFilter.GaussianBlur(2)))
    with pytest.raises(PhotoCheckFailed) as err:
        check_photos(photos)
    assert list(err.value.problems) == [2]
    assert "blurred" in err.value.problems[2]


def test_a_face_too_small_in_a_large_photo_is_refused():
    tiny_face = astronaut().resize((200, 200), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (600, 600), (120, 130, 140))
    canvas.paste(tiny_face, (200, 200))
    rules = PhotoRules(count_min=1, count_max=1, min_face_fraction=0.02, min_face_px=64)
    assert len(detect_faces(canvas, rules)) == 1
    with pytest.raises(PhotoCheckFailed) as err:
        check_photos([png(canvas)], rules)
    assert "too small" in err.value.problems[0]


def test_the_photo_count_range_comes_from_the_settings(settings):
    from dataclasses import replace
    rules = PhotoRules.from_settings(replace(settings, photos_min=3, photos_max=6))
    assert len(check_photos(face_photos()[:3], rules)) == 3
    with pytest.raises(PhotoCheckFailed, match="2 photos given; 3 to 6 needed"):
        check_photos(face_photos()[:2], rules)


def test_a_single_path_instead_of_a_list_is_refused(tmp_path):
    path = tmp_path / "one.png"
    path.write_bytes(face_photos()[0])
    with pytest.raises(InvalidInput) as err:
        check_photos(str(path))
    assert err.value.field == "photos"


def test_a_false_face_in_the_clothes_does_not_count_as_a_second_person():
    """The old Haar cascade saw a face in this crop's space suit; dlib's detector does not."""
    from engine.training.photos import detect_faces
    crop = astronaut().crop((28, 4, 428, 404))
    assert len(detect_faces(crop)) == 1
