"""The demo models in the original single-file (LDM/CompVis) layout, as most people download them.

The inverse of the conversion diffusers runs in `from_single_file`
(`diffusers.loaders.single_file_utils`), after diffusers'
`scripts/convert_diffusers_to_original_stable_diffusion.py`, but driven by each model's own
config (`layers_per_block`, number of blocks) rather than SD-1.5's fixed shapes, so the
demo's tiny models convert too. Loading the result through the studio's loader and finding
the demo's weights again checks both directions at once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
           "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
_CONTROLNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
                     "conv_in": "input_blocks.0.0", "controlnet_cond_embedding.conv_in": "input_hint_block.0",
                     "controlnet_cond_embedding.conv_out": "input_hint_block.14",
                     "controlnet_mid_block": "middle_block_out.0"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _resnet(rest: str, table: dict[str, str] = _RESNET) -> str:
    name, param = rest.rsplit(".", 1)
    return f"{table.get(name, name)}.{param}"


def _fixed(key: str, table: dict[str, str]) -> str | None:
    name, param = key.rsplit(".", 1)
    return f"{table[name]}.{param}" if name in table else None


def _unet_blocks(key: str, per_block: int, up_attention: set[int]) -> str:
    """down/mid/up block keys: LDM numbers every layer of the UNet in one flat sequence."""
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        i = 1 + int(m[1]) * (per_block + 1) + int(m[3])
        return f"input_blocks.{i}.0.{_resnet(m[4])}" if m[2] == "resnets" else f"input_blocks.{i}.1.{m[4]}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{1 + int(m[1]) * (per_block + 1) + per_block}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        i = int(m[1]) * (per_block + 1) + int(m[3])
        return f"output_blocks.{i}.0.{_resnet(m[4])}" if m[2] == "resnets" else f"output_blocks.{i}.1.{m[4]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        block = int(m[1])
        return f"output_blocks.{block * (per_block + 1) + per_block}.{2 if block in up_attention else 1}.conv.{m[2]}"
    raise KeyError(key)


def unet_to_ldm(state: dict, config: dict) -> dict:
    per_block = config["layers_per_block"]
    up_attention = {i for i, t in enumerate(config["up_block_types"]) if "CrossAttn" in t}
    return {"model.diffusion_model." + (_fixed(k, _UNET_FIXED) or _unet_blocks(k, per_block, up_attention)): v
            for k, v in state.items()}


def controlnet_to_ldm(state: dict, config: dict) -> dict:
    per_block = config["layers_per_block"]
    out = {}
    for key, value in state.items():
        if m := re.fullmatch(r"controlnet_down_blocks\.(\d+)\.(.+)", key):
            ldm = f"zero_convs.{m[1]}.0.{m[2]}"
        elif m := re.fullmatch(r"controlnet_cond_embedding\.blocks\.(\d+)\.(.+)", key):
            ldm = f"input_hint_block.{2 * (int(m[1]) + 1)}.{m[2]}"
        else:
            ldm = _fixed(key, _CONTROLNET_FIXED) or _unet_blocks(key, per_block, set())
        out["control_model." + ldm] = value
    return out


def vae_to_ldm(state: dict, config: dict) -> dict:
    blocks = len(config["up_block_types"])
    out = {}
    for key, value in state.items():
        ldm = key.replace("conv_norm_out", "norm_out")
        if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            ldm = f"encoder.down.{m[1]}.block.{m[2]}.{_resnet(m[3], {'conv_shortcut': 'nin_shortcut'})}"
        elif m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
            ldm = f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            ldm = f"decoder.up.{blocks - 1 - int(m[1])}.block.{m[2]}.{_resnet(m[3], {'conv_shortcut': 'nin_shortcut'})}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
            ldm = f"decoder.up.{blocks - 1 - int(m[1])}.upsample.conv.{m[2]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)", key):
            ldm = f"{m[1]}.mid.block_{int(m[2]) + 1}.{_resnet(m[3], {'conv_shortcut': 'nin_shortcut'})}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key):
            ldm = f"{m[1]}.mid.attn_1.{_VAE_ATTENTION[m[2]]}.{m[3]}"
            if m[3] == "weight" and m[2] != "group_norm":
                value = value[:, :, None, None]  # LDM's attention projections are 1×1 convolutions
        out["first_stage_model." + ldm] = value
    return out


def text_encoder_to_ldm(state: dict) -> dict:
    return {"cond_stage_model.transformer.text_model." + k.removeprefix("text_model."): v
            for k, v in state.items()}


def _component(folder: Path) -> tuple[dict, dict]:
    weights = next(folder.glob("*.safetensors"))
    return load_file(str(weights)), json.loads((folder / "config.json").read_text())


def pipeline_checkpoint(inpaint_dir: Path) -> dict:
    unet, unet_cfg = _component(inpaint_dir / "unet")
    vae, vae_cfg = _component(inpaint_dir / "vae")
    text, _ = _component(inpaint_dir / "text_encoder")
    return {**unet_to_ldm(unet, unet_cfg), **vae_to_ldm(vae, vae_cfg), **text_encoder_to_ldm(text)}


def controlnet_checkpoint(controlnet_dir: Path) -> dict:
    return controlnet_to_ldm(*_component(controlnet_dir))


def save_checkpoint(state: dict, path: Path) -> Path:
    """.safetensors as people share them today, or the older pickled .ckpt with its wrapper."""
    state = {k: v.contiguous() for k, v in state.items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, path)
    return path
