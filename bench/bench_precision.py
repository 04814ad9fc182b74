"""bf16 against fp32 on this CPU, side by side: why `CARTOLINA_DTYPE=auto` asks the CPU first.

    .venv/bin/python bench/bench_precision.py [--size demo|full] [--repeats 5]

Times, alternating, the same work in fp32 and under bf16 autocast: a 3×3 convolution
(320 channels, 64×64), a 4096×1280 · 1280×1280 matmul, scaled-dot-product attention over
4096 tokens, and one forward of the inpainting UNet (`--size full`: SD-1.5's shapes at a 64×64
latent, 512 px; `demo`: the demo UNet). Prints whether this CPU has native bf16
(`engine.precision.cpu_has_native_bf16`), a markdown table of medians and the bf16/fp32
ratios, and one JSON line. On a CPU with AVX-512 BF16 or AMX bf16 wins (../shared/PACKAGES.md:
2× on the convolution, 4.6× on the matmul); without it, bf16 is emulated and loses.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=("demo", "full"), default="demo")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    import torch
    from diffusers import UNet2DConditionModel
    from engine.config import load_settings
    from engine.demo.models import build_demo_models, demo_paths
    from engine.precision import cpu_has_native_bf16

    models = Path(os.environ.get("CARTOLINA_BENCH_MODELS") or load_settings().models_dir)
    build_demo_models(models, size=args.size)
    unet = UNet2DConditionModel.from_pretrained(str(demo_paths(models, args.size)[0]), subfolder="unet").float().eval()
    latent = 64 if args.size == "full" else unet.config.sample_size
    hidden = unet.config.cross_attention_dim
    torch.manual_seed(0)
    conv, x = torch.nn.Conv2d(320, 320, 3, padding=1), torch.randn(1, 320, 64, 64)
    a, b = torch.randn(4096, 1280), torch.randn(1280, 1280)
    q = torch.randn(1, 8, 4096, 40)
    sample = torch.randn(2, unet.config.in_channels, latent, latent)
    text = torch.randn(2, 77, hidden)
    work = {
        "conv 3×3, 320 ch, 64×64": lambda: conv(x),
        "matmul 4096×1280·1280×1280": lambda: a @ b,
        "SDPA, 4096 tokens, 8 heads": lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q),
        f"UNet forward ({args.size}, {latent}×{latent} latent, batch 2)":
            lambda: unet(sample, torch.tensor(500), encoder_hidden_states=text),
    }
    times = {name: {"fp32": [], "bf16": []} for name in work}
    with torch.inference_mode():
        for name, fn in work.items():
            for mode in ("fp32", "bf16"):  # warm-up
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
                    fn()
            for i in range(args.repeats):
                for mode in (("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32")):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
                        t = time.perf_counter()
                        fn()
                        times[name][mode].append(time.perf_counter() - t)
    native = cpu_has_native_bf16()
    print(f"CPU: {platform.processor() or platform.machine()}, native bf16: {native}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| work | fp32, ms | bf16 autocast, ms | bf16 / fp32 |\n| --- | ---: | ---: | ---: |")
    result = {}
    for name, t in times.items():
        f32, b16 = statistics.median(t["fp32"]) * 1e3, statistics.median(t["bf16"]) * 1e3
        result[name] = {"fp32_ms": f32, "bf16_ms": b16, "ratio": b16 / f32}
        print(f"| {name} | {f32:.1f} | {b16:.1f} | {b16 / f32:.2f}× |")
    print(json.dumps({"native_bf16": native, "torch": torch.__version__, "size": args.size, "work": result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
