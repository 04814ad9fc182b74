"""`models fetch` against a stand-in hub and without one; `models info` on the demo models.

The stand-in (tests/fake_hub.py) serves the demo models as a hub repository would hold SD-1.5
inpainting and ControlNet openpose: plain and fp16 safetensors, pickles, the safety checker and
a single-file checkpoint beside the diffusers folders, so the tests see what fetch leaves behind.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load, load_file, save

from engine.cli import main
from engine.config import load_settings
from engine.model_store import DEFAULT_CONTROLNET_ID, DEFAULT_INPAINT_ID, select_files
from engine.models import load_pipelines
from tests.fake_hub import FakeHub, repo_files

REPO = Path(__file__).resolve().parent.parent
UNET_FP16 = "unet/diffusion_pytorch_model.fp16.safetensors"


def _fp16(data: bytes) -> bytes:
    return save({k: v.half() for k, v in load(data).items()}, metadata={"format": "pt"})


def _as_on_the_hub(files: dict[str, bytes], extras: dict[str, bytes]) -> dict[str, bytes]:
    out = dict(files, **extras)
    out.update({name.replace(".safetensors", ".fp16.safetensors"): _fp16(data)
                for name, data in files.items() if name.endswith(".safetensors")})
    return out


@pytest.fixture(scope="module")
def hub_repos(demo_models_root) -> dict[str, dict[str, bytes]]:
    demo = demo_models_root / "demo"
    pickle = b"\x80\x04not for us"
    return {
        DEFAULT_INPAINT_ID: _as_on_the_hub(repo_files(demo / "sd-inpaint"), {
            "README.md": b"# model card", ".gitattributes": b"*.safetensors filter=lfs",
            "sd-v1-5-inpainting.ckpt": pickle, "unet/diffusion_pytorch_model.bin": pickle,
            "safety_checker/config.json": b"{}", "safety_checker/model.safetensors": b"unused",
            "feature_extractor/preprocessor_config.json": b'{"crop_size": 224}'}),
        DEFAULT_CONTROLNET_ID: _as_on_the_hub(repo_files(demo / "controlnet-openpose"), {
            "README.md": b"# model card", "diffusion_pytorch_model.bin": pickle,
            "diffusion_pytorch_model.fp16.bin": pickle, "control_v11p_sd15_openpose.pth": pickle}),
    }


@pytest.fixture
def hub(hub_repos, monkeypatch, home):
    with FakeHub() as fake:
        for repo_id, files in hub_repos.items():
            fake.add_repo(repo_id, files)
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


@pytest.fixture
def offline_flag(monkeypatch):
    """As in every studio process: huggingface_hub imported with HF_HUB_OFFLINE=1."""
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return constants


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# --- what comes down -------------------------------------------------------------------------

SD_INPAINTING_LISTING = [
    ".gitattributes", "README.md", "feature_extractor/preprocessor_config.json", "model_index.json",
    "safety_checker/config.json", "safety_checker/model.fp16.safetensors", "safety_checker/model.safetensors",
    "safety_checker/pytorch_model.bin", "scheduler/scheduler_config.json", "sd-v1-5-inpainting.ckpt",
    "text_encoder/config.json", "text_encoder/model.fp16.safetensors", "text_encoder/model.safetensors",
    "text_encoder/pytorch_model.bin", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "unet/config.json",
    "unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.fp16.bin",
    "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.safetensors",
    "v1-inpainting-inference.yaml", "vae/config.json", "vae/diffusion_pytorch_model.bin",
    "vae/diffusion_pytorch_model.safetensors"]  # this vae has no fp16 file: the plain one comes


def test_select_files_takes_configs_and_one_set_of_safetensors():
    configs = ["feature_extractor/preprocessor_config.json", "model_index.json", "scheduler/scheduler_config.json",
               "text_encoder/config.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
               "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "unet/config.json", "vae/config.json"]
    assert select_files(SD_INPAINTING_LISTING, configs_only=True) == configs
    assert select_files(SD_INPAINTING_LISTING) == sorted(configs + [
        "text_encoder/model.fp16.safetensors", UNET_FP16, "vae/diffusion_pytorch_model.safetensors"])


def test_fetch_downloads_only_what_a_pipeline_loads(hub, hub_repos, offline_flag, capsys, home):
    rc, out, err = _run(capsys, "models", "fetch", "--json")
    assert rc == 0, err
    report = json.loads(out)
    # huggingface_hub's progress bars, on stderr (bytes too, on a terminal)
    assert "Fetching" in err and "100%|" in err
    assert offline_flag.HF_HUB_OFFLINE is True  # lifted for fetch's own calls only
    assert report["environment"] == {"CARTOLINA_INPAINT_MODEL": DEFAULT_INPAINT_ID,
                                     "CARTOLINA_CONTROLNET_MODEL": DEFAULT_CONTROLNET_ID}
    assert hub.downloaded(DEFAULT_CONTROLNET_ID) == {"config.json", "diffusion_pytorch_model.fp16.safetensors"}
    got = hub.downloaded(DEFAULT_INPAINT_ID)
    assert got == set(report["fetched"][0]["files"])
    assert {f for f in got if f.endswith(".safetensors")} == {
        UNET_FP16, "vae/diffusion_pytorch_model.fp16.safetensors", "text_encoder/model.fp16.safetensors"}
    assert "model_index.json" in got and "tokenizer/vocab.json" in got
    assert not any(f.startswith("safety_checker/") or f.endswith((".bin", ".ckpt", ".md")) for f in got)
    for repo_id in (DEFAULT_INPAINT_ID, DEFAULT_CONTROLNET_ID):
        folder = home / "models" / repo_id
        for name in hub.downloaded(repo_id):
            assert (folder / name).read_bytes() == hub_repos[repo_id][name], name

    hub.requests.clear()  # a second fetch finds everything complete and downloads nothing
    rc, out, _ = _run(capsys, "models", "fetch")
    assert rc == 0 and hub.downloaded(DEFAULT_INPAINT_ID) == hub.downloaded(DEFAULT_CONTROLNET_ID) == set()
    assert f"  CARTOLINA_INPAINT_MODEL={DEFAULT_INPAINT_ID}\n" in out
    assert f"  CARTOLINA_CONTROLNET_MODEL={DEFAULT_CONTROLNET_ID}\n" in out


def test_fetched_models_load_as_fp16_and_info_says_so(hub, capsys, monkeypatch, demo_models_root):
    assert _run(capsys, "models", "fetch")[0] == 0
    monkeypatch.setenv("CARTOLINA_INPAINT_MODEL", DEFAULT_INPAINT_ID)
    monkeypatch.setenv("CARTOLINA_CONTROLNET_MODEL", DEFAULT_CONTROLNET_ID)
    rc, out, err = _run(capsys, "models", "info", "--json", "--load")
    assert rc == 0, out + err
    report = json.loads(out)
    for name in ("inpaint", "controlnet"):
        m = report["models"][name]
        assert (m["source"], m["variant"], m["stored_dtypes"], m["loads"]) == ("folder", "fp16", ["F16"], True)
    assert report["load"]["ok"] is True

    unet = load_pipelines(load_settings()).body.unet.state_dict()
    demo = load_file(str(demo_models_root / "demo/sd-inpaint/unet/diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(unet[k], v.half().float()) for k, v in demo.items())  # the fp16 files loaded


def test_fetch_resumes_a_dropped_download(hub, hub_repos, capsys, home, monkeypatch):
    from huggingface_hub import constants
    # Real weights span hundreds of the library's 10 MB chunks; the demo's 2 MB must span some.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    hub.cut_once.add(UNET_FP16)
    rc, _, err = _run(capsys, "models", "fetch")
    assert rc == 0, err
    resumed = [rng for method, path, rng in hub.requests if method == "GET" and path.endswith(UNET_FP16) and rng]
    assert resumed and resumed[0].startswith("bytes=") and resumed[0] != "bytes=0-"
    assert (home / "models" / DEFAULT_INPAINT_ID / UNET_FP16).read_bytes() == hub_repos[DEFAULT_INPAINT_ID][UNET_FP16]


def test_fetch_configs_only_brings_no_weights(hub, capsys, home):
    rc, out, _ = _run(capsys, "models", "fetch", "--configs-only")
    assert rc == 0
    got = hub.downloaded(DEFAULT_INPAINT_ID) | hub.downloaded(DEFAULT_CONTROLNET_ID)
    assert got and all(f.endswith((".json", ".txt")) for f in got)
    assert not list((home / "models").rglob("*.safetensors"))
    assert f"  CARTOLINA_INPAINT_CONFIG={DEFAULT_INPAINT_ID}\n" in out


def test_fetch_an_unknown_or_wrong_model_is_bad_input(hub, capsys):
    rc, _, err = _run(capsys, "models", "fetch", "--inpaint", "nobody/nothing-here")
    assert rc == 2
    assert "--inpaint: no such model on the hub (got 'nobody/nothing-here')" in err
    rc, _, err = _run(capsys, "models", "fetch", "--inpaint", DEFAULT_CONTROLNET_ID)
    assert rc == 2 and "--inpaint: not a diffusers pipeline repository (no model_index.json)" in err
    assert hub.downloaded(DEFAULT_CONTROLNET_ID) == set()


def test_fetch_without_network_says_so_in_one_line(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, CARTOLINA_HOME=str(tmp_path), HF_HUB_OFFLINE="1", HF_ENDPOINT=f"http://127.0.0.1:{port}")
    proc = subprocess.run([sys.executable, "-m", "engine", "models", "fetch"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: cannot reach the model hub (http://127.0.0.1:{port}) to fetch "
                                  f"{DEFAULT_INPAINT_ID}: ")
    assert "run fetch on a machine that is online" in proc.stderr


# --- models info -----------------------------------------------------------------------------

def test_models_info_on_the_demo_models(demo_home, capsys, demo_models_root):
    rc, out, _ = _run(capsys, "models", "info", "--json", "--load")
    assert rc == 0
    report = json.loads(out)
    assert (report["device"], report["dtype"], report["ok"], report["load"]["ok"]) == ("cpu", "float32", True, True)
    for name, folder in (("inpaint", "sd-inpaint"), ("controlnet", "controlnet-openpose")):
        m = report["models"][name]
        params = sum(t.numel() for f in (demo_models_root / "demo" / folder).rglob("*.safetensors")
                     for t in load_file(str(f)).values())
        assert (m["source"], m["where"]) == ("folder", str(demo_home / "models/demo" / folder))
        assert (m["parameters"], m["weights_bytes"], m["loads"]) == (params, params * 4, True)
    assert report["weights_bytes"] == sum(m["weights_bytes"] for m in report["models"].values())

    rc, out, _ = _run(capsys, "models", "info")
    assert rc == 0 and "inpaint: CARTOLINA_INPAINT_MODEL=demo/sd-inpaint\n  folder " in out
    assert "loads: yes" in out and "of weights on cpu" in out


def test_models_info_names_what_will_not_load(demo_home, capsys, monkeypatch):
    broken = demo_home / "models" / "broken"
    shutil.copytree(demo_home / "models/demo/sd-inpaint", broken)
    weights = broken / "unet/diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # a download cut short
    monkeypatch.setenv("CARTOLINA_INPAINT_MODEL", "broken")
    monkeypatch.setenv("CARTOLINA_CONTROLNET_MODEL", DEFAULT_CONTROLNET_ID)
    rc, out, _ = _run(capsys, "models", "info")
    assert rc == 1
    assert f"  loads: no: {weights}: not a readable safetensors file" in out and "truncated?" in out
    assert (f"  loads: no: CARTOLINA_CONTROLNET_MODEL: '{DEFAULT_CONTROLNET_ID}' not found" in out
            and "run `python -m engine models fetch` to download it" in out)


def test_models_info_names_a_hub_id_as_such_without_going_online(demo_home, capsys, monkeypatch):
    def refuse(self, address):
        raise OSError(f"test: network blocked (connect to {address})")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("CARTOLINA_ALLOW_HUB", "1")
    monkeypatch.setenv("CARTOLINA_INPAINT_MODEL", "someone/not-fetched")
    rc, out, _ = _run(capsys, "models", "info", "--json")
    report = json.loads(out)
    hub = report["models"]["inpaint"]
    assert (hub["source"], hub["where"], hub["loads"], hub["parameters"]) == ("hub", "someone/not-fetched", None, None)
    assert "not checked here" in hub["note"] and "models fetch" in hub["note"]
    assert report["models"]["controlnet"]["loads"] is True and report["weights_bytes"] is None
    assert rc == 0 and report["ok"] is True  # not known to fail: a machine that is online may load it
    rc, out, _ = _run(capsys, "models", "info")
    assert "  hub someone/not-fetched\n  a hub id: downloaded when first loaded" in out


def test_every_module_loads_in_the_configured_dtype(demo_home, monkeypatch):
    """The face pipeline shares the body's modules; building it must not cast them back to
    fp32 (on a GPU the ControlNet stayed fp16 and the first picture failed on mixed dtypes)."""
    monkeypatch.setenv("CARTOLINA_DTYPE", "bfloat16")
    pipes = load_pipelines(load_settings())
    for name in ("unet", "vae", "text_encoder", "controlnet"):
        assert getattr(pipes.body, name).dtype == torch.bfloat16, name
    assert pipes.face.unet is pipes.body.unet
