"""Likeness: one face in, the same face out, and the studio knows how close it came.

Real faces from test dependencies (tests/faces.py): scikit-image's astronaut in variants and
matplotlib's Grace Hopper. The photo check refuses the one photo of somebody else, through the
engine, the command line and the training page; the trainer keeps the checkpoint whose faces
come closest and the face pass the closest of its tries (both tested with real face crops as
what was "painted"); on the demo models, which paint noise, "no face found" ends in the last
checkpoint and the single try, with the reason recorded; `forget` takes the reference away.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageOps

from engine import likeness
from engine.config import load_settings
from engine.errors import InvalidInput, PhotoCheckFailed
from engine.training import jobs
from engine.training.photos import DIFFERENT_PERSON, check_photos, identity_problems, photo_verdict
from tests.faces import (astronaut, astronaut_photos, face_crop, grace_hopper, png, somebody_else_among,
                         variants)

REPO = Path(__file__).resolve().parent.parent
IDENTITY = "this looks like a different person from your other photos"


@pytest.fixture(scope="module")
def astronaut_faces() -> dict[str, np.ndarray]:
    return {name: likeness.embed_main_face(img) for name, img in variants(astronaut()).items()}


@pytest.fixture(scope="module")
def reference(astronaut_faces) -> np.ndarray:
    return likeness.mean_embedding(list(astronaut_faces.values()))


# --- the face model ------------------------------------------------------------------------------

def test_two_shots_of_one_person_are_close_and_two_people_are_not(astronaut_faces):
    grace = likeness.embed_main_face(grace_hopper())
    assert grace.shape == (128,)
    shots = list(astronaut_faces.values())
    same = [likeness.distance(a, b) for i, a in enumerate(shots) for b in shots[i + 1:]]
    assert max(same) < likeness.SAME_PERSON == load_settings({}).face_threshold
    assert min(likeness.distance(a, grace) for a in shots) > likeness.SAME_PERSON
    mirrored = likeness.embed_main_face(ImageOps.mirror(grace_hopper()))
    assert likeness.distance(grace, mirrored) < likeness.SAME_PERSON


def test_the_main_face_is_the_largest_and_pictures_without_a_face_have_none():
    from skimage import data
    face = likeness.main_face(astronaut())
    x0, y0, x1, y1 = face.box
    assert 150 < (x0 + x1) / 2 < 290 and 60 < (y0 + y1) / 2 < 190  # her face, not the mission patch
    for name in ("coffee", "camera", "chelsea"):
        assert likeness.main_face(Image.fromarray(getattr(data, name)()).convert("RGB")) is None
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert likeness.embed_main_face(Image.fromarray(noise)) is None


def test_the_largest_group_is_the_visitor_and_ties_go_to_the_first_photo():
    a, b, c = np.zeros(128), np.full(128, 0.2), np.full(128, -0.2)  # |a-b| = 2.26: strangers
    near = a + 0.01
    assert likeness.largest_group({1: b, 2: a, 3: near, 4: a - 0.01}) == [2, 3, 4]
    assert likeness.largest_group({"x": b, "y": c, "z": a}) == ["x"]  # nobody twice: the first
    assert likeness.largest_group({0: b, 1: a, 2: near, 3: b + 0.01}) == [0, 3]  # 2 and 2: the first
    assert likeness.largest_group({7: a}) == [7] and likeness.largest_group({}) == []


def test_likeness_in_words_and_the_closest_candidate():
    assert [likeness.likeness_level(d, 0.45) for d in (0.3, 0.5, 0.7, None)] == ["high", "fair", "low", None]
    assert likeness.closest({2: [0.5, 0.6], 4: [0.3, 0.4], 6: [0.5, None]}) == 4
    assert likeness.closest({2: [None, None], 4: []}) is None
    assert likeness.checkpoint_score([0.4, None]) == pytest.approx(0.7)  # a faceless painting: a stranger


def test_the_reference_is_kept_as_json_and_a_missing_or_damaged_one_is_none(tmp_path, astronaut_faces):
    vectors = list(astronaut_faces.values())
    likeness.save_reference(tmp_path, vectors)
    kept = likeness.load_reference(tmp_path)
    assert kept.shape == (128,) and np.allclose(kept, likeness.mean_embedding(vectors), atol=1e-5)
    assert json.loads((tmp_path / likeness.REFERENCE_FILE).read_text())["photos"] == 5
    (tmp_path / likeness.REFERENCE_FILE).write_text('{"embedding": [1, 2]}')
    assert likeness.load_reference(tmp_path) is None
    assert likeness.load_reference(tmp_path / "nowhere") is None and likeness.load_reference(None) is None


def test_the_models_load_lazily_from_the_package_files_never_the_68_point_model():
    folder = likeness.models_dir()
    assert (folder / likeness.RECOGNITION_FILE).is_file() and (folder / likeness.LANDMARKS_FILE).is_file()
    code = Path(likeness.__file__).read_text()
    assert "68_face_landmarks" not in code
    out = subprocess.run([sys.executable, "-c", "import sys, engine.likeness, engine.training.photos, "
                          "engine.generate; print('dlib' in sys.modules)"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr  # importing the studio does not load dlib


@pytest.mark.parametrize("name,value,accepted", [
    ("CARTOLINA_FACE_THRESHOLD", "2", "a number from 0.2 to 1.2"),
    ("CARTOLINA_FACE_THRESHOLD", "near", "a number from 0.2 to 1.2"),
    ("CARTOLINA_FACE_CLOSE", "0.6", "under CARTOLINA_FACE_THRESHOLD (0.6)"),
    ("CARTOLINA_FACE_TRIES", "0", "an integer from 1 to 10"),
    ("CARTOLINA_FACE_VALIDATION", "11", "an integer from 0 to 10"),
    ("CARTOLINA_FACE_VALIDATION_STEPS", "0", "an integer from 1 to 100"),
])
def test_the_likeness_settings_have_ranges_and_errors_name_the_variable(name, value, accepted):
    with pytest.raises(InvalidInput) as err:
        load_settings({name: value})
    assert err.value.field == name and accepted in str(err.value)
    s = load_settings({"CARTOLINA_FACE_THRESHOLD": "0.5", "CARTOLINA_FACE_TRIES": "3"})
    assert (s.face_threshold, s.face_close, s.face_tries, s.face_validation) == (0.5, 0.45, 3, 1)


# --- five photos of one person -------------------------------------------------------------------

def test_five_astronaut_variants_pass_and_each_keeps_its_face_out_of_the_spec():
    checked = check_photos(astronaut_photos())
    assert len(checked) == 5 and all(c.embedding.shape == (128,) for c in checked)
    assert all("embedding" not in c.to_spec("p.png") for c in checked)


def test_four_astronauts_and_grace_hopper_refuse_exactly_grace_hopper():
    with pytest.raises(PhotoCheckFailed) as err:
        check_photos(somebody_else_among())
    assert err.value.problems == {4: IDENTITY} and err.value.count_problem is None
    assert err.value.problems[4].template == DIFFERENT_PERSON.template  # translatable
    # wherever she stands in the set
    photos = somebody_else_among()
    photos.insert(1, photos.pop())
    with pytest.raises(PhotoCheckFailed) as err:
        check_photos(photos)
    assert list(err.value.problems) == [1]


def test_the_identity_reason_comes_with_the_other_reasons_and_the_threshold_is_a_rule():
    from engine.training.photos import PhotoRules
    photos = somebody_else_among()
    photos[0] = b"not an image"
    with pytest.raises(PhotoCheckFailed) as err:
        check_photos(photos)
    assert sorted(err.value.problems) == [0, 4] and err.value.problems[4] == IDENTITY
    assert len(check_photos(somebody_else_among(), PhotoRules(max_face_distance=1.0))) == 5
    assert PhotoRules.from_settings(load_settings({"CARTOLINA_FACE_THRESHOLD": "0.5"})).max_face_distance == 0.5


def test_a_page_checks_one_photo_at_a_time_then_who_is_not_the_visitor():
    verdicts = {i: photo_verdict(p) for i, p in enumerate(somebody_else_among())}
    assert all(problem is None and len(face) == 128 for problem, face in verdicts.values())
    assert identity_problems({i: face for i, (_p, face) in verdicts.items()}) == {4: IDENTITY}
    assert photo_verdict(b"not an image")[1] is None


def test_the_command_line_refuses_grace_hopper_with_the_identity_reason(demo_home, tmp_path):
    paths = []
    for i, data in enumerate(somebody_else_among()):
        (tmp_path / f"p{i}.png").write_bytes(data)
        paths.append(str(tmp_path / f"p{i}.png"))
    out = subprocess.run([sys.executable, "-m", "engine", "train", *paths, "--json"], cwd=REPO,
                         env=dict(os.environ, CARTOLINA_HOME=str(demo_home)), capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 2, out.stderr
    assert json.loads(out.stdout)["error"]["problems"] == [{"photo": 5, "reason": IDENTITY}]
    assert f"photo 5: {IDENTITY}" in out.stderr
    assert not [p for p in (demo_home / "jobs").iterdir() if p.is_dir()]


def test_the_training_page_refuses_grace_hopper_as_she_is_added(demo_home, fresh_ui):
    from streamlit.testing.v1 import AppTest
    from ui.state import SESSION_DEFAULTS
    at = AppTest.from_file(str(REPO / "app_pages" / "train.py"), default_timeout=120)
    for key, value in SESSION_DEFAULTS.items():
        at.session_state[key] = value
    at.query_params["lang"] = "en"
    at.run()
    uploads = [(f"p{i}.png", data, "image/png") for i, data in enumerate(somebody_else_among())]
    at.file_uploader[0].set_value(uploads).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors == ["This looks like a different person from your other photos. Remove it and add another."]
    assert [s.value for s in at.success] == ["OK"] * 4
    assert at.button(key="start_training").disabled
    grace = at.session_state["train_photos"][4]
    at.button(key=f"remove-{grace['id']}").click().run()
    at.file_uploader[0].set_value([("p5.png", png(ImageOps.mirror(astronaut())), "image/png")]).run()
    assert not at.error and not at.button(key="start_training").disabled


# --- the closest checkpoint ----------------------------------------------------------------------

def test_painted_faces_are_scored_against_the_reference(reference):
    crops = [face_crop(astronaut()), face_crop(grace_hopper()), Image.new("RGB", (256, 256), "gray")]
    near, far, none = likeness.score_paintings(crops, reference)
    assert near < 0.45 < likeness.SAME_PERSON < far and none is None
    assert likeness.closest({2: [far, far], 4: [near, far], 6: [near, near], 8: [none, none]}) == 6


@pytest.mark.timeout(300)
def test_the_trainer_keeps_the_checkpoint_whose_paintings_came_closest(settings, demo_home, monkeypatch):
    """The paintings are real face crops: far (Grace Hopper) at steps 2, 6 and 8, close (the
    astronaut) at step 4. Only one checkpoint is kept besides the closest, yet checkpoint-4
    survives and its weights are the LoRA's."""
    from safetensors.torch import load_file
    from engine.training.train_lora import LORA_WEIGHTS, ValidationPlan, Validator, train
    close, far = face_crop(astronaut()), face_crop(grace_hopper())
    painted = iter([far, close, far, far])

    def paint(self):
        face = next(painted)
        return [face] * self.inputs

    monkeypatch.setattr(Validator, "paint", paint)
    st = jobs.submit(astronaut_photos(), settings, jobs.TrainOptions(
        total_steps=8, resolution=128, rank=4, learning_rate=1e-3, checkpoint_every=2, checkpoints_keep=1,
        random_masks=1, seed=5), start=False)
    job = settings.jobs_dir / st["code"]
    meta = train(json.loads((job / "spec.json").read_text()), job, settings.loras_dir,
                 validation=ValidationPlan(held_back=1, steps=2))
    like = meta["likeness"]
    assert like["held_back"] == 1 and like["inputs"] == 2 and like["reference_photos"] == 5
    assert [c["step"] for c in like["checkpoints"]] == [2, 4, 6, 8]
    scores = {c["step"]: c["score"] for c in like["checkpoints"]}
    assert scores[4] < 0.45 < likeness.SAME_PERSON < min(scores[2], scores[6], scores[8])
    assert like["chosen_step"] == 4 and "checkpoint-4 kept" in like["note"]
    assert [n for n, _ in jobs.checkpoints(job)] == [4, 6]  # the closest, protected, and the latest

    def values(tensors):
        return sorted(round(float(t.double().abs().sum()), 4) for t in tensors.values())

    kept = load_file(str(settings.loras_dir / st["code"] / LORA_WEIGHTS))
    assert values(kept) == values(load_file(str(job / "checkpoint-4" / "lora.safetensors")))
    assert values(kept) != values(load_file(str(job / "checkpoint-6" / "lora.safetensors")))
    assert likeness.load_reference(settings.loras_dir / st["code"]) is not None


