"""Masks by hand: a curator's brush strokes applied to one distance's person or face mask.

The drawn masks assume nothing stands between the camera and the person; at a real site a
railing or a column often does, and only the curator knows where. The strokes come from a
drawing canvas as an RGBA picture of the strokes alone: the brush's colour says whether a
stroke adds to the mask or cuts it, and where strokes cross the later one is on top, as the
curator saw it. The result is saved binary and must pass the same checks as a drawn mask.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine import images, poses
from engine.catalog import SHOT_LABELS, ActionImage, Catalog
from engine.errors import InvalidInput
from engine.pose_check import mask_problems
from engine.pose_edit import check_unchanged

PAINT = (0, 255, 0)    # brush colour that adds to the mask
ERASE = (255, 0, 255)  # brush colour that cuts it
_BACKDROP = (200, 200, 200)


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#%02x%02x%02x" % rgb


def has_strokes(strokes: np.ndarray | None) -> bool:
    return strokes is not None and bool((np.asarray(strokes)[..., 3] >= 128).any())


def apply_strokes(mask: Image.Image, strokes: np.ndarray | None) -> Image.Image:
    """The mask with the strokes applied, 0/255. The canvas may be drawn at another scale
    (a screen's pixel ratio), so the strokes are fitted to the mask's size first."""
    out = np.array(images.binarize(mask))
    if strokes is None:
        return Image.fromarray(out, "L")
    rgba = np.asarray(Image.fromarray(np.asarray(strokes, dtype=np.uint8), "RGBA")
                      .resize(mask.size, Image.NEAREST)).astype(np.int32)
    drawn = rgba[..., 3] >= 128
    paint = ((rgba[..., :3] - PAINT) ** 2).sum(-1) <= ((rgba[..., :3] - ERASE) ** 2).sum(-1)
    out[drawn & paint] = 255
    out[drawn & ~paint] = 0
    return Image.fromarray(out, "L")


def painting_view(pose: Image.Image, pose_mask: Image.Image, face_mask: Image.Image) -> Image.Image:
    """What the curator paints over: both areas tinted on grey, the skeleton on top."""
    return poses.preview_on_poi(Image.new("RGB", pose.size, _BACKDROP),
                                {"pose": pose, "pose_mask": pose_mask, "face_mask": face_mask})


def save_masks(cat: Catalog, action: str, shot: str, pose_mask: Image.Image,
               face_mask: Image.Image, *, based_on: str | None = None) -> ActionImage:
    """Store painted masks for one distance, keeping its pose image, placement and keypoints;
    masks a generated picture would trip over are refused with what is wrong. `based_on` is
    the pose image the curator painted over: if someone redrew the distance since, the
    strokes belong to another drawing and are refused."""
    rec = cat.get_action_image(action, shot)
    version = None if based_on is None else \
        check_unchanged(f"the {SHOT_LABELS[rec.shot_type]} shot of {action!r}", rec, based_on)
    pose = cat.open_asset(rec.pose_image)
    pmask, fmask = images.binarize(pose_mask), images.binarize(face_mask)
    problems = mask_problems(pose.size, pmask, fmask)
    if problems:
        raise InvalidInput(f"masks of the {SHOT_LABELS[rec.shot_type]} shot", "the painted masks",
                           "a person mask and a face mask inside it, neither empty",
                           reason="; ".join(problems))
    return cat.set_action_image(action, rec.shot_type, pose, pmask, fmask, placement=rec.placement,
                                keypoints=rec.keypoints, expected_version=version)
