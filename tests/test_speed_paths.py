"""The speed switches of issue 14 on the demo models: precision chosen by the hardware, bf16
pictures close to fp32 ones and bf16 LoRAs that learn as fp32 ones do, fast mode (LCM, the
tiny autoencoder, a fused LCM-LoRA), SDPA and channels_last, torch.compile, fused AdamW.

No timing here: the speed of each switch is measured in bench/ (docs/benchmarks.md). bf16 is
forced with CARTOLINA_CPU_BF16=on, so these tests run the bf16 path on any CPU; on one without
native bf16 it is emulated and slow, hence the few denoising steps.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from engine import generate as gen, precision, speedups
from engine.catalog import Catalog
from engine.config import load_settings
from engine.errors import InvalidInput, ModelError
from engine.models import load_pipelines
from engine.training import jobs
from engine.training.train_lora import ValidationPlan, train
from test_training_photos import face_photos
from tests.lora_helpers import make_lora

REQUEST = {"poi_name": "Piazza del Duomo", "poi_image": "Fountain view", "action_name": "waving",
           "action_shot_type": "MES", "age": "adult", "gender": "woman", "seed": 11, "steps": 2}


# --- precision follows the hardware --------------------------------------------------------------

@pytest.mark.parametrize("setting, device, native, weights, autocast", [
    ("auto", "cpu", True, torch.float32, torch.bfloat16),   # AVX-512 BF16 / AMX / Arm bf16
    ("auto", "cpu", False, torch.float32, None),            # AVX2 only: bf16 would be emulated
    ("auto", "cuda", False, torch.float16, None),
    ("bfloat16", "cpu", False, torch.bfloat16, None),       # asked for: obeyed, in the weights
    ("float32", "cpu", True, torch.float32, None),
    ("auto", "mps", True, torch.float32, None),
])
def test_picture_precision_follows_the_hardware(setting, device, native, weights, autocast):
    p = precision.for_pictures(setting, device, native)
    assert (p.weights, p.autocast) == (weights, autocast)


@pytest.mark.parametrize("requested, setting, device, native, mode", [
    ("auto", "auto", "cpu", True, "bf16"),
    ("auto", "auto", "cpu", False, "no"),
    ("auto", "float32", "cpu", True, "no"),
    ("auto", "bfloat16", "cpu", False, "bf16"),
    ("fp16", "auto", "cpu", True, "no"),     # fp16 autocast needs CUDA's loss scaler
    ("bf16", "auto", "cpu", False, "bf16"),
    ("bf16", "auto", "mps", True, "no"),
    ("auto", "float16", "cuda", False, "fp16"),
])
def test_training_precision_follows_the_hardware(requested, setting, device, native, mode):
    assert precision.training_mode(requested, setting, device, native) == mode


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n\nprocessor\t: 1\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert "avx512_bf16" in precision._cpu_flags(x86)
    assert "bf16" in precision._cpu_flags(arm)
    assert precision._cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("variable, value", [("CARTOLINA_CPU_BF16", "maybe"), ("CARTOLINA_CHANNELS_LAST", "yes"),
                                             ("CARTOLINA_FAST_STEPS", "0"), ("CARTOLINA_COMPILE", "../x")])
def test_bad_speed_settings_name_the_variable(variable, value):
    with pytest.raises(InvalidInput, match=variable):
        load_settings({variable: value})


def test_compile_settings_read_as_a_backend():
    assert load_settings({"CARTOLINA_COMPILE": "1"}).compile == "inductor"
    assert load_settings({"CARTOLINA_COMPILE": "off"}).compile == ""
    assert load_settings({"CARTOLINA_COMPILE": "aot_eager"}).compile == "aot_eager"


# --- bf16 ----------------------------------------------------------------------------------------

def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def test_a_bf16_picture_differs_from_the_fp32_one_only_within_tolerance(demo_home):
    """Same request, same seed: bf16 autocast moves pixels by a fraction of a level on
    average and by a few levels at worst (measured: mean 0.16, 99th percentile 2, max 9 of
    255 at 4 steps). Stated tolerance: mean ≤ 1, 99th percentile ≤ 8 levels."""
    cat = Catalog.open(load_settings())
    made = {}
    for switch in ("off", "on"):
        settings = load_settings({"CARTOLINA_HOME": str(demo_home), "CARTOLINA_CPU_BF16": switch})
        pipes = load_pipelines(settings)
        result = gen.generate(REQUEST, settings, catalog=cat, pipelines=pipes)
        made[switch] = (pipes, result)
    assert made["off"][0].precision.autocast is None
    assert made["on"][0].precision.autocast is torch.bfloat16
    assert made["on"][0].body.unet.dtype == torch.float32  # weights stay fp32: only the ops are bf16
    meta = gen.read_record(load_settings(), made["on"][1].code)
    assert meta["precision"] == "float32 weights, bfloat16 autocast"
    diff = np.abs(_pixels(made["off"][1].path) - _pixels(made["on"][1].path))
    assert diff.mean() <= 1.0 and np.percentile(diff, 99) <= 8, (diff.mean(), np.percentile(diff, 99))
    assert diff.max() > 0  # it did run in another precision


def _losses(settings, mode: str) -> list[float]:
    opts = jobs.TrainOptions(total_steps=150, resolution=64, rank=4, learning_rate=1e-2, checkpoint_every=1000,
                             random_masks=1, seed=7, mixed_precision=mode)
    st = jobs.submit(face_photos(), settings, opts, start=False)
    job = settings.jobs_dir / st["code"]
    losses = []
    meta = train(json.loads((job / "spec.json").read_text()), job, settings.loras_dir, device="cpu",
                 report=lambda **kw: losses.append(kw["loss"]), validation=ValidationPlan(0, 1))
    assert meta["mixed_precision"] == mode
    assert (settings.loras_dir / st["code"] / "pytorch_lora_weights.safetensors").is_file()
    return [x for x in losses if x is not None]


def test_a_lora_trained_in_bf16_learns_as_one_trained_in_fp32(settings, demo_home):
    """Both runs draw the same timesteps and noise (one seeded generator), so their losses
    pair step by step: the bf16 curve must fall as the fp32 one does and stay beside it."""
    fp32, bf16 = np.array(_losses(settings, "no")), np.array(_losses(settings, "bf16"))
    assert len(fp32) == len(bf16) == 150
    q = len(fp32) // 4
    for curve in (fp32, bf16):
        assert curve[-q:].mean() < 0.95 * curve[:q].mean(), (curve[:q].mean(), curve[-q:].mean())
    assert np.mean(np.abs(bf16 - fp32) / fp32) < 0.02


# --- fast mode -----------------------------------------------------------------------------------

def test_fast_mode_paints_with_few_lcm_steps_the_tiny_autoencoder_and_a_fused_lcm_lora(demo_home):
    from diffusers import AutoencoderTiny, LCMScheduler
    settings = load_settings()
    lcm = make_lora(settings.models_dir, settings.models_dir, "lcm-lora-test", seed=3)
    plain = load_pipelines(settings)
    fast_settings = replace(settings, fast=True, fast_lora=str(lcm))
    fast = load_pipelines(fast_settings)
    assert isinstance(fast.body.vae, AutoencoderTiny) and fast.face.vae is fast.body.vae
    assert isinstance(fast.body.scheduler, LCMScheduler)
    # the LCM-LoRA is part of the base weights now, not an adapter a visitor's LoRA would displace
    assert not getattr(fast.body.unet, "peft_config", None)
    before = dict(plain.body.unet.named_parameters())
    changed = [n for n, p in fast.body.unet.named_parameters() if not torch.equal(p, before[n])]
    assert changed and all(".attn" in n and n.endswith(("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight"))
                           for n in changed)
    face_lora = make_lora(settings.models_dir, settings.loras_dir, "24681357", seed=5)
    result = gen.generate(dict(REQUEST, steps=30, selected_lora="24681357"), fast_settings,
                          catalog=Catalog.open(settings), pipelines=fast)
    assert face_lora.is_dir() and result.face_pass
    assert (result.steps, result.guidance) == (settings.fast_steps, speedups.FAST_GUIDANCE)
    meta = gen.read_record(settings, result.code)
    assert meta["fast"] is True and meta["steps"] == settings.fast_steps
    assert Image.open(result.path).size == (768, 512)


def test_fast_mode_without_its_parts_says_what_is_missing(demo_home):
    settings = replace(load_settings(), fast=True, tiny_vae="", fast_lora="")
    parts = speedups.find_fast_parts(settings)
    assert parts.tiny_vae is not None and parts.lora is None  # demo/taesd beside the model, no LCM-LoRA
    assert any("no LCM-LoRA found" in note for note in parts.notes())
    with pytest.raises(ModelError, match="CARTOLINA_TINY_VAE: 'nowhere/taesd' not found"):
        speedups.find_fast_parts(replace(settings, tiny_vae="nowhere/taesd"))


# --- SDPA, channels_last, compile, fused AdamW ---------------------------------------------------

def test_attention_is_sdpa_and_channels_last_is_applied_when_asked(demo_home):
    settings = replace(load_settings(), channels_last="on")
    pipes = load_pipelines(settings)
    for module in (pipes.body.unet, pipes.body.controlnet):
        assert {type(p).__name__ for p in module.attn_processors.values()} == {"AttnProcessor2_0"}
    conv = pipes.body.unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    result = gen.generate(REQUEST, settings, catalog=Catalog.open(settings), pipelines=pipes)
    assert Image.open(result.path).size == (768, 512)


def test_the_studio_paints_with_torch_compile(demo_home):
    """The compile path end to end: the UNet and ControlNet compiled in place (state-dict keys
    unchanged, so a visitor's LoRA still loads) through dynamo and AOT autograd. The backend is
    aot_eager, not inductor: inductor's C++ build of every kernel takes minutes on a 2-core CPU;
    bench/gpu.sh measures inductor on CUDA."""
    settings = load_settings({"CARTOLINA_HOME": str(demo_home), "CARTOLINA_COMPILE": "aot_eager"})
    pipes = load_pipelines(settings)
    assert hasattr(pipes.body.unet, "_compiled_call_impl") and pipes.body.unet._compiled_call_impl is not None
    assert not any(k.startswith("_orig_mod") for k in pipes.body.unet.state_dict())
    make_lora(settings.models_dir, settings.loras_dir, "13572468", seed=9)
    result = gen.generate(dict(REQUEST, selected_lora="13572468"), settings, catalog=Catalog.open(settings),
                          pipelines=pipes)
    assert result.face_pass and Image.open(result.path).size == (768, 512)


def test_compile_says_plainly_why_it_cannot_run(demo_home, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(ModelError, match="CARTOLINA_COMPILE: torch.compile .inductor. on a CPU .*no C\\+\\+ compiler"):
        speedups.compile_modules(torch.nn.Linear(2, 2), device="cpu", backend="inductor")
    with pytest.raises(ModelError, match="CARTOLINA_COMPILE: 'nosuch' is not a torch.compile backend"):
        speedups.compile_modules(torch.nn.Linear(2, 2), device="cpu", backend="nosuch")


def test_the_trainer_uses_fused_adamw(settings, demo_home):
    opts = jobs.TrainOptions(total_steps=3, resolution=64, rank=4, checkpoint_every=2, random_masks=1, seed=1)
    st = jobs.submit(face_photos(), settings, opts, start=False)
    job = settings.jobs_dir / st["code"]
    train(json.loads((job / "spec.json").read_text()), job, settings.loras_dir, device="cpu",
          validation=ValidationPlan(0, 1), stop_after=2)
    state = torch.load(job / "checkpoint-2" / "trainer.pt", map_location="cpu", weights_only=False)
    assert all(group.get("fused") for group in state["optimizer"]["param_groups"])
