"""The curators' skeleton and mask editor, without its page: keypoint edits, painted masks,
poses found in photos of real people, and which poses visitors may have."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine import pose_check, pose_edit, pose_masks, poses
from engine.catalog import Catalog
from engine.errors import Conflict, InvalidInput
from engine.pose_masks import ERASE, PAINT
from engine.poses import KEYPOINT_NAMES, SHOT_TYPES

K = {n: i for i, n in enumerate(KEYPOINT_NAMES)}


@pytest.fixture
def cat(tmp_path):
    c = Catalog(tmp_path / "catalog_db.json", tmp_path / "assets")
    c.add_action("greeting", "waving hello")
    return c


def _masks(cat, action, shot):
    rec = cat.get_action_image(action, shot)
    return cat.open_asset(rec.pose_mask, "L"), cat.open_asset(rec.face_mask, "L")


def _on(mask, xy) -> bool:
    return mask.getpixel((int(xy[0]), int(xy[1]))) == 255


def _strokes(size, boxes):
    """A canvas drawing: (x0, y0, x1, y1, colour) rectangles on a transparent picture."""
    rgba = np.zeros((size[1], size[0], 4), np.uint8)
    for x0, y0, x1, y1, colour in boxes:
        rgba[y0:y1, x0:x1] = (*colour, 255)
    return rgba


# --- one skeleton, three distances --------------------------------------------------------

@pytest.mark.parametrize("action", sorted(poses.ACTIONS))
def test_the_close_and_medium_shots_framed_from_the_far_one_match_the_library(action):
    drawn = pose_edit.draw_shots(pose_edit.from_builtin(action))
    for shot in SHOT_TYPES:
        want = poses.frame_pose(poses.ACTIONS[action].keypoints, shot)
        got = drawn[shot]["keypoints"]
        assert [p is None for p in got] == [p is None for p in want]
        assert max(abs(p[0] - q[0]) + abs(p[1] - q[1]) for p, q in zip(got, want) if p) < 0.5


def test_a_moved_joint_round_trips_through_the_catalog_and_redraws_the_masks(cat):
    start = pose_edit.from_builtin("standing")
    pose_edit.save_skeleton(cat, "greeting", start)
    spot = (150.0, 60.0)  # up and out to the person's right: a wave
    assert not _on(_masks(cat, "greeting", "FUS")[0], spot)
    moved = pose_edit.move(pose_edit.move(start, "r_wrist", spot), "r_elbow", (160.0, 120.0))
    saved = pose_edit.save_skeleton(cat, "greeting", moved)

    assert [r.shot_type for r in saved] == list(SHOT_TYPES)
    assert pose_edit.from_catalog(cat, "greeting") == moved
    assert _on(_masks(cat, "greeting", "FUS")[0], spot)
    drawn = pose_edit.draw_shots(moved)
    for shot in SHOT_TYPES:
        pmask, fmask = _masks(cat, "greeting", shot)
        assert np.array_equal(np.asarray(pmask), np.asarray(drawn[shot]["pose_mask"]))
        assert np.array_equal(np.asarray(fmask), np.asarray(drawn[shot]["face_mask"]))
        assert cat.get_action_image("greeting", shot).keypoints == drawn[shot]["keypoints"]
    mes = cat.get_action_image("greeting", "MES").keypoints
    assert mes[K["r_wrist"]][1] < mes[K["nose"]][1]  # the wave reached the medium shot too


def test_a_click_outside_the_canvas_lands_on_its_edge():
    moved = pose_edit.move(pose_edit.from_builtin("standing"), "l_wrist", (900, -5))
    assert moved[K["l_wrist"]] == [511.0, 0.0]


def test_hiding_a_joint_removes_it_from_the_drawing_and_showing_it_brings_it_back_near_the_body():
    start = pose_edit.from_builtin("pointing")
    hidden = pose_edit.hide(start, "r_wrist")
    assert hidden[K["r_wrist"]] is None
    assert not _on(pose_edit.draw_shots(hidden)["FUS"]["pose_mask"], start[K["r_wrist"]])
    shown = pose_edit.show(hidden, "r_wrist")
    standing = pose_edit.from_builtin("standing")
    dx, dy = (hidden[K["neck"]][i] - standing[K["neck"]][i] for i in (0, 1))
    assert shown[K["r_wrist"]] == pytest.approx([standing[K["r_wrist"]][0] + dx,
                                                 standing[K["r_wrist"]][1] + dy], abs=0.01)
    assert pose_edit.show(start, "nose") == start  # a shown joint stays where it is


def test_mirroring_swaps_the_persons_sides_and_twice_gives_the_pose_back():
    waving = pose_edit.from_builtin("waving")
    mirrored = pose_edit.mirror(waving)
    assert mirrored[K["l_wrist"]][1] == waving[K["r_wrist"]][1]  # the left hand waves now
    assert mirrored[K["l_wrist"]][0] == 511 - waving[K["r_wrist"]][0]
    assert mirrored[K["r_wrist"]][1] > mirrored[K["r_elbow"]][1]
    assert pose_edit.mirror(mirrored) == waving


def test_saving_a_skeleton_keeps_each_distances_placement(cat):
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("standing"))
    cat.update_placement("greeting", "MES", {"x": 0.3, "bottom": 1.0, "height": 0.7})
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("waving"))
    assert cat.get_action_image("greeting", "MES").placement == {"x": 0.3, "bottom": 1.0, "height": 0.7}
    assert cat.get_action_image("greeting", "CLS").placement is None


def test_a_skeleton_without_a_head_is_refused_and_changes_nothing(cat):
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("standing"))
    before = cat.list_action_images("greeting")
    headless = pose_edit.from_builtin("standing")
    for joint in ("nose", "neck", "r_eye", "l_eye", "r_ear", "l_ear"):
        headless = pose_edit.hide(headless, joint)
    with pytest.raises(InvalidInput, match="face mask is empty"):
        pose_edit.save_skeleton(cat, "greeting", headless)
    assert cat.list_action_images("greeting") == before
    with pytest.raises(InvalidInput, match="at least one joint"):
        pose_edit.draw_shots([None] * 18)


def test_a_skeleton_saved_over_someone_elses_drawing_is_refused_and_changes_nothing(cat):
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("standing"))
    mine = pose_edit.drawings(cat, "greeting")
    cat.update_placement("greeting", "FUS", {"x": 0.4, "bottom": 1.0, "height": 0.5})  # not a drawing
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("waving"), based_on=mine)

    mine = pose_edit.drawings(cat, "greeting")
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("pointing"))  # another curator
    theirs = cat.list_action_images("greeting")
    with pytest.raises(Conflict, match="changed meanwhile by someone else — reload"):
        pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("sitting"), based_on=mine)
    assert cat.list_action_images("greeting") == theirs


def test_a_new_pose_saved_by_two_curators_at_once_is_refused_the_second_time(cat):
    empty = pose_edit.drawings(cat, "greeting")
    assert empty == {"CLS": None, "MES": None, "FUS": None}
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("standing"), based_on=empty)
    with pytest.raises(Conflict, match="changed meanwhile"):
        pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("waving"), based_on=empty)


def test_the_editing_view_rings_the_selected_joint():
    kps = pose_edit.from_builtin("standing")
    x, y = kps[K["l_wrist"]]
    ring = np.asarray(pose_edit.editing_view(kps, "l_wrist"))[int(y) - 10, int(x)]
    plain = np.asarray(pose_edit.editing_view(kps))[int(y) - 10, int(x)]
    assert tuple(ring) == (255, 255, 255) and tuple(plain) != (255, 255, 255)


# --- masks by hand ------------------------------------------------------------------------

def test_painted_strokes_add_and_cut_and_the_result_is_binary():
    mask = Image.new("L", (100, 100), 0)
    mask.paste(255, (40, 40, 60, 60))
    strokes = _strokes((100, 100), [(0, 0, 10, 10, PAINT), (50, 50, 60, 60, ERASE)])
    strokes[0:10, 10:12] = (*PAINT, 90)          # an antialiased edge, mostly transparent
    strokes[20, 20] = (90, 200, 90, 255)         # a blend nearer the paint colour
    out = np.asarray(pose_masks.apply_strokes(mask, strokes))
    assert set(np.unique(out)) == {0, 255}
    assert out[5, 5] == 255 and out[55, 55] == 0 and out[45, 45] == 255
    assert out[5, 11] == 0 and out[20, 20] == 255


def test_strokes_from_a_canvas_drawn_at_twice_the_scale_land_in_place():
    mask = Image.new("L", (100, 100), 0)
    out = pose_masks.apply_strokes(mask, _strokes((200, 200), [(100, 0, 200, 100, PAINT)]))
    assert out.getbbox() == (50, 0, 100, 50)


def test_a_railing_cut_from_the_person_mask_is_saved_binary(cat):
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("standing"))
    pmask, fmask = _masks(cat, "greeting", "FUS")
    railing = (0, 300, 512, 330, ERASE)
    cut = pose_masks.apply_strokes(pmask, _strokes(pmask.size, [railing]))
    keypoints = cat.get_action_image("greeting", "FUS").keypoints
    pose_masks.save_masks(cat, "greeting", "FUS", cut, fmask)

    saved, _ = _masks(cat, "greeting", "FUS")
    rec = cat.get_action_image("greeting", "FUS")
    assert np.array_equal(np.asarray(saved), np.asarray(cut))
    assert not np.asarray(saved)[300:330].any() and np.asarray(saved)[200:300].any()
    assert rec.keypoints == keypoints
    assert pose_check.shot_problems(cat, rec) == []


@pytest.mark.parametrize("paint,message", [
    ("face", "face mask is empty"),
    ("person", "lie outside the person mask"),
])
def test_a_bad_painted_mask_is_refused_with_what_is_wrong_and_nothing_changes(cat, paint, message):
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("standing"))
    pmask, fmask = _masks(cat, "greeting", "FUS")
    rec = cat.get_action_image("greeting", "FUS")
    everything = _strokes(pmask.size, [(0, 0, 512, 512, ERASE)])
    if paint == "face":
        fmask = pose_masks.apply_strokes(fmask, everything)
    else:
        pmask = pose_masks.apply_strokes(pmask, _strokes(pmask.size, [(0, 0, 512, 110, ERASE)]))
    with pytest.raises(InvalidInput, match=message) as err:
        pose_masks.save_masks(cat, "greeting", "FUS", pmask, fmask)
    assert "far shot" in str(err.value)
    assert cat.get_action_image("greeting", "FUS") == rec


def test_strokes_painted_over_a_drawing_someone_replaced_are_refused(cat):
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("standing"))
    painted_over = cat.get_action_image("greeting", "MES").pose_image
    pmask, fmask = _masks(cat, "greeting", "MES")
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("waving"))  # another curator
    theirs = cat.get_action_image("greeting", "MES")
    with pytest.raises(Conflict, match="changed meanwhile by someone else — reload"):
        pose_masks.save_masks(cat, "greeting", "MES", pmask, fmask, based_on=painted_over)
    assert cat.get_action_image("greeting", "MES") == theirs


def test_a_mask_of_another_size_is_refused():
    problems = pose_check.mask_problems((512, 512), Image.new("L", (256, 256), 255),
                                        Image.new("L", (512, 512), 255))
    assert problems == ["the person mask is 256×256, the pose image 512×512: they must be the same size"]


# --- which poses visitors may have --------------------------------------------------------

def test_a_pose_missing_a_distance_is_reported_and_not_offered(cat):
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("standing"))
    cat.add_action("bow")
    assert pose_check.action_problems(cat, "greeting") == []
    assert pose_check.offerable_actions(cat) == ["greeting"]
    cat.delete_action_image("greeting", "MES")
    assert pose_check.action_problems(cat, "greeting") == ["medium (MES): no images yet"]
    assert pose_check.action_problems(cat, "bow") == [f"{d}: no images yet" for d in
                                                      ("close (CLS)", "medium (MES)", "far (FUS)")]
    assert pose_check.offerable_actions(cat) == []


def test_a_damaged_stored_mask_is_reported_even_after_a_good_check(cat):
    pose_edit.save_skeleton(cat, "greeting", pose_edit.from_builtin("standing"))
    assert pose_check.offerable_actions(cat) == ["greeting"]
    rec = cat.get_action_image("greeting", "CLS")
    Image.new("L", (512, 512), 0).save(cat.asset_path(rec.face_mask))
    cat.asset_path(cat.get_action_image("greeting", "FUS").pose_mask).write_bytes(b"not a png")
    problems = pose_check.action_problems(cat, "greeting")
    assert problems[0] == "close (CLS): the face mask is empty: paint where the face goes"
    assert problems[1].startswith("far (FUS): its images cannot be read")
    assert pose_check.offerable_actions(cat) == []


def test_every_demo_pose_is_offered(demo_home):
    from engine.config import load_settings
    cat = Catalog.open(load_settings())
    assert pose_check.offerable_actions(cat) == [a.name for a in cat.list_actions()]


# --- a pose from a photo ------------------------------------------------------------------

def _photo(name):
    from skimage import data
    img = getattr(data, name)()
    return Image.fromarray(img).convert("RGB")


def test_the_skeleton_of_the_astronaut_is_found_where_her_body_is():
    from engine.pose_from_photo import find_pose
    from engine.training.photos import detect_faces
    photo = _photo("astronaut")
    k = dict(zip(KEYPOINT_NAMES, find_pose(photo)))
    x0, y0, x1, y1 = detect_faces(photo)[0]
    assert x0 <= k["nose"][0] <= x1 and y0 <= k["nose"][1] <= y1       # the nose in her face
    head = [k[n][1] for n in ("nose", "r_eye", "l_eye", "r_ear", "l_ear")]
    assert max(head) < k["neck"][1] < max(k["r_shoulder"][1], k["l_shoulder"][1]) + 1
    assert max(head) < min(k["r_shoulder"][1], k["l_shoulder"][1])     # head above shoulders
    assert k["r_shoulder"][0] < k["nose"][0] < k["l_shoulder"][0]      # facing us: her right on our left
    assert k["r_eye"][1] < k["nose"][1] and k["r_elbow"][1] > k["r_shoulder"][1]
    # The photo ends at her waist: hips, knees and ankles are not invented.
    assert all(k[n] is None for n in ("r_hip", "l_hip", "r_knee", "l_knee", "r_ankle", "l_ankle"))


def test_the_cameramans_hips_are_found_below_his_shoulders():
    from engine.pose_from_photo import find_pose
    k = dict(zip(KEYPOINT_NAMES, find_pose(_photo("camera"))))
    head = max(k[n][1] for n in ("r_eye", "l_eye", "r_ear", "l_ear"))
    shoulders = max(k["r_shoulder"][1], k["l_shoulder"][1])
    assert head < shoulders < min(k["r_hip"][1], k["l_hip"][1])


def test_a_photo_skeleton_is_framed_as_a_far_shot_ready_to_edit():
    from engine.pose_from_photo import find_pose
    photo = _photo("astronaut")
    kps = pose_edit.from_photo(find_pose(photo), photo.size)
    standing = pose_edit.from_builtin("standing")
    assert abs(kps[K["nose"]][1] - standing[K["nose"]][1]) < 10         # head where a person's is
    assert kps[K["r_hip"]] is None                                       # still hidden, to place by hand
    drawn = pose_edit.draw_shots(pose_edit.show(kps, "r_hip"))
    assert all(pose_check.mask_problems((512, 512), d["pose_mask"], d["face_mask"]) == []
               for d in drawn.values())


def test_a_photo_without_a_person_is_refused_in_words():
    from engine.pose_from_photo import find_pose
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    with pytest.raises(InvalidInput, match="no person found in the photo") as err:
        find_pose(Image.fromarray(noise))
    assert err.value.field == "photo"
