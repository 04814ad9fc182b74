"""The seed's GenerateImage, as an engine call: a visitor in a pose, in a POI photo.

Numbered like a diffusers pipeline: 1. check the request, 2. pick the action, 3. place the
action's pose image and masks on the POI photo, 4. body pass (ControlNet-openpose
inpainting inside the pose mask), 5. face pass with the visitor's LoRA (only with a valid
one), 6. save `outputs/<code>.png` with its metadata. Outside the pose mask the POI photo is
kept exactly: both passes' results are composited back through the masks.

The face pass knows how close it came: it measures the face it painted against the visitor's
reference kept beside their LoRA (`engine.likeness`), and with `CARTOLINA_FACE_TRIES=N` tries
up to N seeds, keeping the closest and stopping once one is close enough. The distance, the
tries and the likeness in words (high, fair, low) go in the result and the private record,
never in the public PNG.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from filelock import FileLock
from PIL import Image

from engine import codes, images, likeness, picker, poses, prompts
from engine.catalog import Catalog
from engine.config import Settings
from engine.diskfull import disk_full_guard
from engine.errors import Cancelled, InvalidInput, NotFound
from engine.messages import Msg
from engine.models import LORA_WEIGHTS, Pipelines, get_pipelines
from engine.pose_check import offerable_actions

FIELDS = ("poi_name", "poi_image", "action_name", "action_shot_type", "age", "gender",
          "other_details", "selected_lora", "dynamic_action_selection", "action_prompt",
          "seed", "steps", "guidance", "face_seed")
STEPS_RANGE = (1, 150)
GUIDANCE_RANGE = (0.0, 30.0)
SEED_MAX = 2**32 - 1
DEFAULT_STEPS = 30
DEFAULT_GUIDANCE = 7.5
BODY_RESOLUTION = 512
FACE_RESOLUTION = 512
# The face pass repaints the face the body pass drew rather than inventing one from noise:
# enough strength for the LoRA to impose the visitor's features, little enough to keep the
# head's pose, light and size consistent with the body around it.
FACE_STRENGTH = 0.6


@dataclass(frozen=True)
class Request:
    poi_name: str
    poi_image: str
    action_name: str | None
    action_shot_type: str
    age: str
    gender: str
    other_details: str = ""
    selected_lora: str | None = None
    dynamic_action_selection: bool = False
    action_prompt: str = ""
    seed: int | None = None
    steps: int = DEFAULT_STEPS
    guidance: float = DEFAULT_GUIDANCE
    # The face pass's first seed (default: seed + 1). With the same `seed`, the same body is
    # painted again and only the face changes: the page's "try the face again".
    face_seed: int | None = None


@dataclass
class Progress:
    stage: str        # "body" or "face"
    step: int         # within the stage, 1-based
    stage_steps: int
    done: int         # over both passes
    total: int


@dataclass
class Result:
    code: str
    path: str
    url: str
    action_name: str
    face_pass: bool
    face_pass_note: str
    prompt: str
    negative_prompt: str
    face_prompt: str | None
    prompt_cut: list
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    models: dict
    ranking: list | None = None
    timings_s: dict = field(default_factory=dict)
    face_seed: int | None = None  # the face pass's seed that was kept
    # How close the face came to the visitor's (see `face_pass_likeness`); None without a face pass.
    likeness: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# --- 1. checks ---------------------------------------------------------------------------------

def _choice(name: str, value, accepted: tuple) -> str:
    if not isinstance(value, str) or value.strip().lower() not in accepted:
        raise InvalidInput(name, value, accepted)
    return value.strip().lower()


def _bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    if value is None:
        return False
    raise InvalidInput(name, value, Msg("true or false"))


def _int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise InvalidInput(name, value, Msg("an integer from {lo} to {hi}", lo=lo, hi=hi))
    try:
        number = int(value)
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise InvalidInput(name, value, Msg("an integer from {lo} to {hi}", lo=lo, hi=hi)) from None
    if not lo <= number <= hi:
        raise InvalidInput(name, value, Msg("an integer from {lo} to {hi}", lo=lo, hi=hi))
    return number


def _float(name: str, value, lo: float, hi: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(name, value, Msg("a number from {lo} to {hi}", lo=lo, hi=hi)) from None
    if isinstance(value, bool) or not lo <= number <= hi:
        raise InvalidInput(name, value, Msg("a number from {lo} to {hi}", lo=lo, hi=hi))
    return number


def check_request(raw: Mapping | Request, catalog: Catalog) -> Request:
    """Every field against its accepted values and the catalog; the first bad one raises.

    Never fixes input silently: a wrong value is an error naming the field, the value and
    what would have been accepted. The only tolerated miss is an unknown LoRA code, as in
    the seed: the picture is then made without the face pass.
    """
    data = asdict(raw) if isinstance(raw, Request) else dict(raw)
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput(unknown[0], data[unknown[0]], FIELDS, reason=Msg("unknown field"))
    for required in ("poi_name", "poi_image", "action_shot_type", "age", "gender"):
        if data.get(required) in (None, ""):
            raise InvalidInput(required, data.get(required), _accepted_for(required, catalog),
                               reason=Msg("missing"))
    pois = catalog.poi_names()
    if data["poi_name"] not in pois:
        raise InvalidInput("poi_name", data["poi_name"], pois or "none: the catalog has no POIs",
                           reason=Msg("unknown place"))
    poi_images = [i.name for i in catalog.list_poi_images(data["poi_name"])]
    if data["poi_image"] not in poi_images:
        raise InvalidInput("poi_image", data["poi_image"], poi_images or "none: this POI has no images",
                           reason=Msg("not a photo of {poi}", poi=data["poi_name"]))
    shot = poses.check_shot_type(data["action_shot_type"])
    age = _choice("age", data["age"], prompts.AGES)
    gender = _choice("gender", data["gender"], prompts.GENDERS)
    details = prompts.check_details(data.get("other_details"))
    dynamic = _bool("dynamic_action_selection", data.get("dynamic_action_selection", False))
    action_prompt = ""
    action = data.get("action_name") or None
    actions = catalog.action_names()
    if dynamic:
        action_prompt = picker.check_action_prompt(data.get("action_prompt"))
        action = None
    else:
        if action is None:
            raise InvalidInput("action_name", action, actions or "none: the catalog has no actions",
                               reason=Msg("missing (or set dynamic_action_selection with an action_prompt)"))
        if action not in actions:
            raise InvalidInput("action_name", action, actions or "none", reason=Msg("unknown pose"))
        have = catalog.shot_types(action)
        if shot not in have:
            raise InvalidInput("action_shot_type", shot, have or "none",
                               reason=Msg("the pose {action} has no images for this distance", action=action))
        if data.get("action_prompt"):
            action_prompt = picker.check_action_prompt(data["action_prompt"])
    lora = data.get("selected_lora")
    lora = codes.check_code(lora, "selected_lora") if lora not in (None, "") else None
    seed = data.get("seed")
    seed = None if seed in (None, "") else _int("seed", seed, 0, SEED_MAX)
    steps = data.get("steps")
    steps = DEFAULT_STEPS if steps in (None, "") else _int("steps", steps, *STEPS_RANGE)
    guidance = data.get("guidance")
    guidance = DEFAULT_GUIDANCE if guidance in (None, "") else _float("guidance", guidance, *GUIDANCE_RANGE)
    face_seed = data.get("face_seed")
    face_seed = None if face_seed in (None, "") else _int("face_seed", face_seed, 0, SEED_MAX)
    return Request(data["poi_name"], data["poi_image"], action, shot, age, gender, details, lora,
                   dynamic, action_prompt, seed, steps, guidance, face_seed)


def _accepted_for(name: str, catalog: Catalog):
    return {"poi_name": lambda: catalog.poi_names() or "a POI name", "poi_image": lambda: "an image name of the POI",
            "action_shot_type": lambda: poses.SHOT_TYPES, "age": lambda: prompts.AGES,
            "gender": lambda: prompts.GENDERS}[name]()


# --- 2. action -----------------------------------------------------------------------------------

def choose_action(req: Request, catalog: Catalog) -> tuple[str, list | None]:
    """The requested action, or the best-ranked of the poses offered to visitors (all three
    distances present and valid, `pose_check.offerable_actions`): a pose a curator is still
    building must not be picked from words either."""
    if not req.dynamic_action_selection:
        return req.action_name, None
    offered = set(offerable_actions(catalog))
    candidates = [a for a in catalog.list_actions()
                  if a.name in offered and req.action_shot_type in catalog.shot_types(a.name)]
    if not candidates:
        raise InvalidInput("action_shot_type", req.action_shot_type, "a shot type some action has images for",
                           reason=Msg("no pose has images for this distance"))
    ranking = picker.rank_actions(req.action_prompt, candidates)
    return ranking["ranking"][0]["action_name"], ranking


# --- 3. placing the action on the POI -----------------------------------------------------------------

@dataclass
class Scene:
    poi: Image.Image
    poi_description: str
    action_description: str
    control: Image.Image
    pose_mask: Image.Image
    face_mask: Image.Image


def prepare_scene(req: Request, action_name: str, catalog: Catalog) -> Scene:
    poi_rec = catalog.get_poi_image(req.poi_name, req.poi_image)
    action = catalog.get_action(action_name)
    rec = catalog.get_action_image(action_name, req.action_shot_type)
    poi = catalog.open_asset(poi_rec.file)
    action_images = catalog.load_action_images(rec)
    placement = poses.placement_from_dict(rec.placement, poses.DEFAULT_PLACEMENT[req.action_shot_type])
    placed = poses.compose_on_poi(poi.size, action_images, placement)
    if placed["pose_mask"].getbbox() is None:
        raise InvalidInput("placement", rec.placement, "a placement that keeps the person inside the photo",
                           reason=Msg("the pose lands entirely outside the photo"))
    return Scene(poi, poi_rec.description, action.description, placed["pose"], placed["pose_mask"],
                 placed["face_mask"])


def _crop_padding(mask: Image.Image, fraction: float, minimum: int) -> int:
    """Context around a mask for the crop: a share of the mask's own size."""
    box = mask.getbbox()
    if box is None:
        return minimum
    return max(minimum, int(max(box[2] - box[0], box[3] - box[1]) * fraction))