# --- the closest face pass -----------------------------------------------------------------------

class PaintedFaces:
    """Stands in for the pipelines: each face pass "paints" the next real face crop."""

    def __init__(self, faces):
        self.faces, self.seeds = list(faces), []

    @contextmanager
    def lora(self, code, folder):
        yield

    def face(self, **kw):
        self.seeds.append(kw["generator"].initial_seed())
        return SimpleNamespace(images=[self.faces.pop(0)])


def _paint(faces, settings, reference, tries):
    from engine.generate import Request, paint_face
    pipes = PaintedFaces(faces)
    req = Request("p", "i", "a", "CLS", "adult", "woman", selected_lora="12345678", steps=4)
    built = SimpleNamespace(face_prompt="sks person", face_negative_prompt="")
    picture, mask = Image.new("RGB", (256, 256), "gray"), Image.new("L", (256, 256), 255)
    image, record, seed = paint_face(pipes, req, built, picture, mask, Path("."), reference, settings,
                                     100, tries, None)
    return image, record, seed, pipes.seeds


def test_the_face_pass_keeps_the_closest_of_its_tries(reference):
    grace, mirrored, straight = (face_crop(grace_hopper()), face_crop(ImageOps.mirror(astronaut()).rotate(8)),
                                 face_crop(astronaut()))
    never_close = replace(load_settings({}), face_close=0.05)
    image, record, seed, seeds = _paint([grace, mirrored, straight], never_close, reference, 3)
    distances = [t["distance"] for t in record["tries"]]
    assert seeds == [100, 101, 102] and [t["face_seed"] for t in record["tries"]] == seeds
    assert distances[0] > likeness.SAME_PERSON and record["distance"] == min(distances)
    assert seed == seeds[distances.index(min(distances))]
    assert image is (mirrored, straight)[distances.index(min(distances)) - 1]
    assert record["level"] in ("high", "fair") and record["note"] == "the closest of 3 tries"


