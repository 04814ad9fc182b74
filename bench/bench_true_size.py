"""What a visitor waits for, at true size: SD-1.5's shapes (random weights) on this machine.

    .venv/bin/python bench/bench_true_size.py [--steps 30] [--train-steps 30] [--size full]

Builds the true-size models (`python -m engine demo --size full`: the published SD-1.5
inpainting, ControlNet-openpose, VAE and CLIP shapes, fp16 files) unless
`CARTOLINA_BENCH_MODELS` points at a models folder that has them, seeds the demo catalog in a
fresh data root, then measures, in one process and one run so the ratios are fair:

* cold: the pipelines read from disk and the first picture;
* warm: a picture through `engine.generate` against the bare diffusers call with the same
  inputs (the engine's overhead as a ratio), medians of alternating runs;
* training: the studio's trainer on five face photos at 512 px, seconds per step after the
  first few, the fixed caching cost, and the projected time of a default 1,500-step LoRA;
* the face pass: a picture with that LoRA (both passes) against one without;
* peak accelerator memory of generation and of training;
* `--variants compile,offload,fast,fp32,bf16,channels_last`: the same picture (and, for compile, the same
  training) again with one switch changed (`CARTOLINA_COMPILE=1`, `CARTOLINA_CPU_OFFLOAD=1`,
  `CARTOLINA_FAST=1`, `CARTOLINA_DTYPE=float32`, bf16 autocast, NHWC), each against the plain run
  of the same process: first picture (compilation included), warm picture, peak memory.

Prints a markdown table and one JSON line (the figures for docs/benchmarks.md). On a CPU use
`--size demo` for a quick check of the script itself; true size there is issue 14's business.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_LORA_STEPS = 1500

from bench.bench_train import face_photos  # noqa: E402 - the same five photos as the CPU bench


def sync() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_reset() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float | None:
    """Peak GPU memory since the last reset; on a CPU the process's peak RSS so far (it only grows)."""
    import resource
    import torch
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # Linux: KiB


def timed(fn) -> float:
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def make_home(size: str) -> tuple[Path, object, float]:
    from engine.config import load_settings
    from engine.demo.catalog import build_demo_catalog
    from engine.demo.models import build_demo_models, demo_paths

    home = Path(tempfile.mkdtemp(prefix="cartolina-true-size-"))
    models = Path(os.environ.get("CARTOLINA_BENCH_MODELS") or home / "models")
    env = {**os.environ, "CARTOLINA_HOME": str(home)}
    t = time.perf_counter()
    build_demo_models(models, size=size)
    built_s = time.perf_counter() - t
    inpaint, controlnet = demo_paths(models, size)
    if models != home / "models":  # reuse models built before: link them into the data root
        (home / "models").mkdir(parents=True, exist_ok=True)
        (home / "models" / size).symlink_to(inpaint.parent, target_is_directory=True)
    env.update(CARTOLINA_INPAINT_MODEL=f"{size}/{inpaint.name}", CARTOLINA_CONTROLNET_MODEL=f"{size}/{controlnet.name}")
    settings = load_settings(env)
    settings.ensure_dirs()
    build_demo_catalog(settings)
    return home, settings, built_s


def request(steps: int, lora: str | None = None) -> dict:
    return {"poi_name": "Piazza del Duomo", "poi_image": "Fountain view", "action_name": "waving",
            "action_shot_type": "MES", "age": "adult", "gender": "woman", "other_details": "a blue coat",
            "seed": 5, "steps": steps, "selected_lora": lora}


VARIANTS = {  # name → settings changed; what each costs or saves is measured against the plain run
    "compile": {"compile": "inductor"},
    "offload": {"cpu_offload": True},
    "fast": {"fast": True},
    "fp32": {"dtype": "float32", "cpu_bf16": "off"},
    "bf16": {"cpu_bf16": "on"},
    "channels_last": {"channels_last": "on"},
}


def free_pipelines() -> None:
    import gc
    import torch
    from engine import models
    models._cache.clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def bench_variant(settings, name: str, steps: int, runs: int) -> dict:
    """One picture setting against the plain one: load, first picture, warm median, peak."""
    from dataclasses import replace
    from engine import generate as gen
    from engine.catalog import Catalog
    from engine.models import load_pipelines
    free_pipelines()
    varied = replace(settings, **VARIANTS[name])
    cat = Catalog.open(settings)
    peak_reset()
    t = time.perf_counter()
    pipes = load_pipelines(varied)
    load_s = time.perf_counter() - t
    first_s = timed(lambda: gen.generate(request(steps), varied, catalog=cat, pipelines=pipes))
    warm = [timed(lambda: gen.generate(request(steps), varied, catalog=cat, pipelines=pipes)) for _ in range(runs)]
    out = {"load_s": load_s, "first_picture_s": first_s, "picture_s": statistics.median(warm),
           "precision": pipes.precision.name,
           "steps_run": pipes.plan(steps, 7.5)[0], "peak_gib": peak_gib()}
    del pipes
    free_pipelines()
    return out