def face_region(mask: Image.Image, fraction: float = 0.5) -> tuple[int, int, int, int] | None:
    """Where to look for the painted face: the face mask's box with a margin of `fraction` of
    its size on each side (the head, hair and chin around the masked face), inside the picture."""
    box = mask.getbbox()
    if box is None:
        return None
    m = int(max(box[2] - box[0], box[3] - box[1]) * fraction)
    return (max(0, box[0] - m), max(0, box[1] - m), min(mask.width, box[2] + m), min(mask.height, box[3] + m))


def face_pass_likeness(tries: list[dict], kept: int | None, settings: Settings, note: str) -> dict:
    """The likeness record of a face pass: the distance of the face kept (None: not measured),
    its level in words (high, fair, low), every try's seed and distance, and why it stopped."""
    dist = tries[kept]["distance"] if kept is not None else None
    return {"distance": dist, "level": likeness.likeness_level(dist, settings.face_close, settings.face_threshold),
            "threshold": settings.face_threshold, "close": settings.face_close, "tries": tries,
            "note": note}


# --- the whole call ----------------------------------------------------------------------------------

def lora_folder(settings: Settings, code: str) -> tuple[Path | None, str]:
    """(folder, note): the LoRA to wear, or None and why the face pass is skipped."""
    folder = settings.loras_dir / code
    if (folder / LORA_WEIGHTS).is_file():
        return folder, Msg("face pass with LoRA {code}", code=code)
    if (settings.jobs_dir / code).is_dir():
        return None, Msg("LoRA {code} is not ready yet (still training or failed); made without the face pass", code=code)
    return None, Msg("no LoRA with code {code}; made without the face pass", code=code)


