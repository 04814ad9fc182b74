"""The studio's trainer against diffusers' DreamBooth-LoRA example, at true size, side by side.

    .venv/bin/python bench/bench_trainer_vs_peer.py --peer PATH/train_dreambooth_lora.py \\
        [--python PY] [--resolution 256] [--steps 3,13] [--size full]

The peer is diffusers' own `examples/dreambooth/train_dreambooth_lora.py`, unmodified (it is
not in the diffusers wheel and is not copied here: take it from a diffusers checkout,
`git show v0.40.0:examples/dreambooth/train_dreambooth_lora.py`). It needs torchvision,
tensorboard and ftfy, and PyPI's torchvision does not import beside the CPU build of torch
this project pins, so `--python` names an interpreter whose environment has the project's
requirements plus those (docs/benchmarks.md says how); both trainers run under it, on the
same torch.

Both train a rank-16 LoRA on the same five photos (the crops `jobs.submit` makes) with batch
1, AdamW, lr 1e-4, each in its best configuration for this machine: bf16 where the machine
has it (CUDA, or a CPU with native bf16: `engine.precision`), fp32 elsewhere; the peer with
`--pre_compute_text_embeddings`, the studio's trainer with its likeness validation off (it
paints faces, which the peer never does). The peer trains the text-to-image twin of the
inpainting model (the same shapes with a 4-channel UNet, built here), since it cannot train an
inpainting UNet.

Each trainer runs as its own process for two step counts; seconds per step is the difference
of the wall times over the difference of the steps, so start-up, loading and caching cancel,
and the fixed cost is what is left. Prints a markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_LORA_STEPS = 1500
PROMPT = "a photo of sks person"


def build_twin(inpaint: Path, twin: Path) -> None:
    """The text-to-image twin: the inpainting pipeline's VAE, text encoder, tokenizer and
    scheduler, and a UNet of the same shape with 4 input channels (seeded random weights)."""
    import torch
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline, UNet2DConditionModel
    if (twin / "model_index.json").is_file():
        return
    src = StableDiffusionInpaintPipeline.from_pretrained(str(inpaint), safety_checker=None,
                                                         requires_safety_checker=False)
    config = dict(src.unet.config)
    config["in_channels"] = 4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        unet = UNet2DConditionModel.from_config(config)
    pipe = StableDiffusionPipeline(vae=src.vae, text_encoder=src.text_encoder, tokenizer=src.tokenizer, unet=unet,
                                   scheduler=src.scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.to(dtype=torch.float16)  # as the inpainting model is stored
    pipe.save_pretrained(str(twin), safe_serialization=True)


def best_precision(device: str) -> str:
    from engine import precision
    if device == "cuda":
        return "bf16"
    return "bf16" if precision.cpu_has_native_bf16() else "no"


def run_timed(cmd: list[str], env: dict, log: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in GB of the child) of one process."""
    t = time.perf_counter()
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{cmd[1]} failed (exit {code}); see {log}")
    return wall, usage.ru_maxrss / 2**20


def ours(python: str, home: Path, photos: list[bytes], steps: int, resolution: int, mode: str,
         env: dict, log: Path) -> tuple[float, float]:
    from engine.config import load_settings
    from engine.training import jobs
    settings = load_settings(env)
    opts = jobs.TrainOptions(total_steps=steps, resolution=resolution, rank=16, learning_rate=1e-4,
                             checkpoint_every=10**6, seed=0, mixed_precision=mode)
    st = jobs.submit(photos, settings, opts, start=False)
    return run_timed([python, "-m", "engine.training.train_lora", "--job", str(settings.jobs_dir / st["code"])],
                     env, log)