def test_the_face_pass_stops_once_a_face_is_close_enough(reference):
    settings = load_settings({})  # close enough: under 0.45
    image, record, seed, seeds = _paint([face_crop(grace_hopper()), face_crop(astronaut()), None],
                                        settings, reference, 3)
    assert seeds == [100, 101] and seed == 101 and record["level"] == "high"
    assert record["note"] == "close enough" and record["distance"] < 0.45


def test_a_face_that_cannot_be_found_ends_the_tries_as_not_measured(reference):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    image, record, seed, seeds = _paint([noise, None], load_settings({}), reference, 3)
    assert seeds == [100] and image is noise and record["distance"] is None and record["level"] is None
    assert record["tries"] == [{"face_seed": 100, "distance": None}] and "no face found" in record["note"]


# --- on the demo models: never an error ----------------------------------------------------------

def _lora_with_reference(settings, code: str, reference) -> Path:
    from tests.lora_helpers import make_lora
    folder = make_lora(settings.models_dir, settings.loras_dir, code, seed=1)
    likeness.save_reference(folder, [reference])
    return folder


REQUEST = ["--poi", "Lungomare", "--poi-image", "Beach", "--action", "waving", "--shot", "CLS",
           "--age", "adult", "--gender", "woman", "--seed", "5", "--steps", "2"]


