"""Likeness: find the main face in a picture, embed it (128 numbers), compare two faces.

One face module serves the whole studio (DESIGN.md, "Likeness"):

- the photo check: every training photo's face is found here, and the largest group of photos
  whose faces are close to each other is the visitor (`largest_group`);
- the trainer: at each checkpoint it paints the faces of photos held back from training and
  keeps the checkpoint whose faces come closest to the visitor's (`score_paintings`, `closest`);
- the face pass: it scores what it painted against the visitor's reference, the mean embedding
  of their photos kept beside their LoRA (`save_reference`, `load_reference`), and keeps the
  closest of N tries.

The models, all commercially usable (README, "Libraries we stand on"):

- faces are found by dlib's HOG frontal face detector (inside `dlib-bin`), upsampled once so a
  face of 40 px is found, with detections scoring under `MIN_SCORE` dropped: on the test faces
  that alone removes every false face (the astronaut's mission patch, a space suit) that
  OpenCV's Haar cascade needed an eye cascade to drop, and it boxes faces the way dlib's
  landmark model expects (bench/bench_likeness.py measured both detectors; docs/benchmarks.md);
- faces are embedded by dlib's ResNet face recognition model after its 5-point landmark model
  aligns them, both from `face-recognition-models` (the files are found without importing the
  package, which imports `pkg_resources`). Its 68-point landmark model, in the same package, is
  never loaded: it was trained on iBUG 300-W, whose licence excludes commercial use.

Two embeddings of one person lie closer than 0.6 (Euclidean), dlib's own threshold, which is
`CARTOLINA_FACE_THRESHOLD`'s default. The models load once per process, on first use, so
start-up and pages that never look at a face do not pay for them; one lock serialises the calls,
since pages, the picture worker and the trainer may all ask at once.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Hashable, Mapping, Sequence

import numpy as np
from PIL import Image

from engine.errors import ModelError

__all__ = ["Face", "SAME_PERSON", "REFERENCE_FILE", "find_faces", "main_face", "embed", "embed_main_face",
           "distance", "mean_embedding", "largest_group", "face_vector", "score_region", "score_paintings",
           "checkpoint_score", "closest", "likeness_level", "save_reference", "load_reference",
           "reference_bytes", "models_dir"]

SAME_PERSON = 0.6          # dlib's threshold: two faces of one person lie closer than this
DETECT_SIDE = 640          # faces are searched on a copy no larger than this
UPSAMPLE = 1               # one doubling: faces from 40 px (80 px without it)
MIN_SCORE = 0.5            # detections under this are textures, patches and folds (measured)
SCORE_SIDE = 400           # a painted face's region is enlarged to this before it is searched
MISSING_FACE = 1.0         # a validation painting without a face counts as a stranger's face
REFERENCE_FILE = "face_reference.json"
MODEL_NAME = "dlib_face_recognition_resnet_model_v1"
RECOGNITION_FILE = f"{MODEL_NAME}.dat"
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"

Box = tuple[int, int, int, int]

_lock = threading.RLock()


@dataclass(frozen=True)
class Face:
    """A face found in a picture: its box (x0, y0, x1, y1) in the picture's pixels and the
    detector's confidence."""

    box: Box
    score: float

    @property
    def side(self) -> int:
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])


# --- the models ----------------------------------------------------------------------------------