def peer(python: str, script: Path, twin: Path, photos_dir: Path, out: Path, steps: int, resolution: int,
         mode: str, env: dict, log: Path) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    return run_timed([python, str(script), "--pretrained_model_name_or_path", str(twin),
                      "--instance_data_dir", str(photos_dir), "--instance_prompt", PROMPT,
                      "--output_dir", str(out), "--resolution", str(resolution), "--train_batch_size", "1",
                      "--max_train_steps", str(steps), "--learning_rate", "1e-4", "--rank", "16",
                      "--mixed_precision", mode, "--pre_compute_text_embeddings",
                      "--checkpointing_steps", str(10**6), "--seed", "0", "--lr_scheduler", "constant",
                      "--lr_warmup_steps", "0"], env, log)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peer", type=Path, required=True, help="diffusers' examples/dreambooth/train_dreambooth_lora.py")
    ap.add_argument("--python", default=sys.executable, help="interpreter for both trainers (with torchvision)")
    ap.add_argument("--size", choices=("full", "demo"), default="full")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--steps", default="3,13", help="the two step counts, e.g. 3,13 (difference ≥ 10)")
    args = ap.parse_args(argv)
    short, long = (int(x) for x in args.steps.split(","))
    if not args.peer.is_file():
        ap.error(f"--peer: {args.peer} is not a file")

    import torch
    from engine.config import load_settings
    from engine.demo.models import build_demo_models, demo_paths
    from engine.models import pick_device
    from bench.bench_train import face_photos

    work = Path(tempfile.mkdtemp(prefix="cartolina-vs-peer-"))
    models = Path(os.environ.get("CARTOLINA_BENCH_MODELS") or work / "models")
    build_demo_models(models, size=args.size)
    inpaint, _ = demo_paths(models, args.size)
    twin = models / args.size / "sd-text2img-twin"
    build_twin(inpaint, twin)
    home = work / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / args.size).symlink_to(inpaint.parent, target_is_directory=True)
    env = {**os.environ, "CARTOLINA_HOME": str(home), "CARTOLINA_INPAINT_MODEL": f"{args.size}/{inpaint.name}",
           "CARTOLINA_CONTROLNET_MODEL": f"{args.size}/controlnet-openpose", "CARTOLINA_FACE_VALIDATION": "0",
           "PYTHONPATH": os.pathsep.join([str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))}
    settings = load_settings(env)
    settings.ensure_dirs()
    device = pick_device(settings.device)
    mode = best_precision(device)

    # the peer's photos: the very crops the studio trains on
    from engine.training import jobs
    photos = face_photos()
    probe = jobs.submit(photos, settings, jobs.TrainOptions(total_steps=1, resolution=args.resolution), start=False)
    photos_dir = work / "peer-photos"
    shutil.copytree(settings.jobs_dir / probe["code"] / "photos", photos_dir)
    shutil.rmtree(settings.jobs_dir / probe["code"])

    log = work / "log.txt"
    runs = {}
    for steps in (short, long):  # alternate the two trainers at each step count
        runs[("ours", steps)] = ours(args.python, home, photos, steps, args.resolution, mode, env, log)
        runs[("peer", steps)] = peer(args.python, args.peer, twin, photos_dir, work / "peer-out", steps,
                                     args.resolution, mode, env, log)
        print(f"{steps} steps: ours {runs[('ours', steps)][0]:.1f} s, peer {runs[('peer', steps)][0]:.1f} s",
              flush=True)

    def figures(who: str) -> dict:
        t_short, t_long = runs[(who, short)][0], runs[(who, long)][0]
        per_step = (t_long - t_short) / (long - short)
        fixed = t_short - short * per_step
        return {"s_per_step": per_step, "fixed_s": fixed, "lora_1500_s": fixed + per_step * DEFAULT_LORA_STEPS,
                "wall_s": {short: t_short, long: t_long}}

    r = {"ours": figures("ours"), "peer": figures("peer")}
    peak = {who: max(v[1] for k, v in runs.items() if k[0] == who) for who in ("ours", "peer")}
    ratio = r["peer"]["s_per_step"] / r["ours"]["s_per_step"]
    card = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or platform.machine()
    trainers_torch = subprocess.run([args.python, "-c", "import torch; print(torch.__version__)"],
                                    capture_output=True, text=True).stdout.strip()
    print(f"| {args.size} models, {args.resolution} px, rank 16, batch 1, {mode} on {card} | studio's trainer | "
          f"diffusers' DreamBooth-LoRA |\n| --- | ---: | ---: |")
    print(f"| seconds per step | {r['ours']['s_per_step']:.2f} | {r['peer']['s_per_step']:.2f} |")
    print(f"| fixed cost (start, load, caching), s | {r['ours']['fixed_s']:.0f} | {r['peer']['fixed_s']:.0f} |")
    print(f"| projected {DEFAULT_LORA_STEPS}-step LoRA, min | {r['ours']['lora_1500_s'] / 60:.1f} | "
          f"{r['peer']['lora_1500_s'] / 60:.1f} |")
    print(f"| peak RSS, GB | {peak['ours']:.1f} | {peak['peer']:.1f} |")
    print(f"| peer's seconds per step / ours | {ratio:.2f}× | |")
    print(json.dumps({"size": args.size, "resolution": args.resolution, "precision": mode, "card": card,
                      "torch": trainers_torch, "steps": [short, long], "ours": r["ours"], "peer": r["peer"],
                      "peer_over_ours": ratio, "peak_rss_gb": peak}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
