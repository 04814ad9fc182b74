"""Poses: the action library, openpose drawings, the masks that go with them, and placement.

ControlNet-openpose was trained on skeletons drawn by openpose's own `draw_bodypose`, so the
drawing here reproduces it exactly (same limb order, colours, ellipse sticks, OpenCV): a
skeleton that merely looks similar conditions the model worse.

Everything derives from one list of 18 keypoints, so the pose image, the region the person
may be painted in (`pose_mask`) and the face region (`face_mask`) always agree with each
other. Poses are authored once in *body* coordinates (a standing person is one unit tall:
y = 0 at the top of the head, y = 1 at the soles, which is also the ground line; x = 0 on
the body's axis) and framed into *pixel* coordinates per shot type.

Pure numpy + Pillow + OpenCV: no torch, no Streamlit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

import cv2
import numpy as np
from PIL import Image

from engine.errors import InvalidInput

# --- keypoints ----------------------------------------------------------------------------

KEYPOINT_NAMES = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
                  "l_wrist", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
                  "r_eye", "l_eye", "r_ear", "l_ear")
_K = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
_FACE = tuple(_K[n] for n in ("nose", "r_eye", "l_eye", "r_ear", "l_ear"))
SHOT_TYPES = ("CLS", "MES", "FUS")  # close (to the hips), medium (to the knees), far (whole body)

# openpose's draw_bodypose tables, 1-based as in the original; the colour of limb i is
# COLORS[i] and the colour of keypoint i is COLORS[i] too.
LIMB_SEQ = ((2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12),
            (12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18))
COLORS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
          (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
          (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))

# --- the action library -------------------------------------------------------------------

@dataclass(frozen=True)
class Action:
    name: str
    description: str  # goes into the diffusion prompt and ranks actions by meaning
    keypoints: tuple  # 18 (x, y) in body coordinates, or None for a hidden point


# A relaxed standing person, facing the camera (so the person's right side is on the image's
# left). Proportions: head 1/8 of the height, shoulders 0.24 wide, hips at half height.
_STANDING = {
    "nose": (0.0, 0.085), "neck": (0.0, 0.18),
    "r_shoulder": (-0.12, 0.185), "r_elbow": (-0.15, 0.37), "r_wrist": (-0.165, 0.52),
    "l_shoulder": (0.12, 0.185), "l_elbow": (0.15, 0.37), "l_wrist": (0.165, 0.52),
    "r_hip": (-0.075, 0.50), "r_knee": (-0.07, 0.72), "r_ankle": (-0.07, 0.955),
    "l_hip": (0.075, 0.50), "l_knee": (0.07, 0.72), "l_ankle": (0.07, 0.955),
    "r_eye": (-0.022, 0.065), "l_eye": (0.022, 0.065),
    "r_ear": (-0.048, 0.072), "l_ear": (0.048, 0.072),
}


def _pose(shift_y: float = 0.0, **changes: tuple) -> tuple:
    """The standing pose with some joints moved, then shifted down (a sitting body's feet must
    still reach the ground line)."""
    unknown = set(changes) - set(_STANDING)
    assert not unknown, unknown
    joints = {**_STANDING, **changes}
    return tuple(None if joints[n] is None else (joints[n][0], round(joints[n][1] + shift_y, 4))
                 for n in KEYPOINT_NAMES)


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("standing",
            "standing relaxed, arms by the sides, facing the camera, full body upright",
            _pose()),
    Action("waving",
            "waving hello at the camera with one hand raised beside the head, friendly greeting",
            _pose(r_elbow=(-0.29, 0.19), r_wrist=(-0.31, 0.04))),
    Action("pointing",
            "pointing at something to the side with one arm stretched out, showing the view",
            _pose(r_elbow=(-0.30, 0.165), r_wrist=(-0.445, 0.145))),
    Action("sitting",
            "sitting down on a low wall or bench, thighs horizontal, lower legs vertical, "
            "hands resting on the knees, relaxed seated pose",
            # seen from the front the thighs point at the camera, so they look short
            _pose(0.165, r_elbow=(-0.165, 0.37), r_wrist=(-0.14, 0.52),
                  l_elbow=(0.165, 0.37), l_wrist=(0.14, 0.52),
                  r_hip=(-0.08, 0.50), r_knee=(-0.135, 0.575), r_ankle=(-0.115, 0.79),
                  l_hip=(0.08, 0.50), l_knee=(0.135, 0.575), l_ankle=(0.115, 0.79))),
    Action("arms_crossed",
            "standing confidently with arms folded across the chest, crossed arms",
            _pose(r_elbow=(-0.16, 0.35), r_wrist=(0.09, 0.31),
                  l_elbow=(0.16, 0.35), l_wrist=(-0.09, 0.33))),
    Action("selfie",
            "taking a selfie photo of oneself, holding a smartphone up at arm's length "
            "in front of the face, smiling at the phone",
            _pose(l_elbow=(0.21, 0.11), l_wrist=(0.27, 0.035))),
    Action("hands_on_hips",
            "standing proudly with both hands on the hips, elbows out to the sides",
            _pose(r_elbow=(-0.25, 0.35), r_wrist=(-0.115, 0.48),
                  l_elbow=(0.25, 0.35), l_wrist=(0.115, 0.48))),
    Action("arms_raised",
            "celebrating with both arms raised up high in a V, cheering with joy",
            _pose(r_elbow=(-0.21, 0.02), r_wrist=(-0.27, -0.125),
                  l_elbow=(0.21, 0.02), l_wrist=(0.27, -0.125))),
)}


def get_action(name: Any) -> Action:
    if isinstance(name, Action):
        return name
    if not isinstance(name, str) or name not in ACTIONS:
        raise InvalidInput("action", name, ACTIONS)
    return ACTIONS[name]


# --- checks -------------------------------------------------------------------------------

def _check_size(size: Any, field: str = "size") -> tuple[int, int]:
    ok = (isinstance(size, (tuple, list)) and len(size) == 2 and
          all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 8 <= v <= 16384
              for v in size))
    if not ok:
        raise InvalidInput(field, size, "(width, height), whole numbers from 8 to 16384")
    return int(size[0]), int(size[1])


def _check_keypoints(keypoints: Any, field: str = "keypoints") -> list:
    """Accept tuples or the plain [x, y] lists the catalog stores as JSON."""
    accepted = "18 points, each (x, y) or None"
    if not isinstance(keypoints, (list, tuple)) or len(keypoints) != len(KEYPOINT_NAMES):
        raise InvalidInput(field, keypoints, accepted)
    out = []
    for p in keypoints:
        if p is None:
            out.append(None)
            continue
        try:
            x, y = (float(v) for v in p)
        except (TypeError, ValueError):
            raise InvalidInput(field, keypoints, accepted) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidInput(field, keypoints, accepted, reason="coordinates must be finite")
        out.append((x, y))
    return out


def check_shot_type(value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in SHOT_TYPES:
        raise InvalidInput("action_shot_type", value, SHOT_TYPES)
    return value.upper()


# --- rendering ----------------------------------------------------------------------------

def _stroke_scale(size: tuple[int, int]) -> float:
    """ControlNet's annotator draws on an image whose short side is 512 px; keeping the
    sticks' width in that proportion makes a big canvas look like what the model saw."""
    return max(1.0, min(size) / 512.0)


