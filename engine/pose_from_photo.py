"""A pose from a photo of a real person, as the 18 OpenPose keypoints the editor works on.

MediaPipe Pose (`mediapipe==0.10.21`, installed by bin/setup from requirements-pose.txt):
its wheel carries the trained pose model itself, so nothing is fetched from a model hub at
run time, and it runs on a CPU in a fraction of a second (Apache 2.0). Later mediapipe
releases and the other small estimators (rtmlib, ultralytics) download their weights on
first use. Only `model_complexity=1` ships in the wheel.

MediaPipe guesses all 33 landmarks even when part of the body is outside the photo (a
half-body shot gets knees and ankles below the frame), each with a visibility score: only
landmarks it is fairly sure it sees, and that fall inside the photo, become keypoints; the
others are hidden joints the curator can show and place by hand.
"""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from engine.errors import InvalidInput, ModelError
from engine.poses import KEYPOINT_NAMES

# MediaPipe's landmark for each OpenPose keypoint, in KEYPOINT_NAMES order, left and right
# being the person's own in both; the neck (None) is the middle of the shoulders.
MEDIAPIPE_INDEX = (0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
MIN_VISIBILITY = 0.3  # on astronaut(): seen joints ≥ 0.32, invented knees and ankles ≤ 0.06
_SHOULDERS = (11, 12)
_WORK_SIDE = 1024  # the model looks at 256 px: a phone's 4000 px photo only costs time
_lock = threading.Lock()  # one Pose graph, not safe for two sessions at once
_pose = None


def _estimator():
    global _pose
    if _pose is None:
        try:
            from mediapipe.python.solutions.pose import Pose
        except ImportError as exc:
            raise ModelError("a pose from a photo needs mediapipe: run bin/setup "
                             f"(requirements-pose.txt) ({exc})") from None
        _pose = Pose(static_image_mode=True, model_complexity=1)
    return _pose


def find_pose(photo: Image.Image) -> list:
    """The person's 18 keypoints in the photo's pixels, None where a joint is not seen.

    Raises InvalidInput (field `photo`) when there is no person, or too little of one to
    measure: the shoulders set the skeleton's scale in every later step."""
    w, h = photo.size
    work = photo.convert("RGB")
    work.thumbnail((_WORK_SIDE, _WORK_SIDE))  # landmarks come back as fractions of the photo
    rgb = np.ascontiguousarray(np.asarray(work))
    with _lock:
        found = _estimator().process(rgb).pose_landmarks
    if found is None:
        raise InvalidInput("photo", f"{w}x{h} photo", "a photo of one person, head and shoulders "
                           "at least", reason="no person found in the photo")
    marks = found.landmark

    def seen(i):
        m = marks[i]
        x, y = m.x * w, m.y * h
        return (round(x, 2), round(y, 2)) if m.visibility >= MIN_VISIBILITY and 0 <= x < w and 0 <= y < h \
            else None

    if any(seen(i) is None for i in _SHOULDERS):
        raise InvalidInput("photo", f"{w}x{h} photo", "a photo of one person, head and shoulders "
                           "at least", reason="the person's shoulders are not both in the photo")
    kps = [None if i is None else seen(i) for i in MEDIAPIPE_INDEX]
    r, l = seen(12), seen(11)
    kps[KEYPOINT_NAMES.index("neck")] = (round((r[0] + l[0]) / 2, 2), round((r[1] + l[1]) / 2, 2))
    return kps