def bench_generation(settings, steps: int, runs: int) -> dict:
    import torch
    from engine import generate as gen, prompts
    from engine.catalog import Catalog
    from engine.models import get_pipelines

    cat = Catalog.open(settings)
    peak_reset()
    load_s = timed(lambda: get_pipelines(settings))
    pipes = get_pipelines(settings)
    first_s = timed(lambda: gen.generate(request(steps), settings, catalog=cat, pipelines=pipes))
    req = gen.check_request(request(steps), cat)
    scene = gen.prepare_scene(req, "waving", cat)
    built = prompts.build_prompts(poi_description=scene.poi_description,
                                  action_description=scene.action_description, shot_type="MES",
                                  age="adult", gender="woman", details="a blue coat", tokenizer=pipes.tokenizer)

    def bare() -> None:  # the same autocast as the engine's (bf16 on a CPU that has it)
        with torch.inference_mode(), pipes.autocast():
            pipes.body(prompt=built.prompt, negative_prompt=built.negative_prompt, image=scene.poi,
                       mask_image=scene.pose_mask, control_image=scene.control, height=512, width=512,
                       strength=1.0, padding_mask_crop=gen._crop_padding(scene.pose_mask, 0.08, 8),
                       num_inference_steps=steps, guidance_scale=7.5,
                       generator=torch.Generator("cpu").manual_seed(5)).images[0].save(io.BytesIO(), "PNG")

    bare()
    engine_t, bare_t = [], []
    for i in range(runs):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):  # alternate who goes first
            if which == 0:
                engine_t.append(timed(lambda: gen.generate(request(steps), settings, catalog=cat, pipelines=pipes)))
            else:
                bare_t.append(timed(bare))
    return {"device": pipes.device, "dtype": str(pipes.dtype), "load_s": load_s, "first_picture_s": first_s,
            "picture_s": statistics.median(engine_t), "bare_s": statistics.median(bare_t),
            "engine_over_bare": statistics.median(engine_t) / statistics.median(bare_t),
            "picture_runs_s": engine_t, "generation_peak_gib": peak_gib()}


def bench_training(settings, steps: int, checkpointing: str = "auto", compile_backend: str = "",
                   resolution: int = 512) -> dict:
    from engine.models import pick_device
    from engine.training import jobs
    from engine.training.train_lora import train

    opts = jobs.TrainOptions(total_steps=steps, resolution=resolution, rank=16, checkpoint_every=10**6,
                             seed=0, gradient_checkpointing=checkpointing)
    st = jobs.submit(face_photos(), settings, opts, start=False)
    job = settings.jobs_dir / st["code"]
    spec = json.loads((job / "spec.json").read_text())
    stamps: list[tuple[int, float]] = []
    peak_reset()
    sync()
    t0 = time.perf_counter()
    train(spec, job, settings.loras_dir, device=pick_device(settings.device), dtype_setting=settings.dtype,
          report=lambda **kw: stamps.append((kw["step"], time.perf_counter())), cpu_bf16=settings.cpu_bf16,
          channels_last=settings.channels_last, compile_backend=compile_backend)
    total_s = time.perf_counter() - t0
    steps_t = [(s, t) for s, t in stamps if s >= 1]
    warm = [b[1] - a[1] for a, b in zip(steps_t[3:], steps_t[4:])]  # past the first few steps
    per_step = statistics.median(warm) if warm else total_s / max(1, steps)
    fixed = (steps_t[0][1] - t0) if steps_t else total_s
    return {"code": st["code"], "train_steps": steps, "train_total_s": total_s, "fixed_s": fixed,
            "s_per_step": per_step, "lora_1500_s": fixed + per_step * DEFAULT_LORA_STEPS,
            "training_peak_gib": peak_gib()}


