"""The face-LoRA trainer: `python -m engine.training.train_lora --job DIR`.

It runs detached, outliving the page that started it, so it talks only through files (see
`engine.training.jobs`): it reads `spec.json` and the photos, writes `status.json` with a
heartbeat, checkpoints to `checkpoint-N/`, and leaves `loras/<code>/` behind.

What it trains, and why that way:

- a LoRA (peft) on the attention projections of the *inpainting* UNet, because the face pass
  paints the face with that very UNet through a mask; training it on inpainting inputs
  (noisy latents + mask + masked-image latents) teaches the adapter the job it will do;
- masks around the face (the face box grown twice) and random rectangles, so the adapter
  learns the face from its surroundings and also copes with masks of other shapes;
- image latents, masked-image latents and the prompt's embedding computed once: the VAE and
  the text encoder are frozen, so encoding them again at every step (as diffusers'
  DreamBooth example does by default) only burns time — see `bench/bench_train.py`;
- min-SNR loss weighting (gamma 5) for faster, steadier convergence at few steps; fused
  AdamW; fp16/bf16 autocast on CUDA and bf16 autocast on CPUs with native bf16 (fp16 is slow
  on every CPU, bf16 2× faster than fp32 on those: engine.precision); channels_last on CUDA
  and `CARTOLINA_COMPILE` as for pictures (engine.speedups); gradient checkpointing only on
  cards under 8 GiB (`use_checkpointing`: it saves little memory here and costs 1.8× speed);
- every random draw comes from one seeded generator saved in each checkpoint, so a run
  resumed from `checkpoint-N` ends with exactly the weights of an uninterrupted one;
- the best checkpoint, not the last one (`Validator`): a face LoRA overtrains into a worse
  likeness, so `CARTOLINA_FACE_VALIDATION` photos (1) are held back from training, and at each
  checkpoint and at the end their faces are painted with the LoRA as it stands (a short
  inpainting run, the face masked out) and measured against the visitor's face
  (`engine.likeness`); the LoRA left behind is the closest checkpoint's, and every score goes
  in `meta.json`. The visitor's reference, the mean embedding of their photos, is kept beside
  the LoRA (`face_reference.json`) for the face pass to measure its pictures. Where no face
  is found in the paintings (the demo models paint noise), the last checkpoint is kept and
  `meta.json` says why.

Heavy libraries are imported inside functions: the heartbeat must start beating before
torch has finished importing, or a short grace would call a healthy trainer dead.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from engine import likeness, precision, speedups
from engine.diskfull import disk_full_error, is_disk_full
from engine.errors import Cancelled, CartolinaError, JobError, ModelError
from engine.models import LORA_WEIGHTS  # the face pass loads what the trainer writes
from engine.training import jobs

TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]
FACE_GROW = (0.25, 0.75)  # the two face masks: box grown by 25 % and by 75 % on each side
VALIDATION_GUIDANCE = 7.5  # the face pass's default guidance


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [trainer {os.getpid()}] {message}", flush=True)


# --- command line --------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m engine.training.train_lora",
        description="Train a face LoRA for one job folder (spec.json + photos/) and write "
                    "loras/<code>/. Normally started by the job queue, not by hand.")
    parser.add_argument("--job", required=True, type=Path, metavar="DIR", help="the job folder")
    return parser.parse_args(argv)


# --- data ----------------------------------------------------------------------------------------

def _face_masks(res: int, box, grow: float):
    import numpy as np
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    m = np.zeros((res, res), dtype=np.float32)
    m[max(0, int(y0 - h * grow)):min(res, int(math.ceil(y1 + h * grow))),
      max(0, int(x0 - w * grow)):min(res, int(math.ceil(x1 + w * grow)))] = 1.0
    return m


def _random_mask(res: int, rng):
    import numpy as np
    m = np.zeros((res, res), dtype=np.float32)
    w, h = (int(res * rng.uniform(0.25, 0.75)) for _ in range(2))
    x, y = int(rng.integers(0, res - w + 1)), int(rng.integers(0, res - h + 1))
    m[y:y + h, x:x + w] = 1.0
    return m


def build_masks(res: int, face_box, n_random: int, rng) -> list:
    """Face masks first (what the face pass will use), then random rectangles."""
    return [_face_masks(res, face_box, g) for g in FACE_GROW] + [_random_mask(res, rng) for _ in range(n_random)]


def load_components(base_model: str):
    """tokenizer, text encoder, VAE, UNet and a DDPM scheduler from the pipeline the face pass uses."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer
    path = Path(base_model)
    try:
        if path.is_dir():
            tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer")
            text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder")
            vae = AutoencoderKL.from_pretrained(path, subfolder="vae")
            unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet")
            scheduler = DDPMScheduler.from_pretrained(path, subfolder="scheduler")
        else:  # a single .safetensors checkpoint
            from diffusers import StableDiffusionInpaintPipeline
            pipe = StableDiffusionInpaintPipeline.from_single_file(str(path))
            tokenizer, text_encoder, vae, unet = pipe.tokenizer, pipe.text_encoder, pipe.vae, pipe.unet
            scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    except Exception as exc:
        raise ModelError(f"base_model: cannot load {base_model} ({type(exc).__name__}: {exc})") from exc
    if unet.config.in_channels != 9:
        raise ModelError(f"base_model: {base_model} is not an inpainting model (UNet has "
                         f"{unet.config.in_channels} input channels; accepted: 9)")
    return tokenizer, text_encoder, vae, unet, scheduler


