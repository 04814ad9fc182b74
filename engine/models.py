"""Loading the pipelines once per process, and the LoRA adapters they wear per request.

Both passes share one set of weights: the body pass is a ControlNet inpainting pipeline, the
face pass an inpainting pipeline built from it with `from_pipe`, so the UNet, VAE and text
encoder exist once in memory. LoRAs are loaded as named peft adapters into that shared UNet,
kept in a small LRU cache (loading one costs far more than switching), activated for one
request and switched off after. A single lock serialises inference and adapter switching,
because two browser sessions may ask for two different faces at the same moment.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from engine import precision, speedups
from engine.config import Settings
from engine.errors import ModelError
from engine.model_store import (CONTROLNET, DEFAULT_CONTROLNET_ID, DEFAULT_INPAINT_ID, INPAINT,
                                single_file_config, weights_variant)

log = logging.getLogger(__name__)

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"


def pick_device(requested: str) -> str:
    import torch
    if requested != "auto":
        if requested == "cuda" and not torch.cuda.is_available():
            raise ModelError("CARTOLINA_DEVICE: cuda was asked for but no CUDA device is available; "
                             "accepted here: auto, cpu")
        if requested == "mps" and not (getattr(torch.backends, "mps", None) and
                                       torch.backends.mps.is_available()):
            raise ModelError("CARTOLINA_DEVICE: mps was asked for but is not available; accepted "
                             "here: auto, cpu")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def picture_precision(requested: str, device: str, cpu_bf16: str = "auto"):
    """Weights and autocast for pictures: fp16 on CUDA, bf16 autocast on a CPU with native bf16,
    fp32 elsewhere, or what `CARTOLINA_DTYPE` asks for (engine.precision)."""
    return precision.for_pictures(requested, device, precision.native_bf16(cpu_bf16))


def _source(settings: Settings, location: str, variable: str) -> tuple[str, str]:
    """(kind, where): a local folder, a single .safetensors file, or a hub id."""
    resolved = settings.resolve_model(location)
    path = Path(resolved)
    if path.is_dir():
        return "folder", str(path)
    if path.is_file() and path.suffix in (".safetensors", ".ckpt"):
        return "file", str(path)
    if resolved == location and settings.allow_hub and not path.is_absolute():
        return "hub", location
    if location.startswith("demo/"):
        hint = " (run `python -m engine demo` to build the demo models)"
    elif location in (DEFAULT_INPAINT_ID, DEFAULT_CONTROLNET_ID):
        hint = " (run `python -m engine models fetch` to download it)"
    else:
        hint = ""
    raise ModelError(f"{variable}: {location!r} not found at {resolved}{hint}; accepted: a model "
                     "folder (absolute or under models/), a .safetensors checkpoint, or a hub id "
                     "with CARTOLINA_ALLOW_HUB=1")


@dataclass
class Pipelines:
    """The shared pipelines and the bookkeeping for their LoRA adapters."""

    body: object  # StableDiffusionControlNetInpaintPipeline
    face: object  # StableDiffusionInpaintPipeline sharing body's modules
    device: str
    dtype: object
    inpaint_model: str
    controlnet_model: str
    precision: precision.Precision  # the autocast every pass runs under
    fast: speedups.FastParts | None = None  # fast mode: few LCM steps, no guidance
    lora_cache_size: int = 4
    lock: threading.RLock = field(default_factory=threading.RLock)
    loras: "OrderedDict[str, str]" = field(default_factory=OrderedDict)  # code → adapter name
    lora_loads: int = 0

    @property
    def tokenizer(self):
        return self.body.tokenizer

    def plan(self, steps: int, guidance: float) -> tuple[int, float]:
        """The steps and guidance a pass really runs: the request's, or fast mode's."""
        if self.fast is not None:
            return self.fast.steps, speedups.FAST_GUIDANCE
        return steps, guidance

    def autocast(self):
        return self.precision.context()

    def _ensure_lora(self, code: str, folder: Path) -> str:
        name = f"lora_{code}"
        if code in self.loras:
            self.loras.move_to_end(code)
            return name
        while len(self.loras) >= self.lora_cache_size:
            old_code, old_name = self.loras.popitem(last=False)
            self.face.delete_adapters(old_name)
        try:
            self.face.load_lora_weights(str(folder), weight_name=LORA_WEIGHTS, adapter_name=name)
        except Exception as exc:
            raise ModelError(f"selected_lora: the LoRA {code} cannot be loaded ({exc})") from exc
        self.loras[code] = name
        self.lora_loads += 1
        return name

    @contextmanager
    def lora(self, code: str | None, folder: Path | None) -> Iterator[None]:
        """Wear one LoRA (or none) for the duration of the block; caller holds `lock`."""
        if code is None:
            self._disable()
            yield
            return
        name = self._ensure_lora(code, folder)
        self.face.enable_lora()
        self.face.set_adapters([name], adapter_weights=[1.0])
        try:
            yield
        finally:
            self._disable()

    def _disable(self) -> None:
        if self.loras:
            self.face.disable_lora()


_cache: dict[tuple, Pipelines] = {}
_cache_lock = threading.Lock()


def _cache_key(settings: Settings) -> tuple:
    return (settings.resolve_model(settings.inpaint_model), settings.resolve_model(settings.controlnet_model),
            settings.device, settings.dtype, settings.attention_slicing, settings.vae_tiling,
            settings.cpu_offload, settings.inpaint_config, settings.controlnet_config, settings.cpu_bf16,
            settings.channels_last, settings.compile, settings.fast, settings.fast_steps, settings.fast_lora,
            settings.tiny_vae)


def get_pipelines(settings: Settings) -> Pipelines:
    """The process-wide pipelines for these settings, loaded on first use."""
    key = _cache_key(settings)
    with _cache_lock:
        pipes = _cache.get(key)
        if pipes is None:
            pipes = load_pipelines(settings)
            _cache[key] = pipes
        return pipes


def load_pipelines(settings: Settings) -> Pipelines:
    """Load both pipelines from scratch (no cache): used by get_pipelines and the benchmarks."""
    from diffusers import (ControlNetModel, StableDiffusionControlNetInpaintPipeline,
                           StableDiffusionInpaintPipeline)

    device = pick_device(settings.device)
    prec = picture_precision(settings.dtype, device, settings.cpu_bf16)
    dtype = prec.weights
    fast = speedups.find_fast_parts(settings) if settings.fast else None
    cn_kind, cn_where = _source(settings, settings.controlnet_model, "CARTOLINA_CONTROLNET_MODEL")
    sd_kind, sd_where = _source(settings, settings.inpaint_model, "CARTOLINA_INPAINT_MODEL")
    offline = not settings.allow_hub
    try:
        if cn_kind == "file":
            controlnet = ControlNetModel.from_single_file(
                cn_where, config=str(single_file_config(settings, CONTROLNET)), local_files_only=True,
                dtype=dtype)
        else:
            controlnet = ControlNetModel.from_pretrained(cn_where, dtype=dtype, local_files_only=offline,
                                                         variant=weights_variant(cn_where))
        common = dict(controlnet=controlnet, dtype=dtype, safety_checker=None,
                      requires_safety_checker=False)
        if fast is not None and fast.tiny_vae is not None:  # the big VAE is then never loaded
            common["vae"] = speedups.load_tiny_vae(fast.tiny_vae, dtype)
        if sd_kind == "file":
            body = StableDiffusionControlNetInpaintPipeline.from_single_file(
                sd_where, config=str(single_file_config(settings, INPAINT)), local_files_only=True,
                **common)
        else:
            body = StableDiffusionControlNetInpaintPipeline.from_pretrained(
                sd_where, local_files_only=offline, variant=weights_variant(sd_where), **common)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"cannot load the models ({sd_where}, {cn_where}): {exc}") from exc
    if body.unet.config.in_channels != 9:
        raise ModelError(f"CARTOLINA_INPAINT_MODEL: {settings.inpaint_model!r} is not an inpainting "
                         f"model (its UNet takes {body.unet.config.in_channels} channels; accepted: 9)")
    if fast is not None:
        speedups.make_fast(body, fast)
        for note in fast.notes():
            log.warning("fast mode: %s", note)
    speedups.use_sdpa(body.unet, body.controlnet, body.vae)
    if speedups.channels_last_on(settings.channels_last, device):
        speedups.to_channels_last(body.unet, body.controlnet, body.vae)
    if settings.cpu_offload and device == "cuda":
        body.enable_model_cpu_offload()
    elif device != "cpu":  # loaded on the CPU already
        body.to(device)
    if settings.attention_slicing:
        body.enable_attention_slicing()
    if settings.vae_tiling:
        body.vae.enable_tiling()
    if settings.compile:
        speedups.compile_modules(body.unet, body.controlnet, device=device, backend=settings.compile)
    body.set_progress_bar_config(disable=True)
    # dtype: else from_pipe casts the shared modules to fp32; vae: it refuses a tiny one unless named
    face = StableDiffusionInpaintPipeline.from_pipe(body, dtype=dtype, vae=body.vae)
    face.set_progress_bar_config(disable=True)
    log.info("pipelines on %s, %s%s%s", device, prec.name, ", fast mode" if fast else "",
             f", compiled ({settings.compile})" if settings.compile else "")
    return Pipelines(body=body, face=face, device=device, dtype=dtype, precision=prec, fast=fast,
                     inpaint_model=_model_name(settings.inpaint_model, sd_where),
                     controlnet_model=_model_name(settings.controlnet_model, cn_where),
                     lora_cache_size=settings.lora_cache_size)


def _model_name(location: str, where: str) -> str:
    """A readable name for metadata: the configured location, plus `_name_or_path` if any."""
    try:
        idx = json.loads((Path(where) / "model_index.json").read_text())
        return f"{location} ({idx.get('_class_name', 'pipeline')})"
    except (OSError, ValueError):
        return location
