"""Likeness benchmark: which face detector, and what the identity checks cost.

    .venv/bin/python bench/bench_likeness.py [--part detectors,embed,check,trainer,face] [--size demo|full]

Parts (a markdown table each):

* detectors: OpenCV's Haar cascade as the photo check used it before (face cascade, the eye
  cascade when it sees several, minNeighbors 6) against dlib's HOG detector as
  `engine.likeness` uses it (one upsampling, score >= 0.5), on the test faces: real faces from
  scikit-image and matplotlib in variants, two-face composites, and pictures without a face.
  Counts each detector's wrong answers, times it, and measures how well the embeddings of each
  detector's boxes separate the astronaut from Grace Hopper;
* embed: one face found and embedded (and the embedding alone), median of runs;
* check: `check_photos` on five photos, with the identity step against the same check with the
  embedding switched off;
* trainer: the trainer with the checkpoint validation off and on (one held-back photo): the
  seconds each validation takes (what `meta.json` records) and the whole run's;
* face: a picture with a LoRA, one face try against N (the scorer is told every face is far,
  so all N are painted: the worst case).

The first three run on the CPU (dlib has no GPU here). The last two run on the demo models, or
with `--size full` at SD-1.5's true shapes (random weights, `python -m engine demo --size full`;
on a CUDA machine: the cost a visitor pays). Needs the dev dependencies (scikit-image,
matplotlib). Keep it short on shared machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from PIL import Image, ImageEnhance, ImageFilter, ImageOps  # noqa: E402

from tests.faces import astronaut, grace_hopper  # noqa: E402


def median_s(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# --- detectors -----------------------------------------------------------------------------------

def test_faces() -> list[tuple[str, Image.Image, int]]:
    """(name, picture, faces in it)."""
    from skimage import data
    import numpy as np
    a, g = astronaut(), grace_hopper()
    out = []
    for who, img in (("astronaut", a), ("grace", g)):
        w, h = img.size
        shots = {"as is": img, "mirrored": ImageOps.mirror(img),
                 "brighter": ImageEnhance.Brightness(img).enhance(1.3),
                 "darker": ImageEnhance.Brightness(img).enhance(0.6),
                 "scaled 0.7": img.resize((round(w * 0.7), round(h * 0.7)), Image.Resampling.LANCZOS),
                 "scaled 0.5": img.resize((round(w * 0.5), round(h * 0.5)), Image.Resampling.LANCZOS),
                 "slightly blurred": img.filter(ImageFilter.GaussianBlur(1.5))}
        for angle in (-15, -10, -5, 5, 10, 15):
            shots[f"rotated {angle}"] = img.rotate(angle, resample=Image.Resampling.BICUBIC)
        out += [(f"{who} {k}", v, 1) for k, v in shots.items()]
    for i in range(5):  # the shots tests/conftest.py's `faces` fixture uploads
        out.append((f"astronaut crop {i}", a.crop((20 + 8 * i, 4 * i, 420 + 8 * i, 400 + 4 * i)), 1))
    out.append(("astronaut, suit close-up", a.crop((28, 4, 428, 404)), 1))
    both = Image.new("RGB", (1024, 512))
    both.paste(a, (0, 0))
    both.paste(ImageOps.mirror(a), (512, 0))
    out.append(("two astronauts", both, 2))
    pair = Image.new("RGB", (949, 512))
    pair.paste(a, (0, 0))
    pair.paste(g.resize((437, 512), Image.Resampling.LANCZOS), (512, 0))
    out.append(("astronaut and Grace Hopper", pair, 2))
    from engine.demo.scenes import SCENES, draw_scene
    for name in ("coffee", "camera", "chelsea", "rocket", "coins"):
        out.append((f"no face: {name}", Image.fromarray(getattr(data, name)()).convert("RGB"), 0))
    for name in SCENES:
        out.append((f"no face: demo {name}", draw_scene(name, (768, 512)), 0))
    noise = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    out.append(("no face: noise", Image.fromarray(noise), 0))
    return out


def haar_faces(img: Image.Image, min_fraction: float = 0.08) -> list[tuple[int, int, int, int]]:
    """The photo check's detector before engine.likeness (engine/training/photos.py at 01dc114)."""
    import cv2
    import numpy as np
    folder = Path(cv2.data.haarcascades)
    face = cv2.CascadeClassifier(str(folder / "haarcascade_frontalface_default.xml"))
    eye = cv2.CascadeClassifier(str(folder / "haarcascade_eye.xml"))
    gray = lambda im: np.asarray(im.convert("L"), dtype=np.uint8)  # noqa: E731
    scale = min(1.0, 640 / max(img.size))
    work = img if scale == 1.0 else img.resize(
        (max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BOX)
    min_px = max(24, int(min(work.size) * min_fraction))
    found = face.detectMultiScale(gray(work), scaleFactor=1.1, minNeighbors=6, minSize=(min_px, min_px))
    boxes = [(int(x / scale), int(y / scale), int((x + w) / scale), int((y + h) / scale))
             for x, y, w, h in (found if len(found) else [])]
    boxes.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)

    def has_eye(b):
        x0, y0, x1, y1 = b
        upper = img.crop((x0, y0, x1, y0 + int((y1 - y0) * 0.6))).resize((120, 72), Image.Resampling.BOX)
        return len(eye.detectMultiScale(gray(upper), scaleFactor=1.1, minNeighbors=4, minSize=(12, 12))) > 0

    if len(boxes) > 1:
        boxes = [b for b in boxes if has_eye(b)] or boxes[:1]
    return boxes