def render_pose(keypoints_px: Sequence, size: tuple[int, int]) -> Image.Image:
    """Draw the skeleton the way controlnet_aux's `draw_bodypose` (ControlNet 1.1) does:
    sticks as ellipses at 60 % colour, then joints as full-colour discs on top."""
    w, h = _check_size(size)
    kps = _check_keypoints(keypoints_px)
    scale = _stroke_scale((w, h))
    stickwidth = int(round(4 * scale))
    radius = int(round(4 * scale))
    canvas = np.zeros((h, w, 3), dtype=np.uint8)
    for (a, b), color in zip(LIMB_SEQ, COLORS):
        p, q = kps[a - 1], kps[b - 1]
        if p is None or q is None:
            continue
        xs, ys = np.array([p[0], q[0]]), np.array([p[1], q[1]])
        length = float(np.hypot(xs[0] - xs[1], ys[0] - ys[1]))
        angle = math.degrees(math.atan2(ys[0] - ys[1], xs[0] - xs[1]))
        polygon = cv2.ellipse2Poly((int(np.mean(xs)), int(np.mean(ys))),
                                   (int(length / 2), stickwidth), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, [int(float(c) * 0.6) for c in color])
    for p, color in zip(kps, COLORS):
        if p is not None:
            cv2.circle(canvas, (int(p[0]), int(p[1])), radius, color, thickness=-1)
    return Image.fromarray(canvas, "RGB")


