"""The switches that make the same picture and the same LoRA cost less, in one place, so the
picture line, a Celery worker and the trainer turn them on alike (docs/deployment.md says
when each one is worth it):

- SDPA attention (`AttnProcessor2_0`: flash / memory-efficient kernels on CUDA, a fused
  kernel on CPUs), set explicitly so a pipeline never falls back to the O(n²)-memory path;
  attention slicing replaces it only when asked for (a 6 GB card);
- channels_last (NHWC) convolutions: cuDNN's fast tensor-core layout on CUDA (`auto`); on a
  CPU only when asked for (oneDNN converts layouts at every attention block);
- `torch.compile` (`CARTOLINA_COMPILE=1`): worth it for a server that paints all day, not
  for one picture; a graph that cannot be compiled runs eagerly instead of failing;
- fused AdamW for the trainer (one kernel per step instead of one per parameter tensor);
- fast mode (`CARTOLINA_FAST=1`): the LCM scheduler in a few steps without classifier-free
  guidance (one UNet batch a step instead of two), an LCM-LoRA fused into the UNet when one
  is found (without it the base model is not distilled for few steps and pictures blur), and
  the tiny autoencoder (TAESD) to encode and decode. The tiny encoder is used too: outside
  the person every pixel is the POI photo itself, so the big encoder buys nothing visible.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.config import Settings
from engine.errors import ModelError

log = logging.getLogger(__name__)

FAST_GUIDANCE = 1.0  # LCM is distilled to work without classifier-free guidance: 1.0 turns it off
# Where fast mode looks when not told: beside the inpainting model, under models/, and under
# models/<hub id> (where `huggingface-cli download ID --local-dir models/ID` puts them).
FAST_LORA_NAME, FAST_LORA_ID = "lcm-lora-sdv1-5", "latent-consistency/lcm-lora-sdv1-5"
TINY_VAE_NAME, TINY_VAE_ID = "taesd", "madebyollin/taesd"  # `demo` builds a seeded one beside its models


def channels_last_on(setting: str, device: str) -> bool:
    return setting == "on" or (setting == "auto" and device == "cuda")


def use_sdpa(*modules) -> None:
    """Scaled-dot-product attention on every attention layer of these modules."""
    from diffusers.models.attention_processor import AttnProcessor2_0
    for module in modules:
        if module is not None and hasattr(module, "set_attn_processor"):
            module.set_attn_processor(AttnProcessor2_0())


def to_channels_last(*modules) -> None:
    import torch
    for module in modules:
        if module is not None:
            module.to(memory_format=torch.channels_last)


def compile_modules(*modules, device: str, backend: str = "inductor") -> None:
    """Compile in place (`nn.Module.compile`: the state-dict keys, hence LoRA loading and
    checkpoints, stay as they are). Compilation happens at the first call; a graph that
    cannot be compiled runs eagerly instead of failing the picture."""
    import torch
    import torch._dynamo
    known = torch._dynamo.list_backends(exclude_tags=())
    if backend not in known:
        raise ModelError(f"CARTOLINA_COMPILE: {backend!r} is not a torch.compile backend here; "
                         f"accepted: 1 (inductor), 0, or one of {', '.join(sorted(known))}")
    if backend == "inductor" and device == "cpu" and not any(
            shutil.which(c) for c in (os.environ.get("CXX") or "g++", "c++", "clang++")):
        raise ModelError("CARTOLINA_COMPILE: torch.compile (inductor) on a CPU builds C++ kernels and no "
                         "C++ compiler was found (g++, c++ or clang++, or one named by CXX); install one "
                         "or set CARTOLINA_COMPILE=0")
    torch._dynamo.config.suppress_errors = True
    for module in modules:
        if module is not None:
            module.compile(backend=backend)
    log.info("torch.compile (%s) on for %d modules (torch %s, %s); the first call compiles them",
             backend, sum(m is not None for m in modules), torch.__version__, device)


def fused_adamw(params, **kwargs):
    """AdamW with its fused kernel where torch has one for these parameters' device."""
    import torch
    try:
        return torch.optim.AdamW(params, fused=True, **kwargs)
    except (RuntimeError, ValueError, TypeError) as exc:  # an older torch, or a device without it
        log.info("fused AdamW unavailable (%s); using the default implementation", exc)
        return torch.optim.AdamW(params, **kwargs)


# --- fast mode -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FastParts:
    """What fast mode found: the tiny autoencoder's folder and the LoRA to fuse (None: absent),
    and the steps per pass."""

    tiny_vae: Path | None
    lora: Path | None
    steps: int

    def notes(self) -> list[str]:
        out = []
        if self.lora is None:
            out.append(f"no LCM-LoRA found (CARTOLINA_FAST_LORA, or models/{FAST_LORA_ID}): the LCM "
                       "scheduler runs on weights not distilled for few steps, and pictures blur")
        if self.tiny_vae is None:
            out.append(f"no tiny autoencoder found (CARTOLINA_TINY_VAE, or models/{TINY_VAE_ID}): the "
                       "full VAE encodes and decodes")
        return out


def _find(settings: Settings, explicit: str, name: str, hub_id: str, variable: str) -> Path | None:
    if explicit:
        path = Path(settings.resolve_model(explicit))
        if not path.exists():
            raise ModelError(f"{variable}: {explicit!r} not found at {path}; accepted: a folder or "
                             ".safetensors file, absolute or under models/")
        return path
    beside = Path(settings.resolve_model(settings.inpaint_model)).parent / name
    return next((p for p in (beside, settings.models_dir / name, settings.models_dir / hub_id) if p.exists()), None)


def find_fast_parts(settings: Settings) -> FastParts:
    return FastParts(
        tiny_vae=_find(settings, settings.tiny_vae, TINY_VAE_NAME, TINY_VAE_ID, "CARTOLINA_TINY_VAE"),
        lora=_find(settings, settings.fast_lora, FAST_LORA_NAME, FAST_LORA_ID, "CARTOLINA_FAST_LORA"),
        steps=settings.fast_steps)


def load_tiny_vae(folder: Path, dtype):
    from diffusers import AutoencoderTiny
    try:
        return AutoencoderTiny.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
    except Exception as exc:
        raise ModelError(f"CARTOLINA_TINY_VAE: cannot load the tiny autoencoder from {folder} ({exc})") from exc


def make_fast(pipe, parts: FastParts) -> None:
    """LCM scheduler, and the LCM-LoRA fused into the UNet and unloaded: its weights become
    the base's, so visitors' LoRAs are worn on top of it exactly as without fast mode."""
    from diffusers import LCMScheduler
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    if parts.lora is None:
        return
    where = parts.lora
    kwargs = {"weight_name": where.name} if where.is_file() else {}
    try:
        pipe.load_lora_weights(str(where.parent if where.is_file() else where), adapter_name="fast", **kwargs)
        pipe.fuse_lora(lora_scale=1.0, adapter_names=["fast"])
        pipe.unload_lora_weights()
    except Exception as exc:
        raise ModelError(f"CARTOLINA_FAST_LORA: cannot fuse the LoRA {where} into the UNet ({exc})") from exc
