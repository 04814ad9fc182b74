"""Training photo checks: tell a visitor which photo to retake, and why, before any training.

A LoRA trained on a blurred photo, a group shot or a picture of the sea costs an hour of
accelerator time and gives a bad face, and the seed only counted the files. So every photo
is decoded with the safe loader, measured, searched for exactly one face and checked for
focus *on the face*; all photos are checked (not just up to the first failure) so the answer
lists every photo to retake at once. A passing photo is cropped square around its face with a
margin and the face box is kept: the trainer masks around it.

Then the set must show one person: a LoRA trained on four photos of the visitor and one of
somebody else learns a blend of two faces. Every good photo's face is embedded
(`engine.likeness`, dlib's ResNet face model), the largest group of photos whose faces are
close to each other is the visitor, and every other photo is refused as "a different person".

Faces are found by the studio's one face detector, dlib's HOG detector in `engine.likeness`:
measured against OpenCV's Haar cascade on the test faces it made fewer mistakes, and only
safe ones (it refused two rotated photos; the cascade let a second person and a coin count as
one face), at about the same speed (docs/benchmarks.md, "Likeness").
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Hashable, Mapping, Sequence

import numpy as np
from PIL import Image

from engine import likeness
from engine.errors import InvalidImage, InvalidInput, PhotoCheckFailed
from engine.images import load_image
from engine.messages import Msg

__all__ = ["PhotoRules", "CheckedPhoto", "check_photos", "check_photo", "photo_problem", "photo_verdict",
           "identity_problems", "DIFFERENT_PERSON", "preview", "detect_faces", "face_sharpness",
           "crop_around_face"]

DIFFERENT_PERSON = Msg("this looks like a different person from your other photos")
# Sharpness is measured on the face scaled to this size, so a big sharp face and a small
# sharp face score alike.
SHARPNESS_SIDE = 128


@dataclass(frozen=True)
class PhotoRules:
    """What a usable set of training photos is. Defaults fit SD-1.5 at 512 px."""

    count_min: int = 5
    count_max: int = 5
    min_side: int = 256            # px on the short side of the photo
    min_face_px: int = 64          # px on the face box's side, in the photo
    min_face_fraction: float = 0.08  # smaller boxes (background people, texture) are ignored
    min_sharpness: float = 20.0    # variance of the Laplacian of the face at 128 px
    margin: float = 2.2            # crop side = face side × margin (hair, chin, some neck)
    resolution: int = 512          # side of the square crop given to the trainer
    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_face_distance: float = likeness.SAME_PERSON  # faces closer than this: one person

    @classmethod
    def from_settings(cls, settings, **overrides) -> "PhotoRules":
        rules = cls(count_min=settings.photos_min, count_max=settings.photos_max,
                    max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels,
                    max_face_distance=settings.face_threshold)
        return replace(rules, **overrides) if overrides else rules

    def count_text(self) -> Msg:
        if self.count_min == self.count_max:
            return Msg("exactly {n}", n=self.count_min)
        return Msg("{lo} to {hi}", lo=self.count_min, hi=self.count_max)


@dataclass
class CheckedPhoto:
    """A photo that passed: its square crop and the face box inside the crop (x0, y0, x1, y1),
    and its face's embedding, which stays in memory: the job's spec never holds it."""

    index: int
    image: Image.Image
    face_box: tuple[int, int, int, int]
    source_size: tuple[int, int]
    source_face_box: tuple[int, int, int, int]
    sharpness: float
    embedding: np.ndarray | None = field(default=None, repr=False)

    def to_spec(self, filename: str) -> dict:
        return {"file": filename, "face_box": list(self.face_box),
                "source_size": list(self.source_size), "source_face_box": list(self.source_face_box),
                "sharpness": round(self.sharpness, 1)}


class _Rejected(Exception):
    """One photo's reason, in words a visitor can act on."""


def _gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"), dtype=np.uint8)


def detect_faces(img: Image.Image, rules: PhotoRules = PhotoRules()) -> list[tuple[int, int, int, int]]:
    """Face boxes (x0, y0, x1, y1) in `img` pixels, largest first; faces smaller than
    `rules.min_face_fraction` of the short side (people in the background) do not count."""
    return [face.box for face in likeness.find_faces(img, rules.min_face_fraction)]


def face_sharpness(img: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Focus on the face itself: a sharp background must not rescue a blurred face."""
    import cv2
    face = _gray(img.crop(box))
    # INTER_AREA both ways: a blocky upscale (BOX/nearest) would invent edges on small faces.
    face = cv2.resize(face, (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(face.astype(np.float64), cv2.CV_64F).var())


def crop_around_face(img: Image.Image, box: tuple[int, int, int, int], margin: float,
                     resolution: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Square crop centred on the face (shifted to stay inside the photo), resized.

    Returns the crop and the face box in the crop's pixels.
    """
    x0, y0, x1, y1 = box
    side = int(round(max(x1 - x0, y1 - y0) * margin))
    side = max(1, min(side, img.width, img.height))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - side / 2, 0), img.width - side)))
    top = int(round(min(max(cy - side / 2, 0), img.height - side)))
    crop = img.crop((left, top, left + side, top + side)).resize(
        (resolution, resolution), Image.Resampling.LANCZOS)
    k = resolution / side

    def clamp(v: float) -> int:
        return int(min(max(round(v), 0), resolution))

    return crop, (clamp((x0 - left) * k), clamp((y0 - top) * k), clamp((x1 - left) * k), clamp((y1 - top) * k))


