"""A single-file checkpoint (the form most people download) loads and paints with no network.

The demo models are written out in the original LDM layout (tests/ldm_layout.py) and loaded
through the studio's own loader with every socket connection refused; their configs come from
a local diffusers folder, never from a hub.
"""

from __future__ import annotations

import json
import shutil
import socket

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from engine.cli import main
from engine.config import load_settings
from engine.errors import ModelError
from engine.generate import generate
from engine.model_store import DEFAULT_INPAINT_ID
from engine.models import load_pipelines
from tests import ldm_layout

REQUEST = {"poi_name": "Piazza del Duomo", "poi_image": "Fountain view", "action_name": "waving",
           "action_shot_type": "MES", "age": "adult", "gender": "woman", "seed": 7, "steps": 2}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(self, address):
        raise OSError(f"test: network blocked (connect to {address})")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module", params=[".safetensors", ".ckpt"])
def checkpoints(request, demo_models_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("single-file")
    demo = demo_models_root / "demo"
    suffix = request.param
    return {
        "inpaint": ldm_layout.save_checkpoint(ldm_layout.pipeline_checkpoint(demo / "sd-inpaint"),
                                              folder / f"my-inpaint{suffix}"),
        "controlnet": ldm_layout.save_checkpoint(ldm_layout.controlnet_checkpoint(demo / "controlnet-openpose"),
                                                 folder / f"my-openpose{suffix}"),
    }


@pytest.fixture
def single_file_env(demo_home, checkpoints, monkeypatch):
    monkeypatch.setenv("CARTOLINA_INPAINT_MODEL", str(checkpoints["inpaint"]))
    monkeypatch.setenv("CARTOLINA_CONTROLNET_MODEL", str(checkpoints["controlnet"]))
    monkeypatch.setenv("CARTOLINA_INPAINT_CONFIG", "demo/sd-inpaint")
    monkeypatch.setenv("CARTOLINA_CONTROLNET_CONFIG", "demo/controlnet-openpose")
    return checkpoints


def _demo_weights(demo_models_root, rel: str) -> dict[str, torch.Tensor]:
    return load_file(str(demo_models_root / "demo" / rel))


def test_single_file_checkpoints_load_and_paint_with_the_network_blocked(single_file_env, no_network,
                                                                          demo_models_root):
    settings = load_settings()
    pipes = load_pipelines(settings)
    for module, rel in ((pipes.body.unet, "sd-inpaint/unet/diffusion_pytorch_model.safetensors"),
                        (pipes.body.vae, "sd-inpaint/vae/diffusion_pytorch_model.safetensors"),
                        (pipes.body.text_encoder, "sd-inpaint/text_encoder/model.safetensors"),
                        (pipes.body.controlnet, "controlnet-openpose/diffusion_pytorch_model.safetensors")):
        expected, loaded = _demo_weights(demo_models_root, rel), module.state_dict()
        assert expected.keys() == loaded.keys(), rel
        assert all(torch.equal(expected[k], loaded[k]) for k in expected), rel

    result = generate(REQUEST, settings)
    with Image.open(result.path) as out:
        assert out.size == (result.width, result.height)
        assert np.asarray(out.convert("RGB")).std() > 0


def test_single_file_finds_the_configs_models_fetch_writes(single_file_env, no_network, monkeypatch,
                                                           demo_models_root):
    monkeypatch.delenv("CARTOLINA_INPAINT_CONFIG")
    settings = load_settings()
    with pytest.raises(ModelError) as err:
        load_pipelines(settings)
    message = str(err.value)
    assert "CARTOLINA_INPAINT_MODEL" in message and "models fetch --configs-only" in message
    assert "CARTOLINA_INPAINT_CONFIG" in message

    shutil.copytree(demo_models_root / "demo" / "sd-inpaint", settings.models_dir / DEFAULT_INPAINT_ID,
                    ignore=shutil.ignore_patterns("*.safetensors"))  # configs and tokenizer only
    assert load_pipelines(settings).body.unet.config.in_channels == 9


def test_a_config_folder_that_is_not_one_is_named(single_file_env, monkeypatch, tmp_path):
    monkeypatch.setenv("CARTOLINA_CONTROLNET_CONFIG", str(tmp_path))
    with pytest.raises(ModelError, match="CARTOLINA_CONTROLNET_CONFIG: .* has no config.json"):
        load_pipelines(load_settings())


def test_models_info_on_a_single_file(single_file_env, no_network, capsys, demo_models_root):
    assert main(["models", "info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    inpaint, controlnet = report["models"]["inpaint"], report["models"]["controlnet"]
    assert (inpaint["source"], inpaint["where"]) == ("file", str(single_file_env["inpaint"]))
    assert inpaint["config"].endswith("demo/sd-inpaint") and inpaint["loads"] is True
    demo_params = sum(t.numel() for rel in ("sd-inpaint/unet/diffusion_pytorch_model.safetensors",
                                            "sd-inpaint/vae/diffusion_pytorch_model.safetensors",
                                            "sd-inpaint/text_encoder/model.safetensors")
                      for t in _demo_weights(demo_models_root, rel).values())
    assert inpaint["parameters"] == demo_params
    assert inpaint["weights_bytes"] == demo_params * 4  # float32 on a CPU
    assert controlnet["source"] == "file" and controlnet["loads"] is True
    assert report["ok"] is True

