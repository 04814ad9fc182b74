"""`models info`: what the studio will load, from where, whether it can, and what it costs.

Checked without loading a tensor: configs are parsed and each weights file's safetensors
header is read (names, shapes, dtypes, and that the data it promises is all there), so a
missing, truncated or mismatched file shows up in a second even for gigabytes of weights, on
a machine without the GPU. The parameter count from those headers gives the memory estimate.
`--load` goes further and loads the pipelines for real (still no picture).
"""

from __future__ import annotations

import json
import math
import struct
import time
from pathlib import Path

from engine.config import Settings
from engine.errors import ModelError
from engine.model_store import (CONTROLNET, INPAINT, ROLES, UNUSED_COMPONENTS, Role, single_file_config,
                                weights_variant)

_LDM_UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"
_Tensors = dict  # name → (shape, stored dtype)


def inspect(settings: Settings, load: bool = False) -> dict:
    from engine.models import load_pipelines, pick_device, picture_precision
    device = pick_device(settings.device)
    prec = picture_precision(settings.dtype, device, settings.cpu_bf16)
    dtype = prec.weights
    models = {role.name: _inspect_role(settings, role, dtype.itemsize) for role in ROLES}
    known = [m["weights_bytes"] for m in models.values() if m["weights_bytes"] is not None]
    report = {"device": device, "dtype": str(dtype).removeprefix("torch."),
              "autocast": str(prec.autocast).removeprefix("torch.") if prec.autocast else None,
              "compile": settings.compile or None, "fast": settings.fast, "models": models,
              "weights_bytes": sum(known) if len(known) == len(models) else None,
              "ok": all(m["loads"] is not False for m in models.values())}
    if load and report["ok"]:
        t0 = time.monotonic()
        try:
            load_pipelines(settings)
            report["load"] = {"ok": True, "seconds": round(time.monotonic() - t0, 2)}
        except ModelError as exc:
            report["load"] = {"ok": False, "error": str(exc)}
            report["ok"] = False
    return report


def _inspect_role(settings: Settings, role: Role, dtype_bytes: int) -> dict:
    from engine.models import _source
    location = role.location(settings)
    entry = {"variable": role.variable, "configured": location, "source": None, "where": None,
             "config": None, "variant": None, "parameters": None, "stored_dtypes": [],
             "weights_bytes": None, "loads": False, "problems": []}
    try:
        kind, where = _source(settings, location, role.variable)
        entry.update(source=kind, where=where)
        if kind == "hub":
            entry.update(loads=None, note="a hub id: downloaded when first loaded; not checked here "
                                          "(`python -m engine models fetch` keeps it local)")
            return entry
        if kind == "folder":
            entry["variant"] = weights_variant(where)
            tensors = _folder_tensors(Path(where), role, entry["variant"])
        else:
            entry["config"] = str(single_file_config(settings, role))
            tensors = _file_tensors(Path(where), role)
        _check_role(role, location, tensors)
    except ModelError as exc:
        entry["problems"].append(str(exc))
        return entry
    params = sum(math.prod(shape) for shape, _ in tensors.values())
    entry.update(parameters=params, weights_bytes=params * dtype_bytes, loads=True,
                 stored_dtypes=sorted({dt for _, dt in tensors.values()}))
    return entry


# --- a folder in diffusers layout ------------------------------------------------------------

def _folder_tensors(folder: Path, role: Role, variant: str | None) -> _Tensors:
    if role is CONTROLNET:
        _json(folder / "config.json")
        return _weights(folder, "", variant)
    index = _json(folder / "model_index.json")
    tensors: _Tensors = {}
    for name, spec in index.items():
        if name.startswith("_") or name in UNUSED_COMPONENTS or not isinstance(spec, list) or spec[0] is None:
            continue
        sub = folder / name
        if not sub.is_dir():
            raise ModelError(f"{sub}: missing, though model_index.json lists {name}; run `python -m "
                             "engine models fetch` again to complete the folder")
        for config in sorted(sub.glob("*.json")):
            if ".index" not in config.name:
                _json(config)
        if (sub / "config.json").is_file():
            tensors.update(_weights(sub, f"{name}:", variant))
        if name == "tokenizer" and not ((sub / "tokenizer.json").is_file() or
                                        (sub / "vocab.json").is_file() and (sub / "merges.txt").is_file()):
            raise ModelError(f"{sub}: no tokenizer files (vocab.json and merges.txt, or tokenizer.json)")
    return tensors


def _weights(folder: Path, prefix: str, variant: str | None) -> _Tensors:
    """The files diffusers will pick: the variant's where present, else the plain ones."""
    every = sorted(folder.glob("*.safetensors"))
    chosen = [p for p in every if f".{variant}." in p.name] if variant else []
    chosen = chosen or [p for p in every if ".fp16." not in p.name]
    if not chosen:
        raise ModelError(f"{folder}: no .safetensors weights; the studio loads only safetensors "
                         "(`python -m engine models fetch` brings them)")
    tensors: _Tensors = {}
    for path in chosen:
        tensors.update({prefix + k: v for k, v in safetensors_header(path).items()})
    return tensors


def safetensors_header(path: Path) -> _Tensors:
    """Names, shapes and dtypes from the header alone, checking the file is as long as the
    header says: a download cut short fails here, not at the first picture."""
    try:
        with open(path, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > 100_000_000:
                raise ValueError("header length out of range")
            header = json.loads(fh.read(length))
        size = path.stat().st_size
        header.pop("__metadata__", None)
        end = max((spec["data_offsets"][1] for spec in header.values()), default=0)
        if 8 + length + end != size:
            raise ValueError(f"{size} bytes where the header describes {8 + length + end}: truncated?")
        return {k: (tuple(v["shape"]), v["dtype"]) for k, v in header.items()}
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise ModelError(f"{path}: not a readable safetensors file ({exc}); fetch or copy it again") from exc


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: missing; the folder is not a complete diffusers model") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: not a JSON object")
    return data


# --- a single-file checkpoint ----------------------------------------------------------------

def _file_tensors(path: Path, role: Role) -> _Tensors:
    tensors = safetensors_header(path) if path.suffix == ".safetensors" else _ckpt_tensors(path)
    # EMA copies ride along in training checkpoints; diffusers loads the plain weights.
    return {k: v for k, v in tensors.items() if not k.startswith("model_ema.")}


def _ckpt_tensors(path: Path) -> _Tensors:
    """A pickled checkpoint, opened memory-mapped and restricted to tensors (no code runs)."""
    import torch
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable checkpoint ({exc})") from exc
    while isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()
            if isinstance(v, torch.Tensor)}


def _check_role(role: Role, location: str, tensors: _Tensors) -> None:
    """The mistakes an operator makes: the wrong kind of model in the right variable."""
    if role is INPAINT:
        conv_in = tensors.get("unet:conv_in.weight") or tensors.get(_LDM_UNET_IN)
        if conv_in is None:
            raise ModelError(f"{role.variable}: {location!r} holds no Stable Diffusion UNet weights")
        if conv_in[0][1] != 9:
            raise ModelError(f"{role.variable}: {location!r} is not an inpainting model (its UNet "
                             f"takes {conv_in[0][1]} channels; accepted: 9)")
    elif not any(k.startswith(("control_model.", "input_hint_block.", "controlnet_cond_embedding."))
                 for k in tensors):
        raise ModelError(f"{role.variable}: {location!r} holds no ControlNet weights")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
