"""Make a small LoRA for the demo UNet with peft, saved the way the trainer saves one."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def make_lora(models_dir: Path, loras_dir: Path, code: str, seed: int, rank: int = 4,
              scale: float = 0.3) -> Path:
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(models_dir / "demo" / "sd-inpaint", subfolder="unet")
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_" in name:  # peft starts lora_B at zero: give both factors real values
                param.copy_(torch.randn(param.shape, generator=gen) * scale)
    folder = loras_dir / code
    folder.mkdir(parents=True)
    StableDiffusionInpaintPipeline.save_lora_weights(
        folder, unet_lora_layers=get_peft_model_state_dict(unet), safe_serialization=True)
    (folder / "meta.json").write_text(json.dumps({"code": code, "trigger_words": "sks person",
                                                  "rank": rank, "base_model": "demo/sd-inpaint"}))
    return folder
