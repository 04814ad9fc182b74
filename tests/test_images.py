"""Safe image loading refuses everything a kiosk upload could throw at it."""

import io
import struct
import zlib

import pytest
from PIL import Image

from engine.errors import InvalidImage
from engine.images import atomic_write_bytes, binarize, is_binary, load_image, load_mask


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def test_good_png_loads_as_rgb():
    img = load_image(_png(Image.new("RGB", (40, 30), (10, 20, 30))))
    assert img.size == (40, 30) and img.mode == "RGB"
    assert img.getpixel((0, 0)) == (10, 20, 30)


def test_text_file_is_refused_with_field_and_accepted_formats():
    with pytest.raises(InvalidImage) as err:
        load_image(b"hello, I am not a picture", field="photo 3")
    assert err.value.field == "photo 3"
    assert "not an image" in str(err.value) and "JPEG" in str(err.value)


def test_empty_upload_is_refused():
    with pytest.raises(InvalidImage, match="empty"):
        load_image(b"")


def test_truncated_jpeg_is_refused():
    data = _jpeg(Image.effect_noise((256, 256), 60).convert("RGB"), quality=95)
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_truncated_png_is_refused():
    data = _png(Image.effect_noise((256, 256), 60).convert("RGB"))
    with pytest.raises(InvalidImage):
        load_image(data[: len(data) - 200])


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny file claiming a huge canvas: the classic decompression bomb."""
    raw = zlib.compress(b"\x00" * (width // 8 + 1) * 16)  # a few rows; the header lies

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    bomb = _bomb_png(100_000, 100_000)
    assert len(bomb) < 10_000
    with pytest.raises(InvalidImage, match="too many pixels"):
        load_image(bomb)


def test_pixel_cap_is_configurable():
    with pytest.raises(InvalidImage, match="too many pixels") as err:
        load_image(_png(Image.new("RGB", (200, 200))), max_pixels=10_000)
    assert "10,000" in str(err.value)


def test_file_over_the_byte_limit_is_refused():
    with pytest.raises(InvalidImage, match="too large"):
        load_image(_png(Image.effect_noise((300, 300), 80).convert("RGB")), max_bytes=1000)


def test_unsupported_format_is_refused():
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, format="GIF")
    with pytest.raises(InvalidImage, match="unsupported image format"):
        load_image(buf.getvalue())


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (60, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    loaded = load_image(_jpeg(img, exif=exif.tobytes()))
    assert loaded.size == (20, 60)


def test_transparency_is_flattened_on_white():
    img = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert load_image(_png(img)).getpixel((3, 3)) == (255, 255, 255)


def test_large_photo_is_scaled_down_to_the_cap():
    img = load_image(_png(Image.new("RGB", (3000, 1000))), max_side=1500)
    assert img.size == (1500, 500)


def test_too_small_image_is_refused():
    with pytest.raises(InvalidImage, match="too small"):
        load_image(_png(Image.new("RGB", (20, 20))), min_side=64)


def test_masks_are_binarized():
    grey = Image.linear_gradient("L").resize((64, 64))
    mask = load_mask(_png(grey))
    assert is_binary(mask) and not is_binary(grey)
    assert binarize(grey).getpixel((0, 63)) == 255


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "x" / "a.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["a.bin"]