# --- body geometry shared by framing and masks -------------------------------------------

def _mid(a, b):
    return None if a is None or b is None else ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)


def _dist(a, b):
    return None if a is None or b is None else math.hypot(a[0] - b[0], a[1] - b[1])


def _median(values: Iterable, fallback: float) -> float:
    vals = [v for v in values if v]
    return float(np.median(vals)) if vals else fallback


def _body_unit(kps: list, fallback: float = 1.0) -> float:
    """How tall the person would be standing, in the keypoints' units: the yardstick for limb
    widths, head size and margins. Several body measures vote so that one foreshortened or
    hidden part does not throw it off."""
    k = lambda n: kps[_K[n]]  # noqa: E731
    return _median([
        (_dist(k("neck"), _mid(k("r_hip"), k("l_hip"))) or 0) / 0.32,
        (_dist(k("r_shoulder"), k("l_shoulder")) or 0) / 0.24,
        (_dist(k("nose"), k("neck")) or 0) / 0.095,
        (_dist(k("r_ear"), k("l_ear")) or 0) / 0.096,
    ], fallback)


def _head_unit(kps: list, fallback: float) -> float:
    """The same yardstick measured on the head alone, so the face region follows the head
    even when the framing crops the body."""
    k = lambda n: kps[_K[n]]  # noqa: E731
    unit = _median([
        (_dist(k("nose"), k("neck")) or 0) / 0.095,
        (_dist(k("r_ear"), k("l_ear")) or 0) / 0.096,
        (_dist(k("r_eye"), k("l_eye")) or 0) / 0.044,
    ], fallback)
    return min(max(unit, 0.7 * fallback), 1.4 * fallback)


def _head_circle(kps: list, unit: float):
    """(cx, cy, r) of a disc covering the whole head including hair, or None if no head point
    is known. The face keypoints sit slightly below the head's centre."""
    face = [kps[i] for i in _FACE if kps[i] is not None]
    if face:
        cx = sum(p[0] for p in face) / len(face)
        cy = sum(p[1] for p in face) / len(face) - 0.01 * unit
    elif kps[_K["neck"]] is not None:
        cx, cy = kps[_K["neck"]][0], kps[_K["neck"]][1] - 0.11 * unit
    else:
        return None
    return cx, cy, 0.078 * unit


# --- framing ------------------------------------------------------------------------------

# How far below the top of the head the frame's bottom edge falls, in standing heights:
# a close shot ends just below the hips, a medium one just below the knees.
_SHOT_DEPTH = {"CLS": 0.56, "MES": 0.80}
_HAND = 0.06     # room beyond a wrist for the hand, in standing heights
_MARGIN = 0.03   # breathing room around the body in a framed shot
_FUS_HEIGHT = 1.09  # a standing person fills 1/1.09 of a far shot's height