def bench_face_pass(settings, steps: int, lora: str, runs: int) -> dict:
    from engine import generate as gen
    from engine.catalog import Catalog
    from engine.models import get_pipelines

    cat, pipes = Catalog.open(settings), get_pipelines(settings)
    first = timed(lambda: gen.generate(request(steps, lora), settings, catalog=cat, pipelines=pipes))
    with_face, without = [], []
    for _ in range(runs):
        with_face.append(timed(lambda: gen.generate(request(steps, lora), settings, catalog=cat, pipelines=pipes)))
        without.append(timed(lambda: gen.generate(request(steps), settings, catalog=cat, pipelines=pipes)))
    return {"first_with_lora_s": first, "picture_with_face_s": statistics.median(with_face),
            "picture_body_only_s": statistics.median(without),
            "face_pass_ratio": statistics.median(with_face) / statistics.median(without)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=("full", "demo"), default="full")
    ap.add_argument("--steps", type=int, default=30, help="denoising steps per pass (the studio's default)")
    ap.add_argument("--runs", type=int, default=3, help="alternating timed pictures of each kind")
    ap.add_argument("--train-steps", type=int, default=30, help="training steps timed (≥ 10)")
    ap.add_argument("--checkpointing-off-too", action="store_true",
                    help="also train with gradient checkpointing off: its speed against its memory")
    ap.add_argument("--variants", default="", help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--no-training", action="store_true", help="pictures only")
    args = ap.parse_args(argv)

    import torch
    home, settings, built_s = make_home(args.size)
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"--variants: unknown {sorted(unknown)}; accepted: {', '.join(VARIANTS)}")
    gen_r = bench_generation(settings, args.steps, args.runs)
    train_r, face_r = {}, {}
    if not args.no_training:
        train_r = bench_training(settings, args.train_steps)
        face_r = bench_face_pass(settings, args.steps, train_r["code"], args.runs)
    var_r = {}
    for name in variants:
        var_r[name] = bench_variant(settings, name, args.steps, args.runs)
        print(f"variant {name}: {json.dumps(var_r[name])}", flush=True)
        if name == "compile" and not args.no_training:
            var_r[name]["training"] = bench_training(settings, args.train_steps, compile_backend="inductor")
    if args.checkpointing_off_too:
        off = bench_training(settings, args.train_steps, "off")
        train_r.update(no_ckpt_s_per_step=off["s_per_step"], no_ckpt_peak_gib=off["training_peak_gib"],
                       no_ckpt_lora_1500_s=off["lora_1500_s"])
    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or platform.machine()
    result = {"size": args.size, "card": card, "torch": torch.__version__, "steps": args.steps,
              "models_built_s": built_s, **gen_r, **train_r, **face_r, "variants": var_r}
    rows = [
        ("machine", card),
        ("models", f"{args.size} (SD-1.5 shapes, random weights), {gen_r['dtype']}"),
        ("pipelines from disk (cold load)", f"{gen_r['load_s']:.1f} s"),
        ("first picture after load", f"{gen_r['first_picture_s']:.2f} s"),
        (f"picture, body pass only, {args.steps} steps", f"{gen_r['picture_s']:.2f} s"),
        ("cold (load + first picture) / warm picture",
         f"{(gen_r['load_s'] + gen_r['first_picture_s']) / gen_r['picture_s']:.2f}×"),
        ("engine.generate / bare diffusers call", f"{gen_r['engine_over_bare']:.3f}×"),
    ]
    if train_r:
        rows += [
            (f"picture with the visitor's LoRA (both passes)", f"{face_r['picture_with_face_s']:.2f} s"),
            ("both passes / body only", f"{face_r['face_pass_ratio']:.2f}×"),
            ("training: seconds per step (512 px, rank 16)", f"{train_r['s_per_step']:.3f} s"),
            ("training: fixed cost (load + cache)", f"{train_r['fixed_s']:.1f} s"),
            (f"projected default LoRA ({DEFAULT_LORA_STEPS} steps)", f"{train_r['lora_1500_s'] / 60:.1f} min"),
        ]
    rows += [("peak accelerator memory: generation / training",
              f"{gen_r['generation_peak_gib']} / {train_r.get('training_peak_gib')} GiB")]
    for name, v in var_r.items():
        rows += [(f"{name}: first picture / warm picture ({v['steps_run']} steps, {v['precision']})",
                  f"{v['first_picture_s']:.2f} s / {v['picture_s']:.2f} s"),
                 (f"{name}: warm picture / plain warm picture", f"{v['picture_s'] / gen_r['picture_s']:.2f}×"),
                 (f"{name}: peak accelerator memory", f"{v['peak_gib']} GiB")]
        if "training" in v:
            t = v["training"]
            rows += [(f"{name}: training seconds per step / plain", f"{t['s_per_step']:.3f} s / "
                      f"{t['s_per_step'] / train_r['s_per_step']:.2f}×"),
                     (f"{name}: training fixed cost (compilation included)", f"{t['fixed_s']:.1f} s")]
    if "no_ckpt_s_per_step" in train_r:
        rows += [("training without gradient checkpointing: seconds per step / peak memory",
                  f"{train_r['no_ckpt_s_per_step']:.3f} s / {train_r['no_ckpt_peak_gib']} GiB"),
                 ("checkpointing on / off, seconds per step",
                  f"{train_r['s_per_step'] / train_r['no_ckpt_s_per_step']:.2f}×")]
    print("| measure | value |\n| --- | --- |")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