def test_on_the_demo_models_the_face_pass_finds_no_face_and_makes_one_try(settings, demo_home, reference):
    """CARTOLINA_FACE_TRIES=3, but the demo models paint noise: one try, not measured, said so;
    the likeness is in --json and the private record, not in the public PNG."""
    from engine.generate import read_output_meta, read_record
    code = "27182818"
    _lora_with_reference(settings, code, reference)
    out = subprocess.run([sys.executable, "-m", "engine", "generate", *REQUEST, "--lora", code,
                          "--face-seed", "77", "--json"], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ, CARTOLINA_HOME=str(demo_home), CARTOLINA_FACE_TRIES="3"),
                         timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    like = result["likeness"]
    assert like["tries"] == [{"face_seed": 77, "distance": None}] and result["face_seed"] == 77
    assert like["distance"] is None and like["level"] is None and "no face found" in like["note"]
    record = read_record(settings, result["code"])
    assert record["likeness"] == like and record["face_seed"] == 77
    assert "likeness" not in read_output_meta(settings.outputs_dir / f"{result['code']}.png")


def test_a_lora_without_a_reference_gets_one_try_and_says_why(settings, demo_home):
    from engine.generate import generate
    from tests.lora_helpers import make_lora
    make_lora(settings.models_dir, settings.loras_dir, "31415926", seed=1)
    request = dict(zip(("poi_name", "poi_image", "action_name", "action_shot_type", "age", "gender"),
                       ("Lungomare", "Beach", "waving", "CLS", "adult", "woman")),
                   selected_lora="31415926", seed=5, steps=2)
    result = generate(request, replace(settings, face_tries=3))
    assert len(result.likeness["tries"]) == 1 and result.face_seed == 6  # seed + 1, as before
    assert "no reference" in result.likeness["note"]
    with pytest.raises(InvalidInput) as err:
        generate(dict(request, face_seed=-1), settings)
    assert err.value.field == "face_seed"