def frame_pose(body_keypoints: Sequence, shot_type: str,
               size: tuple[int, int] = (512, 512)) -> list:
    """Body → pixel keypoints for one shot. Close and medium shots are cut below the hips /
    knees and zoom so the head-to-cut span fills the height (raised hands stay in frame);
    a far shot keeps a standing person's scale so every action looks the same size, stands
    them on the bottom edge, and zooms out only if the pose would not fit. Points that land
    off the canvas become None, exactly as a detector would not see them."""
    shot = check_shot_type(shot_type)
    w, h = _check_size(size)
    kps = _check_keypoints(body_keypoints, "body_keypoints")
    pts = [p for p in kps if p is not None]
    if not pts:
        raise InvalidInput("body_keypoints", body_keypoints, "at least one visible point")
    head = _head_circle(kps, 1.0)
    head_top = head[1] - head[2] if head else min(p[1] for p in pts)
    top = min([head_top] + [p[1] - _HAND for p in pts]) - _MARGIN

    if shot == "FUS":
        ground = max([1.0] + [p[1] + 0.045 for p in pts]) + _MARGIN
        xs = [p[0] for p in pts] + ([head[0] - head[2], head[0] + head[2]] if head else [])
        span_x = max(xs) - min(xs) + 2 * (_HAND + _MARGIN)
        scale = min(h / max(_FUS_HEIGHT, ground - top), w / span_x)
        y0 = ground - h / scale
        inside = pts
    else:
        cut = head_top + _SHOT_DEPTH[shot]
        scale = h / (cut - top)
        y0 = top
        inside = [p for p in pts if top <= p[1] <= cut] or pts
    xs = [p[0] for p in inside] + ([head[0] - head[2], head[0] + head[2]] if head else [])
    cx = (min(xs) + max(xs)) / 2

    out = []
    for p in kps:
        if p is None:
            out.append(None)
            continue
        px, py = w / 2 + (p[0] - cx) * scale, (p[1] - y0) * scale
        out.append((round(px, 2), round(py, 2)) if 0 <= px < w and 0 <= py < h else None)
    return out


def to_body(keypoints_px: Sequence, standing_height_px: float) -> list:
    """Pixel → body keypoints, the inverse of `frame_pose` for skeletons that come from a
    picture (a curator's clicks, a photo), so they can be framed for every shot like the
    built-in poses. The scale is measured on the body itself (`standing_height_px` only when
    nothing can be measured); the feet go on the ground line when they are seen, else the
    head goes where a standing person's is, so a half-body photo still frames as a person."""
    kps = _check_keypoints(keypoints_px)
    pts = [p for p in kps if p is not None]
    if not pts:
        raise InvalidInput("keypoints", keypoints_px, "at least one visible point")
    unit = _body_unit(kps, fallback=float(standing_height_px))
    k = lambda n: kps[_K[n]]  # noqa: E731
    ankles = [p[1] for p in (k("r_ankle"), k("l_ankle")) if p is not None]
    if ankles:
        y0 = max(ankles) - _STANDING["r_ankle"][1] * unit
    elif k("nose") is not None:
        y0 = k("nose")[1] - _STANDING["nose"][1] * unit
    elif k("neck") is not None:
        y0 = k("neck")[1] - _STANDING["neck"][1] * unit
    else:
        y0 = min(p[1] for p in pts)
    x0 = k("neck")[0] if k("neck") is not None else sum(p[0] for p in pts) / len(pts)
    return [None if p is None else (round((p[0] - x0) / unit, 4), round((p[1] - y0) / unit, 4))
            for p in kps]


# --- masks --------------------------------------------------------------------------------

# Limb chains as (parent, joint, child): when a child fell off the canvas, the limb is
# continued so the mask still reaches the canvas edge — arms in the parent→joint direction,
# legs and the trunk straight down, as they hang whether the person stands or sits.
_CHAINS = (("neck", "r_shoulder", "r_elbow"), ("r_shoulder", "r_elbow", "r_wrist"),
           ("neck", "l_shoulder", "l_elbow"), ("l_shoulder", "l_elbow", "l_wrist"),
           (None, "neck", "r_hip"), (None, "neck", "l_hip"),
           (None, "r_hip", "r_knee"), (None, "r_knee", "r_ankle"),
           (None, "l_hip", "l_knee"), (None, "l_knee", "l_ankle"))