def _trigger_words(folder: Path) -> str:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        words = meta.get("trigger_words")
        return words if isinstance(words, str) and words.strip() else prompts.DEFAULT_TRIGGER
    except (OSError, ValueError):
        return prompts.DEFAULT_TRIGGER


def generate(raw: Mapping | Request, settings: Settings, *, catalog: Catalog | None = None,
             pipelines: Pipelines | None = None,
             on_progress: Callable[[Progress], bool | None] | None = None,
             code: str | None = None) -> Result:
    """Make one picture; returns its code. `on_progress` returning False cancels the run.

    `code` is the one the picture queue promised the visitor at submit time; it is kept
    unless, against all odds, another process saved a picture under it meanwhile.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 4)
        return now

    catalog = catalog or Catalog.open(settings)
    # 1. check
    req = check_request(raw, catalog)
    t = lap("check", t0)
    # 2. pick the action
    action_name, ranking = choose_action(req, catalog)
    t = lap("pick", t)
    # 3. place the pose and masks on the POI photo
    scene = prepare_scene(req, action_name, catalog)
    lora_dir, face_note = (None, Msg("no LoRA code given; made without the face pass"))
    if req.selected_lora:
        lora_dir, face_note = lora_folder(settings, req.selected_lora)
    t = lap("prepare", t)
    pipes = pipelines or get_pipelines(settings)
    t = lap("models", t)
    trigger = _trigger_words(lora_dir) if lora_dir else prompts.DEFAULT_TRIGGER
    built = prompts.build_prompts(poi_description=scene.poi_description,
                                  action_description=scene.action_description,
                                  shot_type=req.action_shot_type, age=req.age, gender=req.gender,
                                  details=req.other_details, trigger_words=trigger,
                                  tokenizer=pipes.tokenizer)
    seed = req.seed if req.seed is not None else secrets.randbelow(SEED_MAX + 1)
    done = [0]

    def step_callback(stage: str, stage_steps: int):
        def cb(pipe, step, timestep, kwargs):
            done[0] += 1
            if on_progress is not None and on_progress(
                    Progress(stage, step + 1, stage_steps, done[0], total)) is False:
                raise Cancelled(f"generation cancelled during the {stage} pass at step {step + 1}")
            return kwargs
        return cb

    reference = likeness.load_reference(lora_dir)
    face_tries = settings.face_tries if reference is not None else 1
    face_seed = req.face_seed if req.face_seed is not None else (seed + 1) % (SEED_MAX + 1)
    import torch
    steps, guidance = pipes.plan(req.steps, req.guidance)  # fast mode: its few steps, no guidance
    with pipes.lock, torch.inference_mode(), pipes.autocast():
        body_steps = planned_steps(pipes.body.scheduler, steps, 1.0)
        face_steps = planned_steps(pipes.face.scheduler, steps, FACE_STRENGTH) if lora_dir else 0
        total = body_steps + face_steps * face_tries  # at most: the tries may stop early
        # 4. body pass: a person in the pose, inside the pose mask only
        with pipes.lora(None, None):
            body = pipes.body(
                prompt=built.prompt, negative_prompt=built.negative_prompt,
                image=scene.poi, mask_image=scene.pose_mask, control_image=scene.control,
                height=BODY_RESOLUTION, width=BODY_RESOLUTION, strength=1.0,
                padding_mask_crop=_crop_padding(scene.pose_mask, 0.08, 8),
                num_inference_steps=steps, guidance_scale=guidance,
                generator=torch.Generator("cpu").manual_seed(seed),
                callback_on_step_end=step_callback("body", body_steps),
            ).images[0]
        picture = Image.composite(body, scene.poi, scene.pose_mask)
        t = lap("body", t)
        # 5. face pass: the visitor's face, with their LoRA, on a crop around the face; each
        # try measured against the visitor's reference, the closest kept
        face_likeness = None
        if lora_dir is not None:
            painted, face_likeness, face_seed = paint_face(
                pipes, req, built, picture, scene.face_mask, lora_dir, reference, settings,
                face_seed, face_tries, step_callback("face", face_steps), steps, guidance)
            picture = Image.composite(painted, picture, scene.face_mask)
            t = lap("face", t)
    models = {"inpaint": pipes.inpaint_model, "controlnet": pipes.controlnet_model,
              "lora": req.selected_lora if lora_dir else None}
    # 6. save with its metadata
    meta = {"request": asdict(req), "action_name": action_name, "prompt": built.prompt,
            "negative_prompt": built.negative_prompt,
            "face_prompt": built.face_prompt if lora_dir else None, "prompt_cut": built.cut,
            "seed": seed, "steps": steps, "guidance": guidance, "face_pass": lora_dir is not None,
            "models": models, "precision": pipes.precision.name,
            "fast": pipes.fast is not None, "face_strength": FACE_STRENGTH if lora_dir else None,
            "face_seed": face_seed if lora_dir else None, "likeness": face_likeness}
    code, path = save_output(settings, picture, meta, code)
    lap("save", t)
    timings["total"] = round(time.perf_counter() - t0, 4)
    url = f"{settings.public_url}/data/outputs/{code}.png" if settings.public_url else f"/data/outputs/{code}.png"
    return Result(code=code, path=str(path), url=url, action_name=action_name,
                  face_pass=lora_dir is not None, face_pass_note=face_note, prompt=built.prompt,
                  negative_prompt=built.negative_prompt,
                  face_prompt=built.face_prompt if lora_dir else None, prompt_cut=built.cut,
                  seed=seed, steps=steps, guidance=guidance, width=picture.width,
                  height=picture.height, models=models,
                  ranking=ranking["ranking"] if ranking else None, timings_s=timings,
                  face_seed=face_seed if lora_dir else None, likeness=face_likeness)


def paint_face(pipes: Pipelines, req: Request, built, picture: Image.Image, face_mask: Image.Image,
               lora_dir: Path, reference, settings: Settings, first_seed: int, tries: int,
               callback, steps: int | None = None, guidance: float | None = None
               ) -> tuple[Image.Image, dict, int]:
    """The face pass: up to `tries` seeds from `first_seed`, each face measured against the
    visitor's `reference`, the closest kept; it stops at a face closer than `settings.face_close`,
    and at a try whose face cannot be found or measured (no reference, or the demo models'
    noise), since further tries could not be judged either. Returns (the kept face pass's
    image, its likeness record, its seed); the caller holds the pipelines' lock. `steps` and
    `guidance`: what `Pipelines.plan` made of the request's (default: the request's)."""
    import torch
    steps = req.steps if steps is None else steps
    guidance = req.guidance if guidance is None else guidance
    region = face_region(face_mask)
    records, best, best_image, note = [], None, None, ""
    with pipes.lora(req.selected_lora, lora_dir):
        for i in range(tries):
            seed = (first_seed + i) % (SEED_MAX + 1)
            image = pipes.face(
                prompt=built.face_prompt, negative_prompt=built.face_negative_prompt,
                image=picture, mask_image=face_mask,
                height=FACE_RESOLUTION, width=FACE_RESOLUTION, strength=FACE_STRENGTH,
                padding_mask_crop=_crop_padding(face_mask, 0.5, 8),
                num_inference_steps=steps, guidance_scale=guidance,
                generator=torch.Generator("cpu").manual_seed(seed),
                callback_on_step_end=callback,
            ).images[0]
            if reference is None:
                records.append({"face_seed": seed, "distance": None})
                best, best_image, note = 0, image, "no reference face kept with this LoRA: not measured"
                break
            dist = likeness.score_region(Image.composite(image, picture, face_mask), region, reference)
            records.append({"face_seed": seed, "distance": None if dist is None else round(dist, 4)})
            if dist is None:
                if best is None:
                    best, best_image, note = i, image, "no face found in the painted face: not measured"
                else:
                    note = f"no face found in try {i + 1}: the closest try before it kept"
                break
            if best is None or dist < records[best]["distance"]:
                best, best_image = i, image
            if dist < settings.face_close:
                note = "close enough"
                break
        else:
            note = f"the closest of {tries} tries" if tries > 1 else "one try"
    kept = best if records[best]["distance"] is not None else None
    return best_image, face_pass_likeness(records, kept, settings, note), records[best]["face_seed"]


def planned_steps(scheduler, steps: int, strength: float) -> int:
    """How many denoising steps a pipeline call will make, for an honest progress bar.

    Mirrors diffusers' `get_timesteps`: multistep schedulers (PNDM) add steps, and a
    strength below 1 skips the first ones.
    """
    scheduler.set_timesteps(steps)
    order = getattr(scheduler, "order", 1)
    init = min(int(steps * strength), steps)
    start = max(steps - init, 0)
    return len(scheduler.timesteps[start * order:])


def save_output(settings: Settings, picture: Image.Image, meta: dict,
                wanted: str | None = None) -> tuple[str, Path]:
    """outputs/<code>.png under `wanted` if still free, else a fresh code; the lock makes the
    code unique across processes.

    The PNG is public (anyone with its code fetches it), so its metadata leaves out the LoRA
    code, which would let them paint that visitor's face; the full record goes to
    `records/<code>.json`, written first so that no picture exists without one (`forget`
    finds a visitor's pictures through them)."""
    settings.outputs_dir.mkdir(parents=True, exist_ok=True)
    with disk_full_guard(settings.outputs_dir), FileLock(str(settings.outputs_dir / ".codes.lock"), timeout=30):
        taken = lambda c: (settings.outputs_dir / f"{c}.png").exists() or record_path(settings, c).exists()  # noqa: E731
        code = wanted if wanted and codes.is_code(wanted) and not taken(wanted) else codes.new_code(taken)
        meta = dict(meta, code=code)
        record = record_path(settings, code)
        images.atomic_write_bytes(record, json.dumps(meta, ensure_ascii=False, default=str).encode("utf-8"))
        text = {"cartolina": json.dumps(public_meta(meta), ensure_ascii=False, default=str),
                "parameters": _a1111_parameters(meta)}
        try:
            path = images.save_png(picture, settings.outputs_dir / f"{code}.png", text)
        except BaseException:
            record.unlink(missing_ok=True)
            raise
    return code, path


def public_meta(meta: dict) -> dict:
    """A picture's record as anyone who fetches the picture may read it: no LoRA code, and not
    how close the face came to the visitor's."""
    public = {k: v for k, v in meta.items() if k != "likeness"}
    if isinstance(public.get("request"), dict):
        public["request"] = {k: v for k, v in public["request"].items() if k != "selected_lora"}
    if isinstance(public.get("models"), dict):
        public["models"] = {k: v for k, v in public["models"].items() if k != "lora"}
    return public


def record_path(settings: Settings, code: str) -> Path:
    return settings.records_dir / f"{codes.check_code(code, 'code')}.json"


def read_record(settings: Settings, code: str) -> dict:
    """The full record of a picture, LoRA code included (see `save_output`)."""
    try:
        return json.loads(record_path(settings, code).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"code: no picture record with code {code}") from None


def _a1111_parameters(meta: dict) -> str:
    """The 'parameters' text AUTOMATIC1111 and many viewers show for a PNG."""
    return (f"{meta['prompt']}\nNegative prompt: {meta['negative_prompt']}\n"
            f"Steps: {meta['steps']}, CFG scale: {meta['guidance']}, Seed: {meta['seed']}, "
            f"Model: {meta['models']['inpaint']}")


def read_output_meta(path: Path) -> dict:
    """The metadata a picture carries in public (`public_meta`)."""
    with Image.open(path) as img:
        return json.loads(img.text["cartolina"])


def find_output(settings: Settings, code: str) -> Path:
    code = codes.check_code(code, "code")
    path = settings.outputs_dir / f"{code}.png"
    if not path.is_file():
        raise NotFound(f"code: no picture with code {code}")
    return path