def test_a_low_likeness_is_said_in_words_with_a_one_tap_try_again(settings, demo_home, fresh_ui, reference,
                                                                   monkeypatch):
    from streamlit.testing.v1 import AppTest
    from engine.backends.embedded_pictures import picture_queue
    code = "16180339"
    _lora_with_reference(settings, code, reference)
    monkeypatch.setattr(likeness, "score_region", lambda *a, **k: 0.75)  # every face far: low
    at = AppTest.from_file(str(REPO / "app_pages" / "scene.py"), default_timeout=120)
    at.query_params["lang"] = "en"
    at.session_state["scene_steps"] = 4  # the fewest the slider offers
    at.run()
    at.text_input(key="scene_lora").input(code)
    next(b for b in at.button if (b.key or "").startswith("FormSubmitter:scene-you")).click().run()
    line = picture_queue(load_settings())
    first = at.session_state["picture_job"]
    done = line.wait(first, timeout=300)
    assert done.state == "succeeded" and done.result.likeness["level"] == "low"
    at.run()
    assert any(w.value.startswith("Likeness: low.") for w in at.warning)
    at.button(key="try-face-again").click().run()
    again = at.session_state["picture_job"]
    assert again != first
    redo = line.wait(again, timeout=300)
    assert redo.request.seed == done.result.seed and redo.request.face_seed not in (None, done.result.face_seed)
    assert at.session_state["scene_request"].get("seed") is None  # "make another": a new picture
    line.drain(timeout=300)


# --- forget --------------------------------------------------------------------------------------

def test_forget_removes_the_reference_with_the_lora(settings, demo_home, reference):
    from engine.forget import forget
    folder = _lora_with_reference(settings, "14142135", reference)
    assert (folder / likeness.REFERENCE_FILE).is_file()
    assert forget(settings, "14142135")["lora"] is True
    assert not (folder / likeness.REFERENCE_FILE).exists() and not folder.exists()
    assert not list(settings.home.rglob(likeness.REFERENCE_FILE))
