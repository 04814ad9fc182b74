"""Generation benchmarks on the demo models at 512×512, side by side in one run.

    .venv/bin/python bench/bench_generate.py [--pairs 7] [--steps 10]

(a) the engine's `generate` against a bare diffusers `StableDiffusionControlNetInpaintPipeline`
    call doing the same work (same pipeline object, inputs, steps, crop, and a PNG save),
    interleaved pair by pair so machine noise hits both alike: the engine's overhead ratio;
(b) a warm request against a cold one that loads the pipeline first, as the seed did on
    every request;
(c) the cost of switching between two LoRAs against reusing one, and of a LoRA's first load;
(d) peak memory (max RSS) of a process doing one cold generation, with and without a LoRA.
Timing lives here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_home(root: Path) -> Path:
    from engine import poses
    from engine.catalog import Catalog
    from engine.catalog_edit import set_images_from_library
    from engine.config import load_settings
    from engine.demo.models import build_demo_models
    from engine.demo.scenes import draw_scene

    settings = load_settings({"CARTOLINA_HOME": str(root)})
    settings.ensure_dirs()
    build_demo_models(settings.models_dir)
    cat = Catalog.open(settings)
    cat.add_poi("Bench", "a bench square")
    cat.add_poi_image("Bench", "Square", draw_scene("piazza", (512, 512), seed=3),
                      "a sunny Italian piazza with a fountain")
    cat.add_action("standing", poses.ACTIONS["standing"].description)
    set_images_from_library(cat, "standing", "standing", ["FUS"])
    sys.path.insert(0, str(REPO / "tests"))
    from lora_helpers import make_lora
    make_lora(settings.models_dir, settings.loras_dir, "00000001", seed=1)
    make_lora(settings.models_dir, settings.loras_dir, "00000002", seed=2)
    return root


def request(steps: int, lora: str | None = None) -> dict:
    return {"poi_name": "Bench", "poi_image": "Square", "action_name": "standing",
            "action_shot_type": "FUS", "age": "adult", "gender": "woman",
            "other_details": "a blue coat", "seed": 5, "steps": steps, "selected_lora": lora}


def med(xs):
    return statistics.median(xs)


def bench_overhead_and_lora(home: Path, pairs: int, steps: int) -> dict:
    import torch
    from engine import generate as gen, prompts
    from engine.catalog import Catalog
    from engine.config import load_settings
    from engine.models import get_pipelines

    settings = load_settings({"CARTOLINA_HOME": str(home)})
    cat = Catalog.open(settings)
    pipes = get_pipelines(settings)
    req = gen.check_request(request(steps), cat)
    scene = gen.prepare_scene(req, "standing", cat)
    built = prompts.build_prompts(poi_description=scene.poi_description,
                                  action_description=scene.action_description, shot_type="FUS",
                                  age="adult", gender="woman", details="a blue coat",
                                  tokenizer=pipes.tokenizer)
    out_dir = Path(tempfile.mkdtemp())

    def bare(i: int) -> None:
        with torch.inference_mode():
            img = pipes.body(prompt=built.prompt, negative_prompt=built.negative_prompt,
                             image=scene.poi, mask_image=scene.pose_mask, control_image=scene.control,
                             height=512, width=512, strength=1.0,
                             padding_mask_crop=gen._crop_padding(scene.pose_mask, 0.08, 8),
                             num_inference_steps=steps, guidance_scale=7.5,
                             generator=torch.Generator("cpu").manual_seed(5)).images[0]
        img.save(out_dir / f"{i}.png")

    gen.generate(request(steps), settings, catalog=cat)  # warm up both paths
    bare(-1)
    engine_t, bare_t = [], []
    for i in range(pairs):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):  # alternate who goes first
            t = time.perf_counter()
            if which == 0:
                gen.generate(request(steps), settings, catalog=cat)
                engine_t.append(time.perf_counter() - t)
            else:
                bare(i)
                bare_t.append(time.perf_counter() - t)

    # LoRA: first load, then A,B,A,B (switch every request) against A,A,A,A (no switch)
    t = time.perf_counter()
    gen.generate(request(steps, "00000001"), settings, catalog=cat)
    first_a = time.perf_counter() - t
    t = time.perf_counter()
    gen.generate(request(steps, "00000002"), settings, catalog=cat)
    first_b = time.perf_counter() - t
    switch_t, same_t = [], []
    for i in range(pairs):
        t = time.perf_counter()
        gen.generate(request(steps, "00000001" if i % 2 else "00000002"), settings, catalog=cat)
        switch_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        gen.generate(request(steps, "00000001" if i % 2 else "00000002"), settings, catalog=cat)
        same_t.append(time.perf_counter() - t)
    return {"engine_s": med(engine_t), "bare_s": med(bare_t), "overhead_ratio": med(engine_t) / med(bare_t),
            "engine_all": engine_t, "bare_all": bare_t,
            "lora_first_load_s": med([first_a, first_b]), "lora_switch_s": med(switch_t),
            "lora_same_s": med(same_t), "lora_switch_ratio": med(switch_t) / med(same_t),
            "lora_loads": pipes.lora_loads}


_COLD = """
import json, os, resource, sys, time
sys.path.insert(0, {repo!r})
t0 = time.perf_counter()
from engine import generate as gen
from engine.config import load_settings
from engine.models import load_pipelines
# The seed's server had its libraries imported already; what it paid per request was
# reading the weights and building the pipelines, so imports are not counted as "load".
from diffusers import ControlNetModel, StableDiffusionControlNetInpaintPipeline, StableDiffusionInpaintPipeline
settings = load_settings()
t1 = time.perf_counter()
pipes = load_pipelines(settings)
t2 = time.perf_counter()
res = gen.generate(json.loads(sys.argv[1]), settings, pipelines=pipes)
t3 = time.perf_counter()
t4 = time.perf_counter()
res = gen.generate(json.loads(sys.argv[1]), settings, pipelines=pipes)
t5 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1, "first_s": t3 - t2, "warm_s": t5 - t4,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def bench_cold(home: Path, runs: int, steps: int, lora: str | None) -> dict:
    env = dict(os.environ, CARTOLINA_HOME=str(home), HF_HUB_OFFLINE="1")
    rows = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _COLD.format(repo=str(REPO)), json.dumps(request(steps, lora))],
                             env=env, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    cold = [r["load_s"] + r["first_s"] for r in rows]
    warm = [r["warm_s"] for r in rows]
    return {"cold_s": med(cold), "warm_s": med(warm), "cold_over_warm": med(cold) / med(warm),
            "load_s": med([r["load_s"] for r in rows]), "import_s": med([r["import_s"] for r in rows]),
            "maxrss_mb": max(r["maxrss_mb"] for r in rows)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--cold-runs", type=int, default=3)
    args = ap.parse_args(argv)
    import logging
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp))
        a = bench_overhead_and_lora(home, args.pairs, args.steps)
        b = bench_cold(home, args.cold_runs, args.steps, None)
        c = bench_cold(home, args.cold_runs, args.steps, "00000001")
    print(f"## Generation, demo models, 512×512, {args.steps} steps, {args.pairs} interleaved pairs\n")
    print("| measure | median | ratio |")
    print("| --- | --- | --- |")
    print(f"| (a) engine `generate` vs bare diffusers call | {a['engine_s']:.3f} s vs {a['bare_s']:.3f} s "
          f"| **{a['overhead_ratio']:.3f}** (target ≤ 1.05) |")
    print(f"| (b) cold request (load + generate) vs warm request | {b['cold_s']:.3f} s vs {b['warm_s']:.3f} s "
          f"| **{b['cold_over_warm']:.2f}×** (target ≥ 5×) |")
    print(f"| (b) of which pipeline load from disk | {b['load_s']:.3f} s | (imports {b['import_s']:.2f} s not counted) |")
    print(f"| (c) request switching LoRA vs reusing the same LoRA | {a['lora_switch_s']:.3f} s vs {a['lora_same_s']:.3f} s "
          f"| {a['lora_switch_ratio']:.3f} |")
    print(f"| (c) request with a LoRA's first load | {a['lora_first_load_s']:.3f} s | "
          f"{a['lora_first_load_s'] / a['lora_same_s']:.2f}× a cached one ({a['lora_loads']} loads in all) |")
    print(f"| (d) peak RSS, one process: load + 2 requests, no LoRA | {b['maxrss_mb']:.0f} MB | |")
    print(f"| (d) peak RSS, one process: load + 2 requests with a LoRA | {c['maxrss_mb']:.0f} MB | |")


if __name__ == "__main__":
    main()
