"""The curators' skeleton editor, without its page: one skeleton, three distances.

A curator edits a single skeleton on the far shot's canvas (the whole body in view); the
close and medium shots are framed from it exactly as the built-in poses are (`to_body` then
`frame_pose`), so the three distances never disagree and a built-in pose reopened here
frames as before. Every change redraws the pose image and both masks from the keypoints;
saving stores the keypoints with them, so generation redraws the skeleton sharp at any
photo's resolution. Keypoint lists are immutable in spirit: every edit returns a new list.
"""

from __future__ import annotations

from typing import Mapping

from PIL import Image, ImageDraw

from engine import poses
from engine.catalog import SHOT_LABELS, ActionImage, Catalog
from engine.errors import Conflict, InvalidInput, NotFound
from engine.pose_check import mask_problems
from engine.poses import KEYPOINT_NAMES, SHOT_TYPES

EDIT_SHOT = "FUS"
EDIT_SIZE = (512, 512)  # the size the built-in poses are drawn at
_STANDING_HEIGHT = EDIT_SIZE[1] / 1.09  # a standing person on the far shot, as frame_pose draws one
_MIRROR = {n: n.replace("r_", "l_") if n.startswith("r_") else n.replace("l_", "r_") if n.startswith("l_")
           else n for n in KEYPOINT_NAMES}

JOINT_LABELS = {
    "nose": "nose", "neck": "neck", "r_shoulder": "right shoulder", "r_elbow": "right elbow",
    "r_wrist": "right wrist", "l_shoulder": "left shoulder", "l_elbow": "left elbow",
    "l_wrist": "left wrist", "r_hip": "right hip", "r_knee": "right knee", "r_ankle": "right ankle",
    "l_hip": "left hip", "l_knee": "left knee", "l_ankle": "left ankle", "r_eye": "right eye",
    "l_eye": "left eye", "r_ear": "right ear", "l_ear": "left ear",
}


def _index(joint: str) -> int:
    if joint not in KEYPOINT_NAMES:
        raise InvalidInput("joint", joint, KEYPOINT_NAMES)
    return KEYPOINT_NAMES.index(joint)


def _plain(kps) -> list:
    """JSON-ready, as the catalog stores keypoints."""
    if not isinstance(kps, (list, tuple)) or len(kps) != len(KEYPOINT_NAMES):
        raise InvalidInput("keypoints", kps, "18 points, each [x, y] or None")
    return [None if p is None else [round(float(p[0]), 2), round(float(p[1]), 2)] for p in kps]


# --- where a skeleton comes from ----------------------------------------------------------

def from_builtin(name: str) -> list:
    return _plain(poses.frame_pose(poses.get_action(name).keypoints, EDIT_SHOT, EDIT_SIZE))


def from_photo(keypoints_px, photo_size: tuple[int, int]) -> list:
    """A skeleton found in a photo (`pose_from_photo.find_pose`), framed as a far shot."""
    body = poses.to_body(keypoints_px, standing_height_px=photo_size[1])
    return _plain(poses.frame_pose(body, EDIT_SHOT, EDIT_SIZE))


def from_catalog(cat: Catalog, action: str) -> list | None:
    """The saved skeleton: the far shot's keypoints as they are when the editor drew them,
    else framed from whichever distance has keypoints; None when none has (images uploaded
    as files)."""
    recs = {r.shot_type: r for r in cat.list_action_images(action) if r.keypoints}
    fus = recs.get(EDIT_SHOT)
    if fus is not None and (fus.width, fus.height) == EDIT_SIZE:
        return _plain(fus.keypoints)
    for shot in (EDIT_SHOT, "MES", "CLS"):
        if shot in recs:
            body = poses.to_body(recs[shot].keypoints, standing_height_px=recs[shot].height)
            return _plain(poses.frame_pose(body, EDIT_SHOT, EDIT_SIZE))
    return None


# --- edits --------------------------------------------------------------------------------

def move(kps, joint: str, xy: tuple[float, float]) -> list:
    """Put a joint where the curator clicked (shown if it was hidden), kept on the canvas."""
    out = _plain(kps)
    x = min(max(float(xy[0]), 0.0), EDIT_SIZE[0] - 1.0)
    y = min(max(float(xy[1]), 0.0), EDIT_SIZE[1] - 1.0)
    out[_index(joint)] = [round(x, 2), round(y, 2)]
    return out


def hide(kps, joint: str) -> list:
    out = _plain(kps)
    out[_index(joint)] = None
    return out


def show(kps, joint: str) -> list:
    """Bring a hidden joint back where a standing person has it, moved with the neck, so it
    appears near the body and the curator then clicks it into place."""
    out = _plain(kps)
    i = _index(joint)
    if out[i] is not None:
        return out
    standing = from_builtin("standing")
    neck = KEYPOINT_NAMES.index("neck")
    dx, dy = (out[neck][0] - standing[neck][0], out[neck][1] - standing[neck][1]) \
        if out[neck] is not None else (0.0, 0.0)
    return move(out, joint, (standing[i][0] + dx, standing[i][1] + dy))


