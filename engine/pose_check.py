"""Is a pose ready for visitors? One set of checks for masks a curator painted, images an
upload brought and images the studio drew, so the editor refuses exactly what the scene page
would hide.

A visitor picks the pose first and the distance after, so a pose is offered only when all
three distances are there and usable: one broken distance would otherwise surface as an
error in the middle of a visitor's picture.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from engine import images
from engine.catalog import SHOT_LABELS, ActionImage, Catalog
from engine.errors import CartolinaError, CatalogError
from engine.poses import SHOT_TYPES


def mask_problems(pose_size: tuple[int, int], pose_mask: Image.Image,
                  face_mask: Image.Image) -> list[str]:
    """What is wrong with one distance's masks, in a curator's words (empty = usable)."""
    problems = []
    for label, m in (("person mask", pose_mask), ("face mask", face_mask)):
        if m.size != tuple(pose_size):
            problems.append(f"the {label} is {m.width}×{m.height}, the pose image "
                            f"{pose_size[0]}×{pose_size[1]}: they must be the same size")
        elif not images.is_binary(m):
            problems.append(f"the {label} is not pure black and white")
        elif m.convert("L").getbbox() is None:
            problems.append(f"the {label} is empty: paint where the "
                            f"{'person' if m is pose_mask else 'face'} goes")
    if not problems:
        outside = int((~(np.asarray(pose_mask.convert("L")) >= 128)
                       & (np.asarray(face_mask.convert("L")) >= 128)).sum())
        if outside:
            problems.append(f"{outside} pixels of the face mask lie outside the person mask: the "
                            "face is painted only on the person, so erase them from the face or "
                            "paint the person there")
    return problems


def _stamp(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns


@lru_cache(maxsize=256)
def _stored_problems(files: tuple) -> tuple[str, ...]:
    """Keyed by the files' paths, sizes and times: the catalog gives every new image a new
    name, so an unchanged key means unchanged images and a page that lists the poses on every
    rerun does not decode them all again."""
    try:
        pose, pmask, fmask = (images.load_image(Path(path), field=Path(path).name, mode=mode,
                                                max_side=None)
                              for (path, _, _), mode in zip(files, ("RGB", "L", "L")))
    except (CartolinaError, OSError) as exc:
        return (f"its images cannot be read ({exc})",)
    problems = mask_problems(pose.size, pmask, fmask)
    if pose.getbbox() is None:
        problems.insert(0, "the pose image is empty: there is no skeleton to follow")
    return tuple(problems)


def shot_problems(cat: Catalog, rec: ActionImage) -> list[str]:
    """What is wrong with one stored distance (empty = usable)."""
    try:
        paths = [cat.asset_path(rel) for rel in (rec.pose_image, rec.pose_mask, rec.face_mask)]
    except CatalogError as exc:
        return [str(exc)]
    return list(_stored_problems(tuple((str(p), *_stamp(p)) for p in paths)))


def action_problems(cat: Catalog, action: str) -> list[str]:
    """Why visitors cannot have this pose, one line per distance at fault (empty = offered)."""
    stored = {rec.shot_type: rec for rec in cat.list_action_images(action)}
    problems = []
    for shot in SHOT_TYPES:
        where = f"{SHOT_LABELS[shot]} ({shot})"
        if shot not in stored:
            problems.append(f"{where}: no images yet")
        else:
            problems += [f"{where}: {p}" for p in shot_problems(cat, stored[shot])]
    return problems


def offerable_actions(cat: Catalog) -> list[str]:
    """The names of the poses a visitor may choose, in the catalog's order."""
    return [a.name for a in cat.list_actions() if not action_problems(cat, a.name)]