def check_photo(source, index: int, rules: PhotoRules = PhotoRules()) -> CheckedPhoto:
    """One photo, or `_Rejected` with the reason (use `check_photos` from outside)."""
    try:
        img = load_image(source, field=f"photo {index + 1}", mode="RGB", max_bytes=rules.max_bytes,
                         max_pixels=rules.max_pixels, min_side=rules.min_side)
    except InvalidImage as exc:
        reason = exc.reason or Msg("not a usable image")
        if exc.accepted:
            reason = Msg("{reason} (accepted: {accepted})", reason=reason, accepted=exc.accepted)
        raise _Rejected(reason) from None
    faces = detect_faces(img, rules)
    if not faces:
        raise _Rejected(Msg("no face found: take a photo of your face from the front, in good light"))
    if len(faces) > 1:
        raise _Rejected(Msg("{n} faces found: exactly one face is needed, yours alone", n=len(faces)))
    box = faces[0]
    side = min(box[2] - box[0], box[3] - box[1])
    if side < rules.min_face_px:
        raise _Rejected(Msg("the face is too small ({side} px; at least {min} px): come closer",
                            side=side, min=rules.min_face_px))
    sharp = face_sharpness(img, box)
    if sharp < rules.min_sharpness:
        raise _Rejected(Msg("the face is blurred (sharpness {sharp:.0f}; at least {min:.0f}): "
                            "hold still and retake it", sharp=sharp, min=rules.min_sharpness))
    crop, face_box = crop_around_face(img, box, rules.margin, rules.resolution)
    return CheckedPhoto(index, crop, face_box, img.size, box, sharp, likeness.embed(img, box))


def photo_verdict(source, rules: PhotoRules = PhotoRules()) -> tuple[Msg | None, list[float] | None]:
    """One photo's verdict as the visitor adds it (None: usable) and its face's embedding, so a
    page can answer photo by photo while the visitor is still there to retake it, and tell who
    else slipped in (`identity_problems`); `check_photos` checks the whole set again when the
    training is asked for."""
    try:
        checked = check_photo(source, 0, rules)
    except _Rejected as why:
        return why.args[0], None
    return None, None if checked.embedding is None else [float(v) for v in checked.embedding]


def photo_problem(source, rules: PhotoRules = PhotoRules()) -> Msg | None:
    """One photo's verdict on its own (see `photo_verdict`)."""
    return photo_verdict(source, rules)[0]


def identity_problems(embeddings: Mapping[Hashable, Sequence[float]],
                      max_distance: float = likeness.SAME_PERSON) -> dict[Hashable, Msg]:
    """The photos (by key) whose face is not the visitor's: the visitor is the largest group
    of faces all closer than `max_distance` to each other (`likeness.largest_group`; between
    groups of one size, the one with the earliest photo)."""
    kept = set(likeness.largest_group(embeddings, max_distance))
    return {key: DIFFERENT_PERSON for key in embeddings if key not in kept}


def preview(source, rules: PhotoRules = PhotoRules(), side: int = 256) -> bytes | None:
    """A small upright JPEG, so the visitor sees which photo a verdict is about. Decoded by the
    safe loader, so a photo refused for its size is never decoded for its preview either;
    None when it cannot be decoded (its verdict says why)."""
    try:
        img = load_image(source, field="photo", mode="RGB", max_bytes=rules.max_bytes,
                         max_pixels=rules.max_pixels, max_side=side)
    except InvalidImage:
        return None
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def check_photos(sources: Sequence, rules: PhotoRules = PhotoRules()) -> list[CheckedPhoto]:
    """Every photo checked; all problems raised together as `PhotoCheckFailed`.

    `sources` are whatever `load_image` takes (bytes, paths, file objects). The count is
    checked too, but the photos given are still checked one by one so a visitor who sent
    four photos also learns that the third one is blurred. The good photos must show one
    person: any other face gets `DIFFERENT_PERSON` as its reason.
    """
    if isinstance(sources, (str, bytes, Path)) or not isinstance(sources, Sequence):
        raise InvalidInput("photos", type(sources).__name__, "a list of image files",
                           reason="expected several photos")
    n = len(sources)
    count_problem = None
    if not rules.count_min <= n <= rules.count_max:
        count_problem = (Msg("1 photo given; {needed} needed", needed=rules.count_text()) if n == 1 else
                         Msg("{n} photos given; {needed} needed", n=n, needed=rules.count_text()))
    checked: list[CheckedPhoto] = []
    problems: dict[int, str] = {}
    for i, src in enumerate(sources):
        try:
            checked.append(check_photo(src, i, rules))
        except _Rejected as why:
            problems[i] = why.args[0]
    # One person: each good photo's face against the others'.
    problems.update(identity_problems({c.index: c.embedding for c in checked if c.embedding is not None},
                                      rules.max_face_distance))
    if problems or count_problem:
        raise PhotoCheckFailed(problems, count_problem)
    return checked
