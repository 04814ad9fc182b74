#!/usr/bin/env bash
# One command for a CUDA machine: build the true-size models (SD-1.5 shapes, random weights,
# no download) and print what a visitor waits for: seconds per picture, per training step and
# per default LoRA, the engine against the bare diffusers call, peak GPU memory.
#   bench/gpu.sh [--steps 30] [--runs 3] [--train-steps 40]
# Run bin/setup first (with a CUDA build of torch, docs/deployment.md); PYTHON overrides the
# interpreter, CARTOLINA_BENCH_MODELS keeps the built models between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'bench/gpu.sh: torch sees no CUDA device')"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
exec "$PY" bench/bench_true_size.py --size full "$@"
