"""Safe image loading: every picture from a user or from disk comes in through here.

Uploads come from strangers at a kiosk, so a file is refused before it is decoded if it is
too big or claims too many pixels (decompression bombs), refused if it is truncated or not
an image at all, and turned upright (EXIF orientation) so a phone photo is not sideways.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

from engine.diskfull import disk_full_guard
from engine.errors import InvalidImage
from engine.messages import Msg

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "MPO")
ACCEPTED_TEXT = Msg("JPEG, PNG, WebP or BMP")

# A truncated file must be an error, never a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_SIDE = 4096


def _read_bytes(source, field: str, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InvalidImage(field, str(path), reason=Msg("cannot read file ({detail})", detail=exc.strerror)) from None
        if path.is_dir():
            raise InvalidImage(field, path.name, ACCEPTED_TEXT, reason=Msg("a folder, not an image file"))
        if not path.is_file():  # a device or a pipe would be read without end
            raise InvalidImage(field, path.name, ACCEPTED_TEXT, reason=Msg("not a regular file"))
        if size > max_bytes:
            raise InvalidImage(field, path.name, Msg("at most {mb} MB", mb=max_bytes // (1024 * 1024)),
                               reason=Msg("file is too large ({size:.1f} MB)", size=size / 1e6))
        data = path.read_bytes()
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            raise InvalidImage(field, "<text>", ACCEPTED_TEXT, reason=Msg("not an image file"))
    else:
        raise InvalidImage(field, type(source).__name__, "bytes, a path or a file object",
                           reason="unsupported source")
    if len(data) > max_bytes:
        raise InvalidImage(field, f"{len(data)} bytes", Msg("at most {mb} MB", mb=max_bytes // (1024 * 1024)),
                           reason=Msg("file is too large"))
    if not data:
        raise InvalidImage(field, "0 bytes", ACCEPTED_TEXT, reason=Msg("file is empty"))
    return data


def load_image(source: bytes | str | Path | BinaryIO, *, field: str = "image", mode: str = "RGB",
               max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_side: int | None = DEFAULT_MAX_SIDE, min_side: int = 1) -> Image.Image:
    """Decode an untrusted image into a fully loaded, upright image in `mode`.

    Raises `InvalidImage` naming `field` for anything we would not want to feed a model.
    Images larger than `max_side` are scaled down (a phone photo is fine, just big);
    images with more than `max_pixels` are refused before decoding (a bomb is not).
    """
    data = _read_bytes(source, field, max_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise InvalidImage(field, _name(source), ACCEPTED_TEXT, reason=Msg("not an image file")) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InvalidImage(field, _name(source), Msg("at most {n:,} pixels", n=max_pixels),
                               reason=Msg("image has too many pixels (possible decompression bomb)")) from None
        except Exception as exc:  # Pillow plugins raise assorted errors on garbage
            raise InvalidImage(field, _name(source), ACCEPTED_TEXT, reason=Msg("unreadable image ({detail})", detail=str(exc))) from None
        if img.format not in ACCEPTED_FORMATS:
            raise InvalidImage(field, img.format, ACCEPTED_TEXT, reason=Msg("unsupported image format"))
        w, h = img.size
        if w * h > max_pixels:
            raise InvalidImage(field, f"{w}x{h}", Msg("at most {n:,} pixels", n=max_pixels),
                               reason=Msg("image has too many pixels (possible decompression bomb)"))
        try:
            img.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
            raise InvalidImage(field, _name(source), ACCEPTED_TEXT,
                               reason=Msg("image data is truncated or corrupt ({detail})", detail=str(exc))) from None
    img = ImageOps.exif_transpose(img)
    img = _convert(img, mode)
    if min(img.size) < min_side:
        raise InvalidImage(field, f"{img.width}x{img.height}", Msg("at least {n} px on each side", n=min_side),
                           reason=Msg("image is too small"))
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def _convert(img: Image.Image, mode: str) -> Image.Image:
    """Convert, flattening transparency onto white so cut-outs do not turn black."""
    if img.mode == mode:
        return img
    if mode in ("RGB", "L") and (img.mode in ("RGBA", "LA", "PA") or
                                 (img.mode == "P" and "transparency" in img.info)):
        rgba = img.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        return flat.convert(mode)
    return img.convert(mode)


def load_mask(source, *, field: str = "mask", **kw) -> Image.Image:
    """A mask as strictly binary L (0/255): anti-aliased edges are thresholded at half."""
    img = load_image(source, field=field, mode="L", **kw)
    return binarize(img)


def binarize(img: Image.Image, threshold: int = 128) -> Image.Image:
    return img.convert("L").point(lambda v: 255 if v >= threshold else 0)


def is_binary(img: Image.Image) -> bool:
    colors = img.convert("L").getcolors(256) or []
    return {c for _, c in colors} <= {0, 255}


def _name(source) -> str:
    if isinstance(source, (str, Path)):
        return Path(source).name
    return getattr(source, "name", None) or "<upload>"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    with disk_full_guard(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def encode_png(img: Image.Image, text: dict[str, str] | None = None) -> bytes:
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        for k, v in text.items():
            info.add_itxt(k, v)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info, optimize=False)
    return buf.getvalue()


def save_png(img: Image.Image, path: Path, text: dict[str, str] | None = None) -> Path:
    atomic_write_bytes(Path(path), encode_png(img, text))
    return Path(path)