def models_dir() -> Path:
    """face-recognition-models' folder of model files, found without importing the package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the face model is missing: install face-recognition-models==0.3.0 "
                         "(bin/setup does; see requirements.txt)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    for name in (RECOGNITION_FILE, LANDMARKS_FILE):
        if not (folder / name).is_file():
            raise ModelError(f"the face model file {folder / name} is missing: reinstall "
                             "face-recognition-models==0.3.0")
    return folder


@functools.cache
def _models():
    """(detector, 5-point landmarks, ResNet embedder), loaded once per process."""
    try:
        import dlib
    except ImportError:
        raise ModelError("dlib is missing: install dlib-bin (bin/setup does; see requirements.txt)") from None
    folder = models_dir()
    try:
        return (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(folder / LANDMARKS_FILE)),
                dlib.face_recognition_model_v1(str(folder / RECOGNITION_FILE)))
    except RuntimeError as exc:
        raise ModelError(f"dlib cannot load the face models in {folder}: {exc}") from None


def _rgb(img: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


# --- finding faces -------------------------------------------------------------------------------

def find_faces(img: Image.Image, min_fraction: float = 0.0) -> list[Face]:
    """Every face in `img`, largest first. Faces whose side is under `min_fraction` of the
    photo's short side (people in the background) are left out."""
    scale = min(1.0, DETECT_SIDE / max(img.size))
    work = img if scale == 1.0 else img.resize(
        (max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BOX)
    detector = _models()[0]
    with _lock:
        rects, scores, _kinds = detector.run(_rgb(work), UPSAMPLE, 0.0)
    min_px = min(work.size) * min_fraction
    faces = []
    for r, s in zip(rects, scores):
        if s < MIN_SCORE or min(r.width(), r.height()) < min_px:
            continue
        box = (max(0, int(r.left() / scale)), max(0, int(r.top() / scale)),
               min(img.width, int(round((r.right() + 1) / scale))),
               min(img.height, int(round((r.bottom() + 1) / scale))))
        if box[2] > box[0] and box[3] > box[1]:
            faces.append(Face(box, float(s)))
    faces.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
    return faces


def main_face(img: Image.Image, min_fraction: float = 0.0) -> Face | None:
    """The largest face: on `skimage.data.astronaut()` the detector also sees the mission patch."""
    faces = find_faces(img, min_fraction)
    return faces[0] if faces else None


# --- embedding and comparing ---------------------------------------------------------------------

def embed(img: Image.Image, box: Box) -> np.ndarray:
    """The 128-number embedding of the face in `box` (aligned by the 5-point landmarks). Only
    a margin around the face is handed to dlib, so a phone photo is not copied whole."""
    _detector, landmarks, embedder = _models()
    import dlib  # loaded by _models, which says plainly when it is missing
    x0, y0, x1, y1 = box
    m = max(x1 - x0, y1 - y0) // 2
    left, top = max(0, x0 - m), max(0, y0 - m)
    crop = img.crop((left, top, min(img.width, x1 + m), min(img.height, y1 + m)))
    arr = _rgb(crop)
    with _lock:
        shape = landmarks(arr, dlib.rectangle(x0 - left, y0 - top, x1 - left - 1, y1 - top - 1))
        vector = embedder.compute_face_descriptor(arr, shape)
    return np.asarray(vector, dtype=np.float64)


def embed_main_face(img: Image.Image, min_fraction: float = 0.0) -> np.ndarray | None:
    """The main face's embedding, or None when no face is found."""
    face = main_face(img, min_fraction)
    return None if face is None else embed(img, face.box)


def distance(a, b) -> float:
    """Euclidean distance between two embeddings: under `SAME_PERSON`, one person."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def mean_embedding(vectors: Sequence) -> np.ndarray:
    if not len(vectors):
        raise ValueError("no embeddings to average")
    return np.mean(np.asarray(vectors, dtype=np.float64), axis=0)


def largest_group(embeddings: Mapping[Hashable, Sequence[float]], threshold: float = SAME_PERSON) -> list:
    """The keys of the largest group of faces that are all close to each other (pairwise under
    `threshold`): the visitor, among photos where somebody else may have slipped in.

    Each face in turn seeds a group, which takes the other faces nearest first while each is
    close to every member. The largest group wins; between groups of one size, the one holding
    the earliest key (the visitor's first photo), then the tighter one. Keys come back in order.
    """
    keys = list(embeddings)
    if len(keys) <= 1:
        return keys
    vec = np.asarray([embeddings[k] for k in keys], dtype=np.float64)
    d = np.linalg.norm(vec[:, None, :] - vec[None, :, :], axis=-1)
    best, best_rank = [], None
    for seed in range(len(keys)):
        group = [seed]
        for j in np.argsort(d[seed], kind="stable"):
            if j != seed and all(d[j, m] < threshold for m in group):
                group.append(int(j))
        pairs = [d[a, b] for i, a in enumerate(group) for b in group[i + 1:]]
        rank = (-len(group), min(group), float(np.mean(pairs)) if pairs else 0.0)
        if best_rank is None or rank < best_rank:
            best, best_rank = sorted(group), rank
    return [keys[i] for i in best]


# --- scoring painted faces -----------------------------------------------------------------------

def face_vector(picture: Image.Image, region: Box | None = None) -> np.ndarray | None:
    """The embedding of the main face inside `region` of `picture` (all of it: None), or None
    when no face is there. The region is enlarged to `SCORE_SIDE` first, so a far-away face in
    a picture, or a face crop made for a small training resolution, is still found."""
    crop = picture if region is None else picture.crop(region)
    if max(crop.size) < SCORE_SIDE:
        k = SCORE_SIDE / max(crop.size)
        crop = crop.resize((max(1, round(crop.width * k)), max(1, round(crop.height * k))),
                           Image.Resampling.LANCZOS)
    return embed_main_face(crop)


def score_region(picture: Image.Image, region: Box | None, reference) -> float | None:
    """How far the main face inside `region` of `picture` is from `reference` (None: no face
    there; see `face_vector`)."""
    vector = face_vector(picture, region)
    return None if vector is None else distance(vector, reference)


def score_paintings(paintings: Sequence[Image.Image], reference) -> list[float | None]:
    """Each painting's distance to the reference (None where no face is found)."""
    return [score_region(p, None, reference) for p in paintings]


def checkpoint_score(distances: Sequence[float | None]) -> float | None:
    """One number per checkpoint: the mean distance of its paintings, a painting without a face
    counting as `MISSING_FACE`; None when none of them shows a face (nothing was measured)."""
    if not distances or all(d is None for d in distances):
        return None
    return float(np.mean([MISSING_FACE if d is None else d for d in distances]))


def closest(candidates: Mapping[Hashable, Sequence[float | None]]):
    """The candidate whose paintings came closest (`checkpoint_score`), or None when no
    candidate's paintings show a face; between equal scores, the later candidate."""
    best_key, best_score = None, None
    for key, distances in candidates.items():
        score = checkpoint_score(distances)
        if score is not None and (best_score is None or score <= best_score):
            best_key, best_score = key, score
    return best_key


def likeness_level(dist: float | None, close: float, threshold: float = SAME_PERSON) -> str | None:
    """In plain words: `high` under `close`, `fair` under the same-person threshold, `low` past
    it; None when nothing was measured."""
    if dist is None:
        return None
    return "high" if dist < close else "fair" if dist < threshold else "low"


# --- the visitor's reference ---------------------------------------------------------------------

def reference_bytes(vectors: Sequence) -> bytes:
    """The reference kept beside a LoRA: the mean embedding of the visitor's photos. Biometric
    data: it lives in `loras/<code>/` only (never served) and goes with the LoRA."""
    return json.dumps({"model": MODEL_NAME, "photos": len(vectors),
                       "embedding": [round(float(v), 6) for v in mean_embedding(vectors)]}).encode()


def save_reference(folder: Path, vectors: Sequence) -> Path:
    path = Path(folder) / REFERENCE_FILE
    path.write_bytes(reference_bytes(vectors))
    return path


def load_reference(folder: Path | None) -> np.ndarray | None:
    """The reference kept with a LoRA, or None (a LoRA trained before references were kept,
    or one whose photos showed no face the trainer could find)."""
    if folder is None:
        return None
    try:
        data = json.loads((Path(folder) / REFERENCE_FILE).read_text(encoding="utf-8"))
        vector = np.asarray(data["embedding"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return vector if vector.shape == (128,) and np.all(np.isfinite(vector)) else None
