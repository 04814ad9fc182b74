# syntax=docker/dockerfile:1
# Cartolina studio for a kiosk with an NVIDIA GPU: `docker compose up -d` (compose.yaml,
# docs/deployment.md). The host needs the NVIDIA driver and the NVIDIA Container Toolkit.
#
# Base: Python 3.11 on Debian, not nvidia/cuda. PyTorch's CUDA wheels bring their own CUDA
# runtime, cuBLAS and cuDNN (the nvidia-*-cu12 wheels they depend on), and torch loads those,
# never a system copy: a CUDA base image would add gigabytes nothing uses, and it ships
# Ubuntu's Python (3.10 on 22.04, 3.12 on 24.04), not the 3.11 the studio is pinned and tested
# on. Pinned by tag and digest; to move on, `docker buildx imagetools inspect <tag>`.
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# PyTorch's wheel index for the CUDA build: cu126 runs on the widest range of drivers and
# cards (Maxwell to Hopper); RTX 50xx (Blackwell) cards need cu129 or newer.
ARG TORCH_CUDA=cu126

# The NVIDIA runtime mounts the driver's CUDA library only when asked (NVIDIA's own images
# set these). Everything else runs offline: models come from the models volume, never a hub.
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
    CARTOLINA_HOME=/data \
    PATH=/app/.venv/bin:$PATH

RUN useradd --create-home --uid 10001 --user-group cartolina
WORKDIR /app

# The CUDA build of the torch that requirements.txt pins, in a layer of its own (about 4 GB):
# a code change does not download it again. bin/setup keeps it: `torch==2.13.0` is
# satisfied by 2.13.0+cu126, so pip installs nothing over it.
COPY requirements.txt .
RUN python3.11 -m venv .venv \
    && .venv/bin/pip install --no-cache-dir "$(grep -E '^torch==' requirements.txt)" \
       --index-url "https://download.pytorch.org/whl/${TORCH_CUDA}"

# The README's set-up, as it is: the pinned requirements, the visitor pages' languages, the
# demo models and demo catalog (the volumes' first contents). Then check that the CUDA build
# survived it. The code stays root's: the studio writes only under /data.
COPY . .
RUN bin/setup \
    && python -c "import sys, torch; sys.exit(torch.version.cuda is None and 'bin/setup replaced the CUDA build of torch')" \
    && mkdir -p /data/models \
    && chown -R cartolina:cartolina /data

USER 10001:10001
VOLUME ["/data", "/data/models"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() != b'ok')"]
CMD ["streamlit", "run", "serve.py", "--server.headless", "true", "--server.address", "0.0.0.0", \
     "--server.port", "8501", "--browser.gatherUsageStats", "false"]