def dlib_faces(img: Image.Image, min_fraction: float = 0.08):
    from engine.likeness import find_faces
    return [f.box for f in find_faces(img, min_fraction)]


def part_detectors(runs: int) -> list[str]:
    from engine import likeness
    cases = test_faces()
    detectors = {"OpenCV Haar cascade (+ eye cascade)": haar_faces, "dlib HOG (engine.likeness)": dlib_faces}
    lines = [f"{len(cases)} pictures: {sum(1 for *_, n in cases if n == 1)} with one face, "
             f"{sum(1 for *_, n in cases if n == 2)} with two, {sum(1 for *_, n in cases if n == 0)} without",
             "", "| detector | wrong face counts | of which missed faces | of which false faces | "
             "median ms a picture | astronaut shots: max distance | astronaut vs Grace Hopper: min distance |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    wrong_by = {}
    for label, detect in detectors.items():
        detect(cases[0][1])  # load once
        wrong, missed, false, times = [], 0, 0, []
        for name, img, want in cases:
            t = time.perf_counter()
            got = len(detect(img))
            times.append(time.perf_counter() - t)
            if got != want:
                wrong.append(f"{name}: {got}")
                missed += got < want
                false += got > want
        wrong_by[label] = wrong
        # How well each detector's boxes serve the embedding (the same landmarks and ResNet).
        emb = {}
        for name, img, want in cases:
            if want == 1 and not name.startswith("astronaut, suit"):
                boxes = detect(img)
                if boxes:
                    emb[name] = likeness.embed(img, boxes[0])
        ast = [v for k, v in emb.items() if k.startswith("astronaut")]
        grace = [v for k, v in emb.items() if k.startswith("grace")]
        same = max(likeness.distance(x, y) for i, x in enumerate(ast) for y in ast[i + 1:])
        other = min(likeness.distance(x, y) for x in ast for y in grace)
        lines.append(f"| {label} | {len(wrong)} | {missed} | {false} | {1000 * statistics.median(times):.0f} | "
                     f"{same:.3f} | {other:.3f} |")
    lines.append("")
    for label, wrong in wrong_by.items():
        lines.append(f"- {label}, wrong: {'; '.join(wrong) or 'none'}")
    return lines


# --- embed and the photo check -------------------------------------------------------------------

def part_embed(runs: int) -> list[str]:
    from engine import likeness
    a = astronaut()
    likeness.embed_main_face(a)  # the models load once per process
    box = likeness.main_face(a).box
    t_load = median_s(lambda: (likeness._models.cache_clear(), likeness._models()), 1)
    detect = median_s(lambda: likeness.main_face(a), runs)
    embed = median_s(lambda: likeness.embed(a, box), runs)
    both = median_s(lambda: likeness.embed_main_face(a), runs)
    return ["| measure (astronaut, 512×512) | median |", "| --- | --- |",
            f"| loading the detector, landmark and ResNet models (once per process) | {t_load:.2f} s |",
            f"| finding the main face | {1000 * detect:.0f} ms |",
            f"| embedding it (landmarks + ResNet) | {1000 * embed:.0f} ms |",
            f"| both: one face found and embedded | {1000 * both:.0f} ms |"]


def part_check(runs: int) -> list[str]:
    from engine import likeness
    from engine.training import photos
    from tests.faces import astronaut_photos, somebody_else_among
    same, mixed = astronaut_photos(), somebody_else_among()
    photos.check_photos(same)
    with_identity = median_s(lambda: photos.check_photos(same), runs)
    real_embed = likeness.embed
    likeness.embed = lambda img, box: None  # the same check without the identity step
    try:
        photos.check_photos(same)
        without = median_s(lambda: photos.check_photos(same), runs)
    finally:
        likeness.embed = real_embed

    def refused():
        try:
            photos.check_photos(mixed)
        except photos.PhotoCheckFailed as exc:
            return sorted(exc.problems)
        return []
    mixed_s = median_s(refused, runs)
    return ["| `check_photos`, five photos (astronaut variants) | median |", "| --- | --- |",
            f"| with the identity step (every face embedded, the largest group kept) | {with_identity:.2f} s |",
            f"| without it (faces found, sizes and sharpness checked, crops made) | {without:.2f} s |",
            f"| identity step's share | {with_identity - without:.2f} s ({with_identity / without:.2f}×) |",
            f"| four astronauts and Grace Hopper: refused photo(s) {[i + 1 for i in refused()]} | {mixed_s:.2f} s |"]


# --- trainer and face pass (demo models, or true size on a GPU) ----------------------------------

def make_home(size: str):
    """A fresh data root with the demo catalog and the models of `size` (demo, or full: SD-1.5's
    true shapes with random weights, as bench/bench_true_size.py builds them)."""
    from bench.bench_true_size import make_home as true_size_home
    home, settings, _built_s = true_size_home(size)
    os.environ["CARTOLINA_HOME"] = str(home)
    return settings


def sync() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def train_once(settings, steps: int, every: int, held: int, validation_steps: int, resolution: int = 512):
    from dataclasses import replace
    from engine.models import pick_device
    from engine.training import jobs
    from engine.training.train_lora import ValidationPlan, train
    from tests.faces import astronaut_photos
    st = jobs.submit(astronaut_photos(), settings, jobs.TrainOptions(
        total_steps=steps, resolution=resolution, rank=16 if settings.inpaint_model.startswith("full") else 4,
        checkpoint_every=every, random_masks=1, seed=3), start=False)
    job = settings.jobs_dir / st["code"]
    spec = json.loads((job / "spec.json").read_text())
    plan = replace(ValidationPlan.from_settings(settings), held_back=held, steps=validation_steps)
    sync()
    t = time.perf_counter()
    meta = train(spec, job, settings.loras_dir, validation=plan, device=pick_device(settings.device),
                 dtype_setting=settings.dtype)
    sync()
    return time.perf_counter() - t, meta


def part_trainer(settings, steps: int, validation_steps: int) -> list[str]:
    every = max(1, steps // 2)
    off = train_once(settings, steps, every, 0, validation_steps)
    on = train_once(settings, steps, every, 1, validation_steps)
    checks = on[1]["likeness"]["checkpoints"]
    per = statistics.median(c["seconds"] for c in checks)
    return [f"| trainer, {settings.inpaint_model}, {steps} steps at 512 px | validation off | validation on |",
            "| --- | --- | --- |",
            f"| whole run (loading and caching included) | {off[0]:.1f} s | {on[0]:.1f} s |",
            f"| validations: {len(checks)} (every {every} steps and at the end), each "
            f"{on[1]['likeness']['inputs']} paintings × {validation_steps} steps + their faces measured "
            f"| — | {per:.2f} s each |",
            f"| the default LoRA (1,500 steps, checkpoint every 250): 7 validations | — | "
            f"{7 * per:.0f} s in all |",
            f"| kept | the last checkpoint | {on[1]['likeness']['note']} |"]


def part_face(settings, tries: int, steps: int, runs: int) -> list[str]:
    from dataclasses import replace
    from engine import generate as gen
    from engine import likeness
    from engine.catalog import Catalog
    from engine.models import get_pipelines
    _t, meta = train_once(settings, 2, 100, 0, 1)  # a LoRA with the visitor's reference beside it
    assert likeness.load_reference(settings.loras_dir / meta["code"]) is not None
    request = {"poi_name": "Piazza del Duomo", "poi_image": "Fountain view", "action_name": "waving",
               "action_shot_type": "MES", "age": "adult", "gender": "woman", "selected_lora": meta["code"],
               "seed": 5, "steps": steps}
    cat, pipes = Catalog.open(settings), get_pipelines(settings)
    gen.generate(request, settings, catalog=cat, pipelines=pipes)  # pipelines and LoRA loaded once
    real = likeness.score_region
    likeness.score_region = lambda *a, **k: 0.9  # every face is far: all the tries are painted
    times: dict[int, list[float]] = {1: [], tries: []}
    try:
        for i in range(runs):
            for n in ((1, tries) if i % 2 == 0 else (tries, 1)):
                sync()
                t = time.perf_counter()
                result = gen.generate(request, replace(settings, face_tries=n), catalog=cat, pipelines=pipes)
                sync()
                times[n].append(time.perf_counter() - t)
                assert len(result.likeness["tries"]) == n
        likeness.score_region = real
        a = astronaut()
        region = (0, 0, a.width, a.height)
        score_s = median_s(lambda: likeness.score_region(a, region, likeness.embed_main_face(a)), 3)
    finally:
        likeness.score_region = real
    one, many = statistics.median(times[1]), statistics.median(times[tries])
    return [f"| picture with a LoRA, {settings.inpaint_model}, {steps} steps, MES shot | median of {runs} |",
            "| --- | --- |", f"| one face try | {one:.2f} s |",
            f"| {tries} face tries (none close enough: the worst case) | {many:.2f} s |",
            f"| ratio | {many / one:.2f}× |",
            f"| measuring one painted face (found in its region, embedded, compared) | {1000 * score_s:.0f} ms |"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", default="detectors,embed,check,trainer,face")
    p.add_argument("--size", choices=("demo", "full"), default="demo",
                   help="models for the trainer and face parts: demo, or SD-1.5's true shapes (a GPU)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--tries", type=int, default=3)
    p.add_argument("--train-steps", type=int, default=8)
    p.add_argument("--validation-steps", type=int, default=20)
    p.add_argument("--steps", type=int, default=10, help="picture steps for the face part")
    args = p.parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        torch.set_num_threads(min(4, os.cpu_count() or 1))
    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or platform.machine()
    print(f"machine: {card}, {os.cpu_count()} cores, torch {torch.__version__} (threads {torch.get_num_threads()}), "
          f"Python {platform.python_version()}\n")
    wanted = args.part.split(",")
    settings = make_home(args.size) if {"trainer", "face"} & set(wanted) else None
    parts = {"detectors": lambda: part_detectors(args.runs), "embed": lambda: part_embed(args.runs),
             "check": lambda: part_check(args.runs),
             "trainer": lambda: part_trainer(settings, args.train_steps, args.validation_steps),
             "face": lambda: part_face(settings, args.tries, args.steps, max(2, args.runs // 2))}
    for name in wanted:
        print(f"## {name}\n")
        print("\n".join(parts[name]()) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