SMALL_CARD_BYTES = 8 * 2**30


def use_checkpointing(setting: str, device: str, card_bytes: int | None) -> bool:
    """Gradient checkpointing trades speed for memory, and at batch 1 with a frozen base there
    is little memory to win: on an H100 at true size it cut the peak from 5.54 to 5.14 GiB
    and made each step 1.82× slower (docs/benchmarks.md). So `auto` turns it on only for a
    card under 8 GiB, like the seed's 6 GB one, where those 0.4 GiB decide whether it fits."""
    if setting != "auto":
        return setting == "on"
    return device == "cuda" and card_bytes is not None and card_bytes < SMALL_CARD_BYTES


def _card_bytes(device: str) -> int | None:
    import torch
    return torch.cuda.get_device_properties(0).total_memory if device == "cuda" else None


def _precision(opts: jobs.TrainOptions, device: str, settings_dtype: str, cpu_bf16: str = "auto"):
    """(mode, precision): `no`/`fp16`/`bf16` (engine.precision.training_mode), and the frozen
    base's weights dtype with the autocast block every UNet call runs in."""
    import torch
    mode = precision.training_mode(opts.mixed_precision, settings_dtype, device, precision.native_bf16(cpu_bf16))
    dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[mode]
    return mode, precision.Precision(dtype, None if mode == "no" else dtype, "cuda" if device == "cuda" else "cpu")


class Cache:
    """Latents and text embedding computed once: the frozen encoders never run in the loop."""

    def __init__(self, mean, std, masks, masked, text):
        self.mean, self.std, self.masks, self.masked, self.text = mean, std, masks, masked, text


def encode_dataset(spec: dict, job: Path, opts, tokenizer, text_encoder, vae, device, dtype) -> Cache:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    res = opts.resolution
    rng = np.random.default_rng(opts.seed)
    caption = opts.caption.replace("{trigger}", opts.trigger_words.strip())
    with torch.no_grad():
        ids = tokenizer(caption, padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids.to(device)
        text = text_encoder(ids)[0].to(torch.float32)
        pixels, masks = [], []
        for entry in spec["photos"]:
            img = Image.open(job / entry["file"]).convert("RGB")
            if img.size != (res, res):
                raise JobError(f"photos: {entry['file']} is {img.size[0]}x{img.size[1]}, expected {res}x{res}")
            pixels.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1))
            masks.append(torch.from_numpy(np.stack(build_masks(res, entry["face_box"], opts.random_masks, rng))))
        pixels = torch.stack(pixels)                      # N, 3, H, W
        masks = torch.stack(masks)[:, :, None]            # N, V, 1, H, W
        n, v = masks.shape[:2]
        masked = pixels[:, None] * (masks < 0.5)          # as the inpainting pipeline masks its input
        sf = vae.config.scaling_factor

        def encode(batch):  # one at a time: a 512 px VAE pass on many images at once spikes memory
            # (on a 6 GB card the UNet is already loaded); it runs once, so speed hardly matters
            out = [vae.encode(chunk.to(device, dtype)).latent_dist for chunk in batch.split(1)]
            return torch.cat([d.mean.float() for d in out]) * sf, torch.cat([d.std.float() for d in out]) * sf

        mean, std = encode(pixels)
        masked_lat, _ = encode(masked.flatten(0, 1))
        lat_hw = mean.shape[-2:]
        small = F.interpolate(masks.flatten(0, 1), size=lat_hw)  # nearest, as the pipeline does
        masks_all = small.view(n, v, 1, *lat_hw).to(device)
        masked_all = masked_lat.view(n, v, *masked_lat.shape[1:])
    return Cache(mean, std, masks_all, masked_all, text)