_LIMB_WIDTH = {"arm": 0.075, "leg": 0.10}
_ARMS = (("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"),
         ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"))
_LEGS = (("r_hip", "r_knee"), ("r_knee", "r_ankle"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"))


def _ipt(p) -> tuple[int, int]:
    return int(round(p[0])), int(round(p[1]))


def _off_canvas(p, size) -> bool:
    return not (0 <= p[0] < size[0] and 0 <= p[1] < size[1])


def _fill_small_holes(m: np.ndarray, max_area: float) -> None:
    """Close pinholes, e.g. between an arm on the hip and the waist: the inpainter would
    otherwise have to keep a few pixels of scenery inside the body."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((m == 0).astype(np.uint8), 4)
    for i in range(1, count):
        x, y, bw, bh, area = stats[i]
        touches_edge = x == 0 or y == 0 or x + bw == m.shape[1] or y + bh == m.shape[0]
        if not touches_edge and area <= max_area:
            m[labels == i] = 255


def pose_mask(keypoints_px: Sequence, size: tuple[int, int], margin: int | None = None) -> Image.Image:
    """Where a person in this pose may be painted. Generous on purpose: clothes, hair, hands
    and feet stick out past the skeleton, and an inpainting mask that is too tight forces the
    model to squeeze the body into it."""
    w, h = _check_size(size)
    kps = _check_keypoints(keypoints_px)
    unit = _body_unit(kps, fallback=min(w, h) / 2)
    k = lambda n: kps[_K[n]]  # noqa: E731
    m = np.zeros((h, w), dtype=np.uint8)

    def stick(a, b, width):
        cv2.line(m, _ipt(a), _ipt(b), 255, max(1, int(round(width * unit))))

    for a, b in _ARMS + _LEGS:
        if k(a) is not None and k(b) is not None:
            stick(k(a), k(b), _LIMB_WIDTH["arm" if (a, b) in _ARMS else "leg"])
    for parent, joint, child in _CHAINS:  # limbs leaving the frame
        j = k(joint)
        if j is None or k(child) is not None:
            continue
        if parent is None:
            end = (j[0], j[1] + 0.3 * unit)
        elif k(parent) is not None and _dist(k(parent), j) > 0:
            p, d = k(parent), _dist(k(parent), j)
            end = (j[0] + (j[0] - p[0]) / d * 0.3 * unit, j[1] + (j[1] - p[1]) / d * 0.3 * unit)
        else:
            continue
        if _off_canvas(end, (w, h)):
            stick(j, end, _LIMB_WIDTH["arm" if "shoulder" in joint or "elbow" in joint else "leg"])
    for elbow, wrist in (("r_elbow", "r_wrist"), ("l_elbow", "l_wrist")):  # hands
        e, r = k(elbow), k(wrist)
        if r is not None:
            d = _dist(e, r) if e is not None else 0
            hand = r if not d else (r[0] + (r[0] - e[0]) / d * _HAND * unit,
                                    r[1] + (r[1] - e[1]) / d * _HAND * unit)
            stick(r, hand, 0.07)
            cv2.circle(m, _ipt(hand), int(round(0.04 * unit)), 255, -1)
    for ankle in ("r_ankle", "l_ankle"):  # feet
        if k(ankle) is not None:
            a = k(ankle)
            cv2.ellipse(m, _ipt((a[0], a[1] + 0.02 * unit)),
                        (int(round(0.045 * unit)), int(round(0.035 * unit))), 0, 0, 360, 255, -1)

    corners = [k("r_shoulder"), k("l_shoulder"), k("l_hip"), k("r_hip")]
    known = [c for c in corners if c is not None]
    if k("neck") is not None:
        known.append(k("neck"))
    if len(known) >= 3:
        centre = np.mean(known, axis=0)
        # push the torso outline out a little: the skeleton runs through the joints' centres
        grown = [centre + (np.array(c) - centre) * 1.15 for c in known]
        cv2.fillConvexPoly(m, cv2.convexHull(np.array([_ipt(g) for g in grown], np.int32)), 255)
    for a, b in (("neck", "r_shoulder"), ("neck", "l_shoulder"), ("neck", "r_hip"),
                 ("neck", "l_hip"), ("r_hip", "l_hip"), ("r_shoulder", "l_shoulder")):
        if k(a) is not None and k(b) is not None:
            stick(k(a), k(b), 0.09)
    head = _head_circle(kps, _head_unit(kps, unit))
    if head is not None:
        if k("neck") is not None:
            stick((head[0], head[1]), k("neck"), 0.08)
        cv2.circle(m, _ipt(head[:2]), int(math.ceil(head[2])), 255, -1)
    for p in kps:  # every visible joint, however odd the pose
        if p is not None:
            cv2.circle(m, _ipt(p), max(2, int(round(0.03 * unit))), 255, -1)

    _fill_small_holes(m, (0.1 * unit) ** 2)
    margin = max(2, int(round(0.03 * unit))) if margin is None else int(margin)
    if margin < 0:
        raise InvalidInput("margin", margin, "a whole number of pixels, 0 or more")
    if margin:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
        m = cv2.dilate(m, kernel)
    return Image.fromarray(m, "L")


def face_mask(keypoints_px: Sequence, size: tuple[int, int]) -> Image.Image:
    """The region the face pass repaints: an upright ellipse around the head, cut to the pose
    mask because the face pass may only paint where the body pass already put a person.
    All black when the head is not in the picture."""
    w, h = _check_size(size)
    kps = _check_keypoints(keypoints_px)
    m = np.zeros((h, w), dtype=np.uint8)
    body = _body_unit(kps, fallback=min(w, h) / 2)
    head = _head_circle(kps, _head_unit(kps, body))
    if head is not None:
        unit = head[2] / 0.078
        axes = (max(1, int(round(0.058 * unit))), max(1, int(round(0.075 * unit))))
        cv2.ellipse(m, _ipt((head[0], head[1] + 0.008 * unit)), axes, 0, 0, 360, 255, -1)
        m &= np.asarray(pose_mask(kps, (w, h)))
    return Image.fromarray(m, "L")


def face_box(keypoints_px: Sequence, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), right/bottom exclusive as in PIL, or None when no face is visible;
    the face pass crops this box to work on the face at a higher resolution."""
    return face_mask(keypoints_px, size).getbbox()


def build_action_images(action: Action | str, shot_type: str,
                        size: tuple[int, int] = (512, 512)) -> dict:
    """Everything the catalog stores for one action at one shot distance."""
    act = get_action(action)
    size = _check_size(size)
    kps = frame_pose(act.keypoints, shot_type, size)
    return {"pose": render_pose(kps, size), "pose_mask": pose_mask(kps, size),
            "face_mask": face_mask(kps, size), "keypoints": kps}


# --- placement on a POI photo -------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """Where the action canvas goes on a POI photo, in fractions of that photo so one setting
    fits every size and aspect ratio: `x` is the canvas's horizontal centre, `bottom` where
    its bottom edge sits (past 1 lets the legs run out of the photo), `height` the canvas's
    height as a fraction of the photo's height."""
    x: float = 0.5
    bottom: float = 1.0
    height: float = 0.8

    def to_dict(self) -> dict:
        return asdict(self)


PLACEMENT_RANGES = {"x": (0.0, 1.0, "a number from 0 to 1"),
                    "bottom": (0.0, 1.5, "a number greater than 0, up to 1.5"),
                    "height": (0.05, 2.0, "a number greater than 0.05, up to 2")}
DEFAULT_PLACEMENT = {"CLS": Placement(0.5, 1.0, 0.95), "MES": Placement(0.5, 1.0, 0.8),
                     "FUS": Placement(0.5, 0.97, 0.5)}


def _check_number(field: str, value: Any, lo: float, hi: float, accepted: str,
                  low_inclusive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInput(field, value, accepted, reason="must be a number")
    v = float(value)
    if not math.isfinite(v) or v > hi or v < lo or (v == lo and not low_inclusive):
        raise InvalidInput(field, value, accepted, reason="out of range")
    return v


def validate_placement(p: Any) -> Placement:
    if not isinstance(p, Placement):
        raise InvalidInput("placement", p, "a Placement(x, bottom, height)")
    for name, (lo, hi, accepted) in PLACEMENT_RANGES.items():
        _check_number(f"placement.{name}", getattr(p, name), lo, hi, accepted, name == "x")
    return p


def placement_from_dict(d: Mapping | None, default: Placement | None = None) -> Placement:
    """Read the catalog's {x, bottom, height}; missing keys come from `default` (typically
    the shot type's DEFAULT_PLACEMENT), and None means the default itself."""
    if d is None and default is not None:
        return validate_placement(default)
    if not isinstance(d, Mapping):
        raise InvalidInput("placement", d, "an object {x, bottom, height}")
    values = {}
    for name, (_, _, accepted) in PLACEMENT_RANGES.items():
        if name in d:
            values[name] = d[name]
        elif default is not None:
            values[name] = getattr(default, name)
        else:
            raise InvalidInput(f"placement.{name}", None, accepted, reason="missing")
    for name in values:  # type-check before the dataclass stores anything odd
        lo, hi, accepted = PLACEMENT_RANGES[name]
        values[name] = _check_number(f"placement.{name}", values[name], lo, hi, accepted, name == "x")
    return Placement(**values)


def place_action(poi_size: tuple[int, int], action_size: tuple[int, int],
                 placement: Placement) -> tuple[int, int, int, int]:
    """(x0, y0, w, h) of the action canvas in POI pixels, keeping the canvas's aspect ratio;
    the box may reach past the POI's edges."""
    pw, ph = _check_size(poi_size, "poi_size")
    aw, ah = _check_size(action_size, "action_size")
    p = validate_placement(placement)
    h = max(1, int(round(p.height * ph)))
    w = max(1, int(round(h * aw / ah)))
    return int(round(p.x * pw - w / 2)), int(round(p.bottom * ph - h)), w, h


def compose_on_poi(poi_size: tuple[int, int], action_images: Mapping,
                   placement: Placement) -> dict:
    """Lay one action's images over a POI photo of any size.

    Masks are resized with nearest-neighbour so they stay strictly 0/255 and, since both
    are sampled at the same points, the face mask stays inside the pose mask. The skeleton
    is redrawn at the POI's own resolution from the keypoints (when given) instead of being
    stretched, so its sticks keep the widths ControlNet expects.
    Returns pose, pose_mask, face_mask, keypoints (POI pixels, None off the photo) and box.
    """
    pw, ph = _check_size(poi_size, "poi_size")
    pose_img = action_images.get("pose") if isinstance(action_images, Mapping) else None
    if not isinstance(pose_img, Image.Image):
        raise InvalidInput("action_images", action_images,
                           "a dict with pose, pose_mask and face_mask images")
    x0, y0, w, h = place_action((pw, ph), pose_img.size, placement)
    aw, ah = pose_img.size

    def lay(img: Image.Image, mode: str, resample) -> Image.Image:
        canvas = Image.new(mode, (pw, ph), 0)
        canvas.paste(img.convert(mode).resize((w, h), resample), (x0, y0))
        return canvas

    out = {"box": (x0, y0, w, h)}
    for name in ("pose_mask", "face_mask"):
        m = action_images.get(name)
        if not isinstance(m, Image.Image) or m.size != pose_img.size:
            raise InvalidInput(name, m, f"an image of the pose's size {aw}x{ah}")
        binary = m.convert("L").point(lambda v: 255 if v >= 128 else 0)
        out[name] = lay(binary, "L", Image.NEAREST)
    if action_images.get("keypoints") is not None:
        kps = []
        for p in _check_keypoints(action_images["keypoints"]):
            q = None if p is None else (x0 + p[0] * w / aw, y0 + p[1] * h / ah)
            kps.append(None if q is None or _off_canvas(q, (pw, ph)) else q)
        out["pose"] = render_pose(kps, (pw, ph))
        out["keypoints"] = kps
    else:
        out["pose"] = lay(pose_img, "RGB", Image.BILINEAR)
        out["keypoints"] = None
    return out


def preview_on_poi(poi: Image.Image, placed: Mapping) -> Image.Image:
    """What a curator needs to judge a placement: the photo, the person's area tinted, the
    face area tinted differently, and the skeleton on top."""
    base = poi.convert("RGB")
    body = Image.new("RGB", base.size, (70, 110, 255))
    face = Image.new("RGB", base.size, (255, 80, 80))
    out = Image.composite(Image.blend(base, body, 0.45), base, placed["pose_mask"])
    out = Image.composite(Image.blend(base, face, 0.55), out, placed["face_mask"])
    skeleton = placed["pose"].convert("RGB")
    drawn = skeleton.convert("L").point(lambda v: 255 if v > 0 else 0)
    return Image.composite(skeleton, out, drawn)
