"""Poses: openpose-faithful drawings, masks that agree with them, framing and placement."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from engine import poses
from engine.errors import InvalidInput
from engine.poses import (ACTIONS, COLORS, DEFAULT_PLACEMENT, KEYPOINT_NAMES, SHOT_TYPES, Placement,
                          build_action_images, compose_on_poi, face_box, face_mask, frame_pose,
                          place_action, placement_from_dict, pose_mask, render_pose,
                          validate_placement)

REQUIRED_ACTIONS = ("standing", "waving", "pointing", "sitting", "arms_crossed", "selfie")
ALL_COMBOS = list(itertools.product(sorted(ACTIONS), SHOT_TYPES))
K = {n: i for i, n in enumerate(KEYPOINT_NAMES)}


@pytest.fixture(scope="module")
def built():
    return {(a, s): build_action_images(a, s) for a, s in ALL_COMBOS}


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


def _assert_binary(mask: Image.Image):
    assert mask.mode == "L"
    assert set(np.unique(_arr(mask))) <= {0, 255}


# --- library ------------------------------------------------------------------------------

def test_keypoint_names_follow_openpose_order():
    assert len(KEYPOINT_NAMES) == 18
    assert KEYPOINT_NAMES[:2] == ("nose", "neck")
    assert KEYPOINT_NAMES[8] == "r_hip" and KEYPOINT_NAMES[17] == "l_ear"


def test_library_has_the_required_actions_each_distinct_and_described():
    for name in REQUIRED_ACTIONS:
        assert name in ACTIONS
    for name, action in ACTIONS.items():
        assert action.name == name
        assert len(action.keypoints) == 18 and all(p is not None for p in action.keypoints)
        assert len(action.description.split()) >= 6
    shapes = [np.array(a.keypoints) for a in ACTIONS.values()]
    for a, b in itertools.combinations(shapes, 2):
        assert np.abs(a - b).max() > 0.05
    assert "selfie" in ACTIONS["selfie"].description


def test_actions_are_frozen():
    with pytest.raises(Exception):
        ACTIONS["standing"].name = "x"


def test_standing_body_has_human_proportions():
    k = ACTIONS["standing"].keypoints
    shoulders = k[K["l_shoulder"]][0] - k[K["r_shoulder"]][0]
    assert 0.2 <= shoulders <= 0.3
    assert k[K["nose"]][1] < 0.125 < k[K["neck"]][1]          # head is the top eighth
    assert 0.45 <= k[K["r_hip"]][1] <= 0.55                     # hips near half height
    assert 0.93 <= k[K["r_ankle"]][1] <= 1.0                    # feet on the ground line
    assert k[K["r_shoulder"]][0] < 0 < k[K["l_shoulder"]][0]    # facing the camera


def test_sitting_pose_is_shorter_than_standing():
    def height(action):
        ys = [p[1] for p in ACTIONS[action].keypoints]
        return max(ys) - min(ys)
    assert height("sitting") < 0.85 * height("standing")
    sit = ACTIONS["sitting"].keypoints
    hip, knee, ankle = sit[K["r_hip"]], sit[K["r_knee"]], sit[K["r_ankle"]]
    assert knee[1] - hip[1] < 0.5 * (ankle[1] - knee[1])        # thighs foreshortened, shins down


def test_waving_and_selfie_raise_a_hand_above_the_shoulders():
    for name in ("waving", "selfie", "arms_raised"):
        k = ACTIONS[name].keypoints
        assert min(k[K["r_wrist"]][1], k[K["l_wrist"]][1]) < k[K["neck"]][1]
    k = ACTIONS["standing"].keypoints
    assert min(k[K["r_wrist"]][1], k[K["l_wrist"]][1]) > k[K["r_hip"]][1] - 0.05


def test_get_action_rejects_unknown_names():
    assert poses.get_action("waving") is ACTIONS["waving"]
    with pytest.raises(InvalidInput) as e:
        poses.get_action("moonwalk")
    assert e.value.field == "action"


# --- rendering ----------------------------------------------------------------------------

def test_rendered_pose_uses_openpose_colours_on_black():
    kps = frame_pose(ACTIONS["standing"].keypoints, "FUS")
    img = render_pose(kps, (512, 512))
    assert img.mode == "RGB" and img.size == (512, 512)
    allowed = {(0, 0, 0)} | {tuple(c) for c in COLORS} | \
              {tuple(int(v * 0.6) for v in c) for c in COLORS}
    present = {tuple(c) for c in _arr(img).reshape(-1, 3)}
    assert present <= allowed
    assert {tuple(c) for c in COLORS} <= present                 # every joint drawn
    assert tuple(_arr(img)[0, 0]) == (0, 0, 0)


def test_render_draws_joint_colour_at_each_keypoint():
    kps = frame_pose(ACTIONS["pointing"].keypoints, "FUS")
    img = _arr(render_pose(kps, (512, 512)))
    for i, p in enumerate(kps):
        if p is not None:
            assert tuple(img[int(p[1]), int(p[0])]) == COLORS[i]


def test_render_skips_limbs_with_a_missing_end():
    kps = [None] * 18
    kps[K["neck"]] = (100.0, 100.0)
    kps[K["r_shoulder"]] = (60.0, 100.0)
    img = _arr(render_pose(kps, (200, 200)))
    limb_colour = tuple(int(v * 0.6) for v in COLORS[0])       # neck→r_shoulder is limb 0
    assert tuple(img[100, 80]) == limb_colour
    assert not img[150:].any()                                   # nothing else drawn


def test_render_thickens_sticks_on_big_canvases():
    small = frame_pose(ACTIONS["standing"].keypoints, "FUS", (512, 512))
    big = [None if p is None else (p[0] * 2, p[1] * 2) for p in small]
    ink_small = (_arr(render_pose(small, (512, 512))).sum(2) > 0).sum()
    ink_big = (_arr(render_pose(big, (1024, 1024))).sum(2) > 0).sum()
    assert ink_big > 3.2 * ink_small


def test_render_rejects_malformed_keypoints():
    with pytest.raises(InvalidInput) as e:
        render_pose([(1, 2)] * 5, (64, 64))
    assert e.value.field == "keypoints"
    with pytest.raises(InvalidInput):
        render_pose([None] * 18, (0, 64))


# --- framing and masks -------------------------------------------------------------------

@pytest.mark.parametrize("action,shot", ALL_COMBOS)
def test_every_action_and_shot_gives_consistent_images(built, action, shot):
    b = built[(action, shot)]
    assert b["pose"].mode == "RGB" and b["pose"].size == (512, 512)
    for name in ("pose_mask", "face_mask"):
        assert b[name].size == b["pose"].size
        _assert_binary(b[name])
    pm, fm = _arr(b["pose_mask"]) > 0, _arr(b["face_mask"]) > 0
    assert pm.any() and fm.any()
    assert not (fm & ~pm).any()                                  # face strictly inside pose
    assert pm.mean() < 0.9                                       # not the whole canvas
    for p in b["keypoints"]:
        if p is not None:
            assert pm[int(p[1]), int(p[0])]
    assert _arr(b["pose"])[~pm].max() == 0                       # no skeleton outside the mask


def test_close_shot_crops_legs_and_far_shot_keeps_them():
    for action in ACTIONS:
        cls = frame_pose(ACTIONS[action].keypoints, "CLS")
        fus = frame_pose(ACTIONS[action].keypoints, "FUS")
        assert cls[K["r_ankle"]] is None and cls[K["l_ankle"]] is None
        assert all(p is not None for p in fus)
        assert cls[K["nose"]] is not None and cls[K["neck"]] is not None


def test_medium_shot_ends_around_the_knees():
    mes = frame_pose(ACTIONS["standing"].keypoints, "MES")
    assert mes[K["r_knee"]] is not None and mes[K["r_ankle"]] is None
    assert mes[K["r_knee"]][1] > 0.8 * 512


def test_shots_zoom_in_from_far_to_close():
    def shoulders(shot):
        k = frame_pose(ACTIONS["standing"].keypoints, shot)
        return k[K["l_shoulder"]][0] - k[K["r_shoulder"]][0]
    assert shoulders("CLS") > shoulders("MES") > shoulders("FUS")


def test_far_shot_stands_the_person_on_the_bottom_and_centres_them():
    k = frame_pose(ACTIONS["standing"].keypoints, "FUS")
    assert 0.9 * 512 < k[K["r_ankle"]][1] < 512
    assert abs(k[K["neck"]][0] - 256) < 3
    sit = frame_pose(ACTIONS["sitting"].keypoints, "FUS")
    assert sit[K["nose"]][1] > k[K["nose"]][1] + 40             # seated head is lower
    assert abs(sit[K["r_ankle"]][1] - k[K["r_ankle"]][1]) < 20  # same ground


def test_framing_works_on_non_square_canvases():
    for size in ((384, 640), (640, 384)):
        b = build_action_images("waving", "MES", size)
        assert b["pose"].size == b["pose_mask"].size == b["face_mask"].size == size
        assert all(p is None or (0 <= p[0] < size[0] and 0 <= p[1] < size[1]) for p in b["keypoints"])


def test_unknown_shot_type_is_rejected_with_field_name():
    with pytest.raises(InvalidInput) as e:
        frame_pose(ACTIONS["standing"].keypoints, "XXL")
    assert e.value.field == "action_shot_type"
    assert "CLS" in e.value.accepted
    with pytest.raises(InvalidInput):
        build_action_images("standing", None)


def test_pose_mask_covers_the_head_above_the_eyes():
    k = frame_pose(ACTIONS["standing"].keypoints, "CLS")
    m = _arr(pose_mask(k, (512, 512))) > 0
    nose, neck = k[K["nose"]], k[K["neck"]]
    head_top = int(nose[1] - 1.0 * (neck[1] - nose[1]))         # top of the skull
    assert m[max(head_top, 0), int(nose[0])]


def test_pose_mask_margin_grows_the_region():
    k = frame_pose(ACTIONS["standing"].keypoints, "FUS")
    tight = (_arr(pose_mask(k, (512, 512), margin=0)) > 0).sum()
    loose = (_arr(pose_mask(k, (512, 512), margin=20)) > 0).sum()
    assert loose > tight
    with pytest.raises(InvalidInput):
        pose_mask(k, (512, 512), margin=-1)


def test_face_box_surrounds_the_face_keypoints():
    k = frame_pose(ACTIONS["selfie"].keypoints, "MES")
    x0, y0, x1, y1 = face_box(k, (512, 512))
    for name in ("nose", "r_eye", "l_eye"):
        x, y = k[K[name]]
        assert x0 <= x < x1 and y0 <= y < y1
    assert (x1 - x0) < 0.4 * 512 and (y1 - y0) < 0.4 * 512
    assert face_mask(k, (512, 512)).getbbox() == (x0, y0, x1, y1)


def test_face_mask_is_empty_without_a_head():
    kps = [None] * 18
    kps[K["r_hip"]], kps[K["r_knee"]] = (100.0, 100.0), (100.0, 180.0)
    assert face_box(kps, (256, 256)) is None
    assert _arr(pose_mask(kps, (256, 256))).any()


# --- placement ----------------------------------------------------------------------------

def test_default_placements_cover_every_shot_and_are_valid():
    assert set(DEFAULT_PLACEMENT) == set(SHOT_TYPES)
    for p in DEFAULT_PLACEMENT.values():
        assert validate_placement(p) is p


@pytest.mark.parametrize("field,bad", [("x", -0.1), ("x", 1.2), ("bottom", 0.0), ("bottom", 1.6),
                                       ("height", 0.05), ("height", 2.5), ("height", float("nan")),
                                       ("x", "middle"), ("bottom", True)])
def test_bad_placement_names_the_field(field, bad):
    values = {"x": 0.5, "bottom": 1.0, "height": 0.8, field: bad}
    with pytest.raises(InvalidInput) as e:
        validate_placement(Placement(**values))
    assert e.value.field == f"placement.{field}"
    assert e.value.accepted
    with pytest.raises(InvalidInput) as e:
        placement_from_dict(values)
    assert e.value.field == f"placement.{field}"


def test_placement_round_trips_through_a_dict():
    p = Placement(0.3, 1.1, 0.6)
    assert placement_from_dict(p.to_dict()) == p
    assert placement_from_dict({"x": 0.2}, default=DEFAULT_PLACEMENT["MES"]) == Placement(0.2, 1.0, 0.8)
    assert placement_from_dict(None, default=DEFAULT_PLACEMENT["FUS"]) == DEFAULT_PLACEMENT["FUS"]
    with pytest.raises(InvalidInput) as e:
        placement_from_dict({"x": 0.2})
    assert e.value.field in ("placement.bottom", "placement.height")
    with pytest.raises(InvalidInput):
        placement_from_dict("centre")


def test_place_action_keeps_aspect_and_may_overhang():
    assert place_action((1000, 500), (512, 512), Placement(0.5, 1.0, 0.8)) == (300, 100, 400, 400)
    x0, y0, w, h = place_action((768, 512), (512, 768), Placement(0.0, 1.2, 1.0))
    assert (w, h) == (341, 512) and x0 < 0 and y0 + h > 512


@pytest.mark.parametrize("poi_size", [(768, 512), (512, 768), (1000, 300)])
@pytest.mark.parametrize("action,shot", [("waving", "CLS"), ("selfie", "MES"), ("sitting", "FUS"),
                                         ("pointing", "FUS")])
def test_compose_on_poi_gives_poi_sized_binary_masks(built, poi_size, action, shot):
    out = compose_on_poi(poi_size, built[(action, shot)], DEFAULT_PLACEMENT[shot])
    assert out["pose"].mode == "RGB"
    for name in ("pose", "pose_mask", "face_mask"):
        assert out[name].size == poi_size
    for name in ("pose_mask", "face_mask"):
        _assert_binary(out[name])
    pm, fm = _arr(out["pose_mask"]) > 0, _arr(out["face_mask"]) > 0
    assert pm.any() and fm.any()
    assert not (fm & ~pm).any()
    x0, y0, w, h = out["box"]
    outside = np.ones(pm.shape, bool)
    outside[max(y0, 0):y0 + h, max(x0, 0):x0 + w] = False
    assert not pm[outside].any() and not _arr(out["pose"])[outside].any()
    for p in out["keypoints"]:
        if p is not None:
            assert 0 <= p[0] < poi_size[0] and 0 <= p[1] < poi_size[1]


def test_compose_clips_a_canvas_that_overhangs_the_poi(built):
    b = built[("standing", "FUS")]
    out = compose_on_poi((600, 400), b, Placement(0.0, 1.4, 1.0))
    assert out["box"][0] < 0 and out["box"][1] + out["box"][3] > 400
    assert _arr(out["pose_mask"]).any()
    assert out["keypoints"][K["r_ankle"]] is None                # feet below the photo


def test_compose_without_keypoints_resizes_the_drawing(built):
    b = dict(built[("waving", "MES")], keypoints=None)
    out = compose_on_poi((768, 512), b, DEFAULT_PLACEMENT["MES"])
    assert out["pose"].size == (768, 512) and _arr(out["pose"]).any()


def test_compose_rejects_mismatched_masks(built):
    b = dict(built[("waving", "MES")], face_mask=Image.new("L", (10, 10)))
    with pytest.raises(InvalidInput) as e:
        compose_on_poi((768, 512), b, DEFAULT_PLACEMENT["MES"])
    assert e.value.field == "face_mask"
