"""Real faces that ship in test dependencies, for the likeness tests and bench/bench_likeness.py:
scikit-image's `astronaut()` (Eileen Collins) and matplotlib's `grace_hopper.jpg`, in the
variants a phone would give (mirrored, brighter, darker, rotated, scaled, cropped)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps


def astronaut() -> Image.Image:
    from skimage import data
    return Image.fromarray(data.astronaut())


def grace_hopper() -> Image.Image:
    import matplotlib
    with Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg") as img:
        return img.convert("RGB")


def variants(img: Image.Image) -> dict[str, Image.Image]:
    """One person, five different shots."""
    w, h = img.size
    return {"as is": img, "mirrored": ImageOps.mirror(img),
            "brighter": ImageEnhance.Brightness(img).enhance(1.2),
            "rotated": img.rotate(5, resample=Image.Resampling.BICUBIC),
            "scaled": img.resize((round(w * 0.8), round(h * 0.8)), Image.Resampling.LANCZOS)}


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def astronaut_photos() -> list[bytes]:
    """Five astronaut variants: one visitor, five good photos."""
    return [png(v) for v in variants(astronaut()).values()]


def somebody_else_among(n_same: int = 4) -> list[bytes]:
    """Four astronaut variants and Grace Hopper, last: the set the likeness check must refuse
    exactly one photo of."""
    return astronaut_photos()[:n_same] + [png(grace_hopper())]


def face_crop(img: Image.Image, side: int = 256) -> Image.Image:
    """The square around the main face, as a painting of a face would come out of the trainer."""
    from engine.likeness import main_face
    x0, y0, x1, y1 = main_face(img).box
    m = (x1 - x0) // 2
    return img.crop((max(0, x0 - m), max(0, y0 - m), min(img.width, x1 + m),
                     min(img.height, y1 + m))).resize((side, side), Image.Resampling.LANCZOS)
