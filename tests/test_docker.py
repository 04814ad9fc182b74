"""The GPU kiosk's Dockerfile and compose.yaml, checked without a Docker engine (none here):
hadolint on the Dockerfile, the compose specification's schema on compose.yaml, and what
neither can see: the GPU reservation, the health check, a non-root user, no secret in a file,
bin/setup keeping the CUDA build of torch the image installs first, and a site profile whose
kiosks and worker meet on one data root and one Redis while the default stays one kiosk."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.config import load_settings
from engine.errors import InvalidInput
from tests.server import REPO

BIN = Path(sys.executable).parent
# Any attempt to reach the network fails at once: both linters must work offline.
OFFLINE = dict(os.environ, HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9", NO_COLOR="1")


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, re.M)]


@pytest.fixture(scope="module")
def studio() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["studio"]


# --- the linters -------------------------------------------------------------------------------------

def test_hadolint_finds_nothing_in_the_dockerfile_at_its_strictest():
    out = subprocess.run([str(BIN / "hadolint"), "--failure-threshold", "style", "--format", "json",
                          "Dockerfile"], cwd=REPO, capture_output=True, text=True, env=OFFLINE, timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout) == [], out.stdout + out.stderr


def test_hadolint_would_catch_the_usual_mistakes():
    """The linter is really linting: an unpinned base image and a root user fail it."""
    bad = "FROM python\nRUN pip install torch\nUSER root\n"
    out = subprocess.run([str(BIN / "hadolint"), "--failure-threshold", "warning", "--format", "json", "-"],
                         input=bad, capture_output=True, text=True, env=OFFLINE, timeout=60)
    codes = {finding["code"] for finding in json.loads(out.stdout)}
    assert out.returncode == 1 and {"DL3006", "DL3013", "DL3002"} <= codes


def test_compose_yaml_follows_the_compose_specification_offline():
    out = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                          "compose.yaml"], cwd=REPO, capture_output=True, text=True, env=OFFLINE, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# --- the image -----------------------------------------------------------------------------------------

def test_the_image_is_pinned_installs_cuda_torch_then_runs_bin_setup_as_the_readme_does():
    steps = instructions(dockerfile())
    base = [args for op, args in steps if op == "FROM"]
    assert len(base) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base[0])
    runs = [args for op, args in steps if op == "RUN"]
    torch_step = next(i for i, r in enumerate(runs) if "download.pytorch.org/whl/" in r)
    setup_step = next(i for i, r in enumerate(runs) if r.startswith("bin/setup"))
    assert torch_step < setup_step
    # the torch pin is requirements.txt's own line, from PyTorch's CUDA 12 index
    assert "grep -E '^torch==' requirements.txt" in runs[torch_step]
    assert re.search(r"ARG TORCH_CUDA=cu12\d\b", dockerfile())
    assert "torch.version.cuda" in runs[setup_step]  # the build fails if set-up replaced it
    # set-up is bin/setup's, not repeated here
    assert not any("-r requirements" in r or "pybabel" in r or "engine demo" in r for r in runs)


def test_the_image_runs_as_a_user_with_data_and_models_as_volumes_and_a_health_check():
    steps = instructions(dockerfile())
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    volumes = json.loads(next(args for op, args in steps if op == "VOLUME"))
    assert volumes == ["/data", "/data/models"]
    assert any(op == "ENV" and "CARTOLINA_HOME=/data " in args for op, args in steps)
    health = next(args for op, args in steps if op == "HEALTHCHECK")
    assert "http://127.0.0.1:8501/_stcore/health" in health
    assert ("EXPOSE", "8501") in steps


def test_bin_setup_keeps_an_installed_torch_of_the_pinned_version():
    """The image installs torch 2.13.0+cu126 before bin/setup; pip treats `torch==2.13.0` as
    satisfied by any local build of 2.13.0 (here the +cpu one) and installs nothing over it,
    as long as set-up never asks pip to upgrade or reinstall the requirements."""
    setup = (REPO / "bin" / "setup").read_text()
    install = [ln for ln in setup.splitlines() if "pip install" in ln and '-r "$REQ"' in ln]
    assert len(install) == 1 and not re.search(r"--upgrade|-U\b|--force-reinstall|--ignore-installed", install[0])
    import torch
    assert "+" in torch.__version__  # a local build, as the CUDA one is
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--quiet",
                          "--report", "-", "-r", "requirements.txt"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert [p["metadata"]["name"] for p in json.loads(out.stdout)["install"]] == []


def test_the_secrets_folder_never_reaches_an_image_or_git():
    assert "secrets" in (REPO / ".dockerignore").read_text().split()
    assert "/secrets/" in (REPO / ".gitignore").read_text().split()


# --- the kiosk's compose file --------------------------------------------------------------------------

def test_compose_reserves_the_gpu_restarts_and_runs_a_kiosk(studio):
    devices = studio["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    assert studio["restart"] in ("always", "unless-stopped")
    assert studio["environment"]["CARTOLINA_MODE"] == "kiosk"
    assert studio.get("init") is True  # reaps trainers orphaned by their parent trainer
    assert "8501:8501" in studio["ports"]
    assert not studio.get("healthcheck", {}).get("disable")  # the image's health check stays on
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert studio["volumes"] == ["data:/data", "models:/data/models"]
    used = {v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])}
    assert set(compose["volumes"]) == used  # the schema lets an undeclared one pass


def test_the_curator_password_is_a_secret_file_never_a_value_in_compose(studio):
    env = studio["environment"]
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    (secret,) = studio["secrets"]
    assert env["CARTOLINA_CURATOR_PASSWORD_FILE"] == f"/run/secrets/{secret}"
    assert compose["secrets"][secret] == {"file": f"./secrets/{secret}"}
    secretish = [k for k in env if re.search(r"PASSWORD|SECRET|TOKEN|KEY", k) and not k.endswith("_FILE")]
    assert secretish == []


def test_the_studio_reads_the_curator_password_from_the_secret_file(tmp_path):
    secret = tmp_path / "curator_password"
    secret.write_text("correct horse battery staple\n")
    settings = load_settings({"CARTOLINA_CURATOR_PASSWORD_FILE": str(secret)})
    assert settings.curator_password == "correct horse battery staple"
    assert "correct horse" not in repr(settings)
    assert load_settings({"CARTOLINA_CURATOR_PASSWORD": "from the environment"}).curator_password == \
        "from the environment"
    assert load_settings({}).curator_password == ""

    with pytest.raises(InvalidInput) as both:
        load_settings({"CARTOLINA_CURATOR_PASSWORD": "hunter2", "CARTOLINA_CURATOR_PASSWORD_FILE": str(secret)})
    assert both.value.field == "CARTOLINA_CURATOR_PASSWORD_FILE" and "hunter2" not in str(both.value)
    with pytest.raises(InvalidInput) as missing:
        load_settings({"CARTOLINA_CURATOR_PASSWORD_FILE": str(tmp_path / "nowhere")})
    assert missing.value.field == "CARTOLINA_CURATOR_PASSWORD_FILE" and "cannot read" in str(missing.value)


# --- the site profile: Redis, a GPU worker, kiosks ------------------------------------------------

def _compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def _data_root(service: dict) -> str:
    (volume,) = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == "/data"]
    return volume


def _gpu(service: dict) -> bool:
    devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return any("gpu" in d.get("capabilities", []) for d in devices)


def test_without_a_profile_compose_starts_the_single_kiosk_alone():
    """`docker compose up` starts the services that have no profile, and what they depend on."""
    services = _compose()["services"]
    default = [name for name, s in services.items() if not s.get("profiles")]
    assert default == ["studio"]
    assert "depends_on" not in services["studio"] and "CARTOLINA_BROKER_URL" not in services["studio"]["environment"]


def test_the_site_profile_has_redis_gpu_workers_and_kiosks_on_one_data_root_and_one_broker():
    compose = _compose()
    site = {name: s for name, s in compose["services"].items() if "site" in s.get("profiles", [])}
    redis = site.pop("redis")
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+-bookworm(@sha256:[0-9a-f]{64})?", redis["image"])  # pinned
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"  # queued trainings survive a restart
    assert [v.split(":")[1] for v in redis["volumes"]] == ["/data"]  # ... on a volume
    assert "ping" in redis["healthcheck"]["test"] and not redis.get("ports")  # not exposed beyond the site

    workers = {n: site.pop(n) for n in [n for n, s in site.items()
                                        if s.get("command", [])[:4] == ["python", "-m", "engine", "worker"]]}
    queues = {n: w["command"][w["command"].index("--queues") + 1] for n, w in workers.items()}
    # pictures and trainings on workers of their own, so no picture waits behind a training
    assert sorted(queues.values()) == ["generate", "train"]
    for name, worker in workers.items():
        assert _gpu(worker) and worker["environment"]["CARTOLINA_DEVICE"] == "cuda"
        assert worker["restart"] in ("always", "unless-stopped") and worker.get("init") is True
        # a stop lets the trainer save a checkpoint and hands its task back at once (Celery's cold shutdown)
        assert worker["stop_signal"] == "SIGQUIT"
        grace = re.fullmatch(r"(\d+)([sm])", worker["stop_grace_period"])
        assert int(grace[1]) * {"s": 1, "m": 60}[grace[2]] >= 30
        node = worker["command"][worker["command"].index("--name") + 1].split("@")[0]
        assert "inspect ping" in worker["healthcheck"]["test"][1] and f"{node}@" in worker["healthcheck"]["test"][1]
    worker = workers[min(workers)]

    kiosks = site
    assert len(kiosks) >= 2 and all(k["environment"]["CARTOLINA_MODE"] == "kiosk" for k in kiosks.values())
    assert not any(_gpu(k) for k in kiosks.values())
    ports = [p.split(":")[0] for k in kiosks.values() for p in k["ports"]]
    assert len(set(ports)) == len(ports) == len(kiosks)

    together = [*workers.values(), *kiosks.values()]
    roots = {_data_root(s) for s in together}
    assert len(roots) == 1 and roots != {_data_root(compose["services"]["studio"])}  # not the embedded studio's
    assert {tuple(s["volumes"]) for s in together} == {tuple(worker["volumes"])}  # same paths everywhere
    brokers = {s["environment"]["CARTOLINA_BROKER_URL"] for s in together}
    assert brokers == {"redis://redis:6379/0"}
    assert all(s["depends_on"]["redis"]["condition"] == "service_healthy" for s in together)
    assert {s["image"] for s in together} == {compose["services"]["studio"]["image"]}
    models = {(s["environment"]["CARTOLINA_INPAINT_MODEL"], s["environment"]["CARTOLINA_CONTROLNET_MODEL"])
              for s in together}
    assert len(models) == 1  # a training's spec names the model its kiosk was set to