def mirror(kps) -> list:
    """Flip the picture left to right: the person's right arm becomes their left."""
    src = _plain(kps)
    out = [None] * len(KEYPOINT_NAMES)
    for i, name in enumerate(KEYPOINT_NAMES):
        p = src[KEYPOINT_NAMES.index(_MIRROR[name])]
        out[i] = None if p is None else [round(EDIT_SIZE[0] - 1 - p[0], 2), p[1]]
    return out


# --- drawing and saving -------------------------------------------------------------------

def draw_shots(kps) -> dict[str, dict]:
    """Pose image, person mask, face mask and keypoints for every distance."""
    fus = _plain(kps)
    if all(p is None for p in fus):
        raise InvalidInput("keypoints", "no joint shown", "a skeleton with at least one joint")
    body = poses.to_body(fus, _STANDING_HEIGHT)
    out = {}
    for shot in SHOT_TYPES:
        framed = fus if shot == EDIT_SHOT else poses.frame_pose(body, shot, EDIT_SIZE)
        out[shot] = {"pose": poses.render_pose(framed, EDIT_SIZE),
                     "pose_mask": poses.pose_mask(framed, EDIT_SIZE),
                     "face_mask": poses.face_mask(framed, EDIT_SIZE), "keypoints": _plain(framed)}
    return out


def editing_view(kps, selected: str | None = None) -> Image.Image:
    """The far shot as the curator edits it: areas tinted on grey, the skeleton, and a ring
    around the joint that the next click moves."""
    drawn = draw_shots(kps)[EDIT_SHOT]
    view = poses.preview_on_poi(Image.new("RGB", EDIT_SIZE, (200, 200, 200)), drawn)
    p = drawn["keypoints"][_index(selected)] if selected else None
    if p is not None:
        r = 11
        ImageDraw.Draw(view).ellipse((p[0] - r, p[1] - r, p[0] + r, p[1] + r), outline="white", width=3)
    return view


def preview_on_photo(cat: Catalog, action: str, shot: str, drawn: dict, photo: Image.Image) -> Image.Image:
    """One distance of a drawn (maybe unsaved) skeleton on a POI photo, where the saved
    placement for that distance (or its default) puts it."""
    try:
        saved = cat.get_action_image(action, shot).placement
    except NotFound:
        saved = None
    where = poses.placement_from_dict(saved, poses.DEFAULT_PLACEMENT[shot])
    return poses.preview_on_poi(photo, poses.compose_on_poi(photo.size, drawn, where))


def drawings(cat: Catalog, action: str) -> dict[str, str | None]:
    """Per distance, the name of the stored pose image (None where missing): what an editor
    started from. Every new drawing or painted mask is stored under a new name, while moving
    the person on a photo (placement) keeps it, so comparing names at save time tells an
    edit that would overwrite someone else's drawing from one that would not."""
    stored = {r.shot_type: r.pose_image for r in cat.list_action_images(action)}
    return {shot: stored.get(shot) for shot in SHOT_TYPES}


def check_unchanged(what: str, rec: ActionImage | None, based_on: str | None) -> int:
    """The version to write over, after refusing to overwrite a drawing that someone else
    changed since the editor showed it (0: the distance is still missing)."""
    if (rec.pose_image if rec else None) != based_on:
        raise Conflict(f"{what}: changed meanwhile by someone else — reload")
    return rec.version if rec else 0


def save_skeleton(cat: Catalog, action: str, kps, *,
                  based_on: Mapping[str, str | None] | None = None) -> list[ActionImage]:
    """Store all three distances drawn from one skeleton, each keeping its placement. Every
    distance is checked before any is written, so a skeleton that fails at one distance (no
    head in the close shot, say) changes nothing; with `based_on` (`drawings` when the editor
    loaded the pose), a distance someone else redrew meanwhile is refused, not overwritten."""
    drawn = draw_shots(kps)
    for shot, d in drawn.items():
        problems = mask_problems(EDIT_SIZE, d["pose_mask"], d["face_mask"])
        if problems:
            raise InvalidInput(f"{SHOT_LABELS[shot]} ({shot})", "this skeleton", "a skeleton whose head "
                               "and body show at every distance", reason="; ".join(problems))
    cat.get_action(action)
    stored = {r.shot_type: r for r in cat.list_action_images(action)}
    versions = {shot: None if based_on is None else
                check_unchanged(f"the {SHOT_LABELS[shot]} shot of {action!r}", stored.get(shot), based_on.get(shot))
                for shot in SHOT_TYPES}
    return [cat.set_action_image(action, shot, d["pose"], d["pose_mask"], d["face_mask"],
                                 placement=stored[shot].placement if shot in stored else None,
                                 keypoints=d["keypoints"], expected_version=versions[shot])
            for shot, d in drawn.items()]