def _min_snr_weights(scheduler, timesteps, gamma: float):
    import torch
    from diffusers.training_utils import compute_snr
    snr = compute_snr(scheduler, timesteps)
    weights = torch.clamp(snr, max=gamma)
    if scheduler.config.prediction_type == "v_prediction":
        return weights / (snr + 1)
    return weights / snr


# --- checkpoints ---------------------------------------------------------------------------------

def save_checkpoint(job: Path, step: int, unet, optimizer, generator, scaler, loss, keep: int,
                    extra: dict | None = None, protect: int | None = None) -> Path:
    """Written to a hidden folder and renamed, so a kill mid-save never leaves a torn one.

    `extra` goes into its state.json (the validation scores so far); the checkpoint of step
    `protect` (the closest so far) is kept beside the latest `keep`, so its weights can still
    be the ones left behind."""
    import torch
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file
    stage = Path(tempfile.mkdtemp(prefix=f".checkpoint-{step}-", dir=job))
    lora = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in get_peft_model_state_dict(unet).items()}
    save_file(lora, str(stage / "lora.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "scaler": scaler.state_dict() if scaler is not None else None}, stage / "trainer.pt")
    (stage / "state.json").write_text(json.dumps({"step": step, "loss": loss, **(extra or {})}))
    final = job / f"checkpoint-{step}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(stage, final)
    for n, old in jobs.checkpoints(job)[:-keep]:
        if n != protect:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(folder: Path, unet, optimizer, generator, scaler) -> tuple[int, float | None]:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    result = set_peft_model_state_dict(unet, load_file(str(folder / "lora.safetensors")))
    if getattr(result, "unexpected_keys", None):
        raise JobError(f"{folder.name}: LoRA keys do not match this UNet ({result.unexpected_keys[:3]})")
    state = torch.load(folder / "trainer.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    info = json.loads((folder / "state.json").read_text())
    return int(info["step"]), info.get("loss")


# --- output --------------------------------------------------------------------------------------

def kohya_state_dict(peft_state: dict, alpha: float) -> dict:
    """The same LoRA under kohya-ss names (lora_unet_…​.lora_down/.lora_up/.alpha), the form
    AUTOMATIC1111 and ComfyUI load."""
    import torch
    from diffusers.utils import convert_state_dict_to_kohya
    converted = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in peft_state.items()})
    return {k: (torch.tensor(float(alpha)) if k.endswith(".alpha") else v.contiguous())
            for k, v in converted.items()}


def save_lora(loras_dir: Path, code: str, unet, meta: dict, alpha: float,
              files: dict[str, bytes] | None = None) -> Path:
    """loras/<code>/ appears complete or not at all (built aside, then renamed). `files` are
    written beside the weights (the visitor's face reference)."""
    import torch
    from diffusers import StableDiffusionInpaintPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    loras_dir.mkdir(parents=True, exist_ok=True)
    peft_state = {k: v.detach().to("cpu", torch.float32).contiguous()
                  for k, v in get_peft_model_state_dict(unet).items()}
    stage = Path(tempfile.mkdtemp(prefix=f".tmp-{code}-", dir=loras_dir))
    try:
        StableDiffusionInpaintPipeline.save_lora_weights(
            str(stage), unet_lora_layers=convert_state_dict_to_diffusers(peft_state),
            safe_serialization=True, weight_name=LORA_WEIGHTS,
            unet_lora_adapter_metadata=unet.peft_config["default"].to_dict())
        save_file(kohya_state_dict(peft_state, alpha), str(stage / f"{code}_kohya.safetensors"),
                  metadata={"ss_network_module": "networks.lora", "ss_network_dim": str(meta["rank"]),
                            "ss_network_alpha": str(alpha), "ss_base_model_version": "sd_v1",
                            "cartolina_trigger_words": meta["trigger_words"]})
        (stage / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))
        for name, data in (files or {}).items():
            (stage / name).write_bytes(data)
        os.chmod(stage, 0o755)  # mkdtemp makes it private; the studio and its server read it
        for f in stage.iterdir():
            os.chmod(f, 0o644)
        final = loras_dir / code
        if final.exists():
            shutil.rmtree(final)
        os.replace(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return final


# --- likeness: the visitor's reference and the checkpoint validation ------------------------------

@dataclass(frozen=True)
class ValidationPlan:
    """How the trainer chooses its checkpoint (engine.config, CARTOLINA_FACE_VALIDATION*):
    `held_back` photos are kept out of training and their faces painted at each checkpoint in
    `steps` inpainting steps; 0 turns it off (the last checkpoint is kept)."""

    held_back: int = 1
    steps: int = 20

    @classmethod
    def from_settings(cls, settings) -> "ValidationPlan":
        return cls(held_back=settings.face_validation, steps=settings.face_validation_steps)


def visitor_reference(job: Path, entries: list) -> list:
    """The embeddings of the visitor's faces in the job's crops (the photos where one is found)."""
    from PIL import Image
    vectors = []
    for entry in entries:
        with Image.open(job / entry["file"]) as img:
            vector = likeness.face_vector(img.convert("RGB"))
        if vector is not None:
            vectors.append(vector)
    return vectors


class Validator:
    """Paints the faces of the held-back photos with the LoRA as it stands and measures them.

    Each held-back photo gives two inputs, the face masks the trainer trains with (the face box
    grown by 25 % and by 75 %), painted from noise (strength 1: none of the real face shows
    through) with the training caption, at a fixed seed per input so that every checkpoint is
    judged on the same draws. The paintings' faces are measured against the visitor's reference
    (`likeness.score_paintings`). It shares the trainer's UNet (LoRA included) and VAE; the
    text encoder is not needed after the caption and the empty prompt are encoded here.
    """

    def __init__(self, entries: list, job: Path, opts, plan: ValidationPlan, reference, *, tokenizer,
                 text_encoder, vae, unet, scheduler, text, device: str, autocast):
        import torch
        from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline
        from PIL import Image

        res = opts.resolution
        self.images, self.masks = [], []
        for entry in entries:
            img = Image.open(job / entry["file"]).convert("RGB")
            for grow in FACE_GROW:
                self.images.append(img)
                self.masks.append(Image.fromarray((_face_masks(res, entry["face_box"], grow) * 255).astype("uint8")))
        self.seeds = [(opts.seed or 0) + i for i in range(len(self.images))]
        with torch.no_grad():
            ids = tokenizer("", padding="max_length", max_length=tokenizer.model_max_length,
                            truncation=True, return_tensors="pt").input_ids.to(device)
            self.negative = text_encoder(ids)[0].to(torch.float32)
        self.text = text
        self.unet, self.plan, self.reference = unet, plan, reference
        self.res, self.device, self.autocast, self.dtype = res, device, autocast, autocast.weights
        self.pipe = StableDiffusionInpaintPipeline(
            vae=vae, text_encoder=None, tokenizer=tokenizer, unet=unet,
            scheduler=DDIMScheduler.from_config(scheduler.config), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False)
        self.pipe.set_progress_bar_config(disable=True)

    @property
    def inputs(self) -> int:
        return len(self.images)

    def paint(self) -> list:
        import torch
        n = len(self.images)
        was_training = self.unet.training
        self.unet.eval()
        try:
            # Its own generators, and the global RNG restored: training draws stay as they were.
            with torch.random.fork_rng(devices=[]), torch.no_grad(), self.autocast.context():
                return self.pipe(
                    prompt_embeds=self.text.expand(n, -1, -1).to(self.dtype),
                    negative_prompt_embeds=self.negative.to(self.device).expand(n, -1, -1).to(self.dtype),
                    image=self.images, mask_image=self.masks, height=self.res, width=self.res,
                    strength=1.0, num_inference_steps=self.plan.steps, guidance_scale=VALIDATION_GUIDANCE,
                    generator=[torch.Generator("cpu").manual_seed(s) for s in self.seeds]).images
        finally:
            self.unet.train(was_training)

    def run(self, step: int) -> dict:
        """One checkpoint's validation: {step, distances (None: no face), score, seconds}."""
        t0 = time.perf_counter()
        distances = likeness.score_paintings(self.paint(), self.reference)
        rounded = [None if d is None else round(d, 4) for d in distances]
        score = likeness.checkpoint_score(distances)
        return {"step": step, "distances": rounded, "score": None if score is None else round(score, 4),
                "seconds": round(time.perf_counter() - t0, 3)}


def _closest_step(history: list) -> int | None:
    return likeness.closest({e["step"]: e["distances"] for e in history})


def _validations_left(step: int, total: int, every: int) -> int:
    """Validations still to come after `step`: one per regular checkpoint, one at the end."""
    return max(0, (total - 1) // every - step // every) + (1 if step < total else 0)


# --- the training run ----------------------------------------------------------------------------

def train(spec: dict, job: Path, loras_dir: Path, *, device: str = "cpu", dtype_setting: str = "auto",
          report: Callable[..., None] = lambda **_: None,
          should_stop: Callable[[], bool] = lambda: False, save_on_stop: Callable[[], bool] = lambda: False,
          stop_after: int | None = None, validation: ValidationPlan | None = None,
          cpu_bf16: str = "auto", channels_last: str = "auto", compile_backend: str = "") -> dict:
    """Train from the spec (resuming from the latest checkpoint) and write the LoRA.

    `report(step=, loss=, eta_s=)` is called after each step, and the loss curve goes to
    `loss.csv` for the page's chart; `should_stop()` is polled before each step and raises
    `Cancelled` (after a checkpoint if `save_on_stop()` says so: a shutdown, unlike a visitor's
    cancel, will be resumed). `stop_after` ends the run early after that step with a
    checkpoint (tests use it to simulate an interruption). `validation` says how the
    checkpoint is chosen (default: the settings, `ValidationPlan.from_settings`). `cpu_bf16`,
    `channels_last`, `compile_backend`: `CARTOLINA_CPU_BF16`, `CARTOLINA_CHANNELS_LAST` and
    `CARTOLINA_COMPILE` (engine.precision, engine.speedups). Returns the meta written.
    """
    import torch
    from peft import LoraConfig, set_peft_model_state_dict
    from safetensors.torch import load_file

    if validation is None:
        from engine.config import load_settings
        validation = ValidationPlan.from_settings(load_settings())

    opts = jobs.TrainOptions.from_dict(spec["options"]).checked()
    code = spec["code"]
    total = opts.total_steps
    alpha = float(opts.alpha or opts.rank)
    mode, autocast = _precision(opts, device, dtype_setting, cpu_bf16)
    dtype = autocast.weights
    log(f"device {device}, mixed precision {mode}, {total} steps, rank {opts.rank}, "
        f"lr {opts.learning_rate}, {opts.resolution} px, seed {opts.seed}")

    # 1. models, frozen
    tokenizer, text_encoder, vae, unet, scheduler = load_components(spec["base_model"])
    for m in (text_encoder, vae, unet):
        m.requires_grad_(False)
        m.to(device) if dtype == torch.float32 else m.to(device, dtype=dtype)
    text_encoder.eval()
    vae.eval()
    if should_stop():
        raise Cancelled("cancelled before training started")

    # 2. the visitor's face: the reference kept with the LoRA, and the photos held back to
    # choose the checkpoint (only when there is a face to compare with)
    photos = spec["photos"]
    reference_vectors = visitor_reference(job, photos)
    reference = likeness.mean_embedding(reference_vectors) if reference_vectors else None
    held = min(validation.held_back, len(photos) - 1) if reference is not None else 0
    trained, held_back = photos[:len(photos) - held], photos[len(photos) - held:]
    if reference is None:
        why_last = f"no face found in the photos at {opts.resolution} px: no reference kept, the last checkpoint kept"
    elif validation.held_back == 0:
        why_last = "validation off (CARTOLINA_FACE_VALIDATION=0): the last checkpoint kept"
    elif not held:
        why_last = "one photo only, none to hold back: the last checkpoint kept"
    else:
        why_last = "no face found in the validation paintings: the last checkpoint kept"
    log(f"visitor's face found in {len(reference_vectors)} of {len(photos)} photos; "
        f"{held} held back to choose the checkpoint")

    # 3. everything the frozen encoders produce, once
    t0 = time.perf_counter()
    cache = encode_dataset(dict(spec, photos=trained), job, opts, tokenizer, text_encoder, vae, device, dtype)
    n_img, n_var = cache.masks.shape[:2]
    log(f"cached {n_img} photos × {n_var} masks in {time.perf_counter() - t0:.1f} s")
    validator = None
    if held:
        validator = Validator(held_back, job, opts, validation, reference, tokenizer=tokenizer,
                              text_encoder=text_encoder, vae=vae, unet=unet, scheduler=scheduler,
                              text=cache.text.to(device), device=device, autocast=autocast)
    del text_encoder, vae  # not needed any more (the validator keeps the VAE): memory to the UNet
    if device == "cuda":
        torch.cuda.empty_cache()

    # 4. the LoRA, seeded so the same spec gives the same start
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opts.seed)
        unet.add_adapter(LoraConfig(r=opts.rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                    target_modules=TARGET_MODULES))
    for p in unet.parameters():
        if p.requires_grad:
            p.data = p.data.float()  # trainable weights in fp32 even when the base is in half
    if use_checkpointing(opts.gradient_checkpointing, device, _card_bytes(device)):
        unet.enable_gradient_checkpointing()
    speedups.use_sdpa(unet)
    if speedups.channels_last_on(channels_last, device):
        speedups.to_channels_last(unet)
    if compile_backend:
        speedups.compile_modules(unet, device=device, backend=compile_backend)
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = speedups.fused_adamw(params, lr=opts.learning_rate, betas=(0.9, 0.999),
                                     weight_decay=1e-2, eps=1e-8)
    scaler = torch.amp.GradScaler("cuda") if mode == "fp16" else None
    gen = torch.Generator(device="cpu").manual_seed(opts.seed)

    # 5. resume
    step, loss_value, history = 0, None, []
    ckpt = jobs.latest_checkpoint(job)
    if ckpt:
        step, loss_value = load_checkpoint(ckpt[1], unet, optimizer, gen, scaler)
        history = json.loads((ckpt[1] / "state.json").read_text()).get("likeness") or []
        log(f"resumed from {ckpt[1].name} at step {step}")
    losses = jobs.LossLog(job, total, resumed_at=step)
    report(step=step, loss=loss_value, eta_s=None, force=True)

    def checkpoint(at: int) -> None:
        save_checkpoint(job, at, unet, optimizer, gen, scaler, loss_value, opts.checkpoints_keep,
                        extra={"likeness": history}, protect=_closest_step(history))

    def validate(at: int) -> None:
        history.append(validator.run(at))
        v = history[-1]
        log(f"validation at step {at}: distances {v['distances']} (score {v['score']}) in {v['seconds']:.1f} s")

    # 6. the loop
    n_t = scheduler.config.num_train_timesteps
    text = cache.text.to(device)
    bs = opts.batch_size
    recent: list[float] = []
    validation_s = 0.0
    last = time.perf_counter()
    while step < total:
        if should_stop():
            if step > 0 and save_on_stop():
                checkpoint(step)
                log(f"checkpoint-{step} saved on the way out")
            raise Cancelled(f"cancelled at step {step}")
        idx = torch.randint(n_img, (bs,), generator=gen)
        var = torch.randint(n_var, (bs,), generator=gen)
        shape = (bs,) + tuple(cache.mean.shape[1:])
        eps_lat = torch.randn(shape, generator=gen)
        noise = torch.randn(shape, generator=gen)
        timesteps = torch.randint(0, n_t, (bs,), generator=gen)
        latents = (cache.mean[idx.to(cache.mean.device)] + cache.std[idx.to(cache.std.device)] * eps_lat.to(device))
        noise, timesteps = noise.to(device), timesteps.to(device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        mask = cache.masks[idx, var].to(device)
        masked = cache.masked[idx, var].to(device)
        model_in = torch.cat([noisy, mask, masked], dim=1).to(dtype)
        with autocast.context():
            pred = unet(model_in, timesteps, encoder_hidden_states=text.expand(bs, -1, -1).to(dtype)).sample
        if scheduler.config.prediction_type == "v_prediction":
            target = scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        per_sample = torch.nn.functional.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
        loss = (per_sample * _min_snr_weights(scheduler, timesteps, opts.min_snr_gamma)).mean()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if opts.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, opts.max_grad_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        loss_value = float(loss.detach())
        losses.add(step, loss_value)
        now = time.perf_counter()
        recent = (recent + [now - last])[-20:]
        last = now
        left_s = validation_s * _validations_left(step, total, opts.checkpoint_every) if validator else 0.0
        report(step=step, loss=round(loss_value, 6),
               eta_s=round(sum(recent) / len(recent) * (total - step) + left_s, 1))
        regular = step % opts.checkpoint_every == 0
        if step < total and (regular or step == stop_after):
            if regular and validator:
                validate(step)
                validation_s = history[-1]["seconds"]
            checkpoint(step)
            log(f"step {step}/{total}, loss {loss_value:.4f}: checkpoint-{step} saved")
            last = time.perf_counter()  # a step's time leaves out the validation and the saving
        if stop_after is not None and step >= stop_after and step < total:
            return {"stopped_at": step}

    # 7. the closest checkpoint: the end of the run is one candidate, the checkpoints kept others
    if validator:
        validate(step)
    chosen = likeness.closest({e["step"]: e["distances"] for e in history
                               if e["step"] == step or (job / f"checkpoint-{e['step']}").is_dir()})
    if chosen is None:
        chosen, note = step, why_last
    elif chosen == step:
        note = "the last checkpoint kept: its faces came closest to the visitor's"
    else:
        set_peft_model_state_dict(unet, load_file(str(job / f"checkpoint-{chosen}" / "lora.safetensors")))
        note = f"checkpoint-{chosen} kept: its faces came closest to the visitor's"
    log(note)

    # 8. the LoRA
    meta = {"code": code, "trigger_words": opts.trigger_words.strip(),
            "caption": opts.caption.replace("{trigger}", opts.trigger_words.strip()),
            "base_model": spec.get("base_model_name") or spec["base_model"],
            "base_model_path": spec["base_model"], "steps": step, "rank": opts.rank, "alpha": alpha,
            "learning_rate": opts.learning_rate, "resolution": opts.resolution, "seed": opts.seed,
            "photos": len(spec["photos"]), "final_loss": loss_value, "mixed_precision": mode,
            "target_modules": TARGET_MODULES, "weights": LORA_WEIGHTS, "kohya_weights": f"{code}_kohya.safetensors",
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "likeness": {"reference_photos": len(reference_vectors), "held_back": len(held_back),
                         "inputs": validator.inputs if validator else 0,
                         "validation_steps": validation.steps if validator else None,
                         "checkpoints": history, "chosen_step": chosen, "note": note}}
    files = {likeness.REFERENCE_FILE: likeness.reference_bytes(reference_vectors)} if reference_vectors else {}
    save_lora(loras_dir, code, unet, meta, alpha, files)
    log(f"LoRA written to {loras_dir / code} (final loss {loss_value})")
    return meta


# --- main: the job protocol around train() -------------------------------------------------------

class _Stop:
    """SIGTERM sets a flag the loop polls; the trainer then ends cleanly instead of dying."""

    def __init__(self):
        self.signalled = False

    def __call__(self, signum, frame):
        self.signalled = True

    def __bool__(self):
        return self.signalled


def main(args: argparse.Namespace) -> int:
    from engine.config import load_settings
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    job = Path(args.job).resolve()
    settings = load_settings()
    spec = jobs._read_json(job / jobs.SPEC)
    if spec is None:
        log(f"no readable {jobs.SPEC} in {job}")
        return 2
    code = spec["code"]
    if spec.get("base_model_name"):
        # The model by its name, under this machine's models/: the kiosk that wrote the spec
        # may be another machine, with the data root mounted elsewhere.
        spec = dict(spec, base_model=settings.resolve_model(spec["base_model_name"]))

    # First write, under the queue lock: strictly after the launcher's own `running` write.
    with jobs.queue_lock(settings):
        st = jobs._raw_status(job) or {}
        if st.get("state") in jobs.FINISHED:
            log(f"job {code} already {st['state']}; nothing to do")
            return 0
        if st.get("pid") not in (None, os.getpid()) and jobs.pid_alive(st.get("pid"), st.get("pid_started_at")):
            log(f"job {code} is being trained by pid {st['pid']}; refusing to start a second trainer")
            return 1
        now = time.time()
        st.update(state="running", pid=os.getpid(), pid_started_at=jobs._pid_started(os.getpid()),
                  heartbeat_at=now, started_at=st.get("started_at") or now, error=None,
                  attempt=st.get("attempt") or 1)
        try:
            first = jobs.write_status(job, st)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            # Nothing written: the job stays as the launcher left it and the next reconcile,
            # finding this process gone, starts it again once there is room.
            log(str(disk_full_error(job / jobs.STATUS)))
            return 75  # EX_TEMPFAIL
        writer = jobs.StatusWriter(job, first, jobs.heartbeat_interval(settings.heartbeat_grace_s)).start()
    log(f"job {code}: attempt {st['attempt']}, heartbeat every "
        f"{writer.interval_s:.2f} s (grace {settings.heartbeat_grace_s:.0f} s)")

    state, error, exit_code = "failed", None, 1
    try:
        done = settings.loras_dir / code / "meta.json"
        if done.is_file():  # killed after the LoRA was written but before the final status
            state, exit_code = "succeeded", 0
        else:
            from engine.models import pick_device
            meta = train(spec, job, settings.loras_dir, device=pick_device(settings.device),
                         dtype_setting=settings.dtype, report=writer.update, should_stop=lambda: bool(stop),
                         save_on_stop=lambda: not jobs.cancel_requested(job), cpu_bf16=settings.cpu_bf16,
                         channels_last=settings.channels_last, compile_backend=settings.compile)
            writer.update(force=True, step=meta["steps"], loss=meta["final_loss"], eta_s=0)
            state, exit_code = "succeeded", 0
    except Cancelled as exc:
        if not jobs.cancel_requested(job):
            # SIGTERM from the system (shutdown, `docker stop`), not a visitor: leave the job
            # resumable. The status stays `running` with our pid; once we are gone the next
            # reconcile resumes it from its last checkpoint.
            writer.stop()
            log(f"stopped by SIGTERM without a cancel request ({exc}); the job will resume")
            return 143
        state, error, exit_code = "cancelled", "cancelled", 0
        log(str(exc))
    except (CartolinaError, Exception) as exc:  # the trainer must always leave a final status
        traceback.print_exc(file=sys.stdout)
        error = str(disk_full_error(job)) if is_disk_full(exc) else f"{type(exc).__name__}: {exc}"
        log(f"training failed: {error}")
    finally:
        writer.stop()

    with jobs.queue_lock(settings):
        current = jobs._raw_status(job) or {}
        if current.get("state") not in jobs.FINISHED:
            final = dict(writer.status, state=state, error=error, finished_at=time.time(), eta_s=None if state != "succeeded" else 0)
            if state == "failed":
                tail = jobs.log_tail(job)
                final["error"] = error + ("\n--- end of log.txt ---\n" + tail if tail else "")
            jobs.write_status(job, final)
        jobs.cleanup_job(job)
    log(f"job {code} {state}")
    try:
        jobs.reconcile(settings)  # start the next queued job without anybody clicking
    except Exception as exc:  # never turn a finished job into a failed exit over this
        log(f"reconcile after the job failed: {exc}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main(parse_args()))
