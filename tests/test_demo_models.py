"""Demo models: built once, reused, rebuilt when broken, and loadable by the real loaders."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from engine.config import DEMO_CONTROLNET, DEMO_INPAINT  # noqa: E402
from engine.demo import models as demo  # noqa: E402
from engine.errors import ModelError  # noqa: E402


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    out = {}
    for f in sorted(folder.rglob("*.safetensors")):
        for k, v in load_file(str(f)).items():
            out[f"{f.relative_to(folder)}:{k}"] = v
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    models_dir = tmp_path_factory.mktemp("models")
    out = demo.build_demo_models(models_dir)
    out["models_dir"] = models_dir
    return out


@pytest.fixture(scope="module")
def pipes(built):
    from diffusers import ControlNetModel, StableDiffusionControlNetInpaintPipeline
    controlnet = ControlNetModel.from_pretrained(built["controlnet"])
    pipe = StableDiffusionControlNetInpaintPipeline.from_pretrained(built["inpaint"], controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8), "RGB")
    mask = Image.new("L", (512, 512), 0)
    mask.paste(255, (128, 96, 384, 480))
    control = Image.new("RGB", (512, 512), (0, 0, 0))
    control.paste((255, 0, 0), (240, 100, 272, 400))  # a crude "limb"
    return image, mask, control


# Building ----------------------------------------------------------------------------------

def test_build_layout_and_paths(built):
    models_dir = built["models_dir"]
    assert built["built"] is True
    assert built["inpaint"] == models_dir / DEMO_INPAINT
    assert built["controlnet"] == models_dir / DEMO_CONTROLNET
    inpaint = built["inpaint"]
    for rel in ("model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
                "scheduler/scheduler_config.json", "tokenizer/vocab.json", "tokenizer/merges.txt"):
        assert (inpaint / rel).is_file(), rel
    assert list(inpaint.glob("unet/*.safetensors")) and list(inpaint.glob("vae/*.safetensors"))
    assert list(built["controlnet"].glob("*.safetensors"))
    index = json.loads((inpaint / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionInpaintPipeline"
    assert index["requires_safety_checker"] is False
    sched = json.loads((inpaint / "scheduler/scheduler_config.json").read_text())
    assert (sched["beta_schedule"], sched["beta_start"], sched["beta_end"], sched["num_train_timesteps"]) == \
        ("scaled_linear", 0.00085, 0.012, 1000)
    marker = json.loads((models_dir / "demo" / demo.MARKER_NAME).read_text())
    assert marker["recipe_version"] == demo.RECIPE_VERSION and marker["files"]
    assert not [p for p in (models_dir / "demo").iterdir() if p.name.startswith((".stage-", ".trash-"))]


def test_second_build_is_a_quick_no_op(built):
    root = built["models_dir"]
    before = _mtimes(root)
    t0 = time.monotonic()
    again = demo.build_demo_models(root)
    assert time.monotonic() - t0 < 1.0
    assert again["built"] is False
    assert again["inpaint"] == built["inpaint"] and again["controlnet"] == built["controlnet"]
    assert _mtimes(root) == before
    assert demo.demo_models_ready(root)


def test_force_rebuild_and_identical_weights(tmp_path, built):
    first = demo.build_demo_models(tmp_path)
    marker = tmp_path / "demo" / demo.MARKER_NAME
    old_marker_mtime = marker.stat().st_mtime_ns
    rng_before = torch.get_rng_state()
    forced = demo.build_demo_models(tmp_path, force=True)
    assert forced["built"] is True
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is left alone
    assert marker.stat().st_mtime_ns != old_marker_mtime
    # Same seed → the same weights, whichever folder or build they came from.
    for key in ("inpaint", "controlnet"):
        a, b = _weights(built[key]), _weights(forced[key])
        assert a.keys() == b.keys() and a
        assert all(torch.equal(a[k], b[k]) for k in a), key
    assert first["built"] is True


def test_missing_marker_or_file_triggers_rebuild(tmp_path):
    demo.build_demo_models(tmp_path)
    demo_dir = tmp_path / "demo"
    (demo_dir / demo.MARKER_NAME).unlink()  # as if killed before the marker was written
    (demo_dir / ".stage-leftover").mkdir()  # and a half-written staging folder
    assert not demo.demo_models_ready(tmp_path)
    assert demo.build_demo_models(tmp_path)["built"] is True
    assert not (demo_dir / ".stage-leftover").exists()

    weights = next((demo_dir / "sd-inpaint" / "unet").glob("*.safetensors"))
    weights.unlink()
    assert demo.build_demo_models(tmp_path)["built"] is True
    assert weights.is_file()
    assert demo.build_demo_models(tmp_path)["built"] is False


def test_interrupted_build_never_looks_complete(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full")

    # Dies after the folders moved into place but before the marker: must not look built.
    monkeypatch.setattr(demo, "_write_json_atomic", boom)
    with pytest.raises(ModelError, match="disk full"):
        demo.build_demo_models(tmp_path)
    monkeypatch.undo()
    assert not demo.demo_models_ready(tmp_path)
    assert demo.build_demo_models(tmp_path)["built"] is True

    # A failed forced rebuild (while staging) keeps the previous complete build.
    monkeypatch.setattr(demo, "_build_into", boom)
    with pytest.raises(ModelError):
        demo.build_demo_models(tmp_path, force=True)
    monkeypatch.undo()
    assert demo.demo_models_ready(tmp_path)
    assert not [p for p in (tmp_path / "demo").iterdir() if p.name.startswith((".stage-", ".trash-"))]


# Loading and running -----------------------------------------------------------------------

def test_inpaint_pipeline_loads_with_sd_shapes(built):
    from diffusers import StableDiffusionInpaintPipeline
    pipe = StableDiffusionInpaintPipeline.from_pretrained(built["inpaint"])
    assert pipe.unet.config.in_channels == 9
    assert pipe.vae_scale_factor == 8
    assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer)
    assert pipe.text_encoder.config.max_position_embeddings == pipe.tokenizer.model_max_length == 77
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    assert pipe.safety_checker is None


def test_controlnet_inpaint_generates_512(pipes):
    image, mask, control = _inputs()
    out = pipes(prompt="a young woman waving in the piazza, photo", negative_prompt="blurry, deformed",
                image=image, mask_image=mask, control_image=control, num_inference_steps=2,
                output_type="pil", generator=torch.Generator().manual_seed(0)).images[0]
    assert isinstance(out, Image.Image) and out.size == (512, 512) and out.mode == "RGB"
    # NaNs would have been silently cast to 0 in the PIL image; check the float output too.
    arr = pipes(prompt="a young woman waving in the piazza, photo", image=image, mask_image=mask,
                control_image=control, num_inference_steps=2, output_type="np",
                generator=torch.Generator().manual_seed(0)).images[0]
    assert arr.shape == (512, 512, 3) and np.isfinite(arr).all()


def test_control_image_changes_the_picture(pipes):
    image, mask, control = _inputs()

    def run(ctrl):
        return pipes(prompt="a man standing", image=image, mask_image=mask, control_image=ctrl,
                     num_inference_steps=2, output_type="np",
                     generator=torch.Generator().manual_seed(1)).images[0]

    a, b = run(control), run(Image.new("RGB", (512, 512), (0, 0, 0)))
    assert not np.allclose(a, b)


def test_controlnet_matches_unet(pipes):
    cn, unet = pipes.controlnet.config, pipes.unet.config
    assert tuple(cn.block_out_channels) == tuple(unet.block_out_channels)
    assert cn.cross_attention_dim == unet.cross_attention_dim
    assert len(cn.conditioning_embedding_out_channels) == 4


# Tokenizer ---------------------------------------------------------------------------------

def test_tokenizer_known_and_unknown_words(pipes, built):
    tok = pipes.tokenizer
    for word in ("piazza", "seaside", "woman", "waving", "selfie", "blurry", "deformed", "old", "photo"):
        ids = tok(word, add_special_tokens=False).input_ids
        assert len(ids) == 1, word
        assert tok.decode(ids) == word
    ids = tok("zxqv", add_special_tokens=False).input_ids
    assert len(ids) == 4 and tok.unk_token_id not in ids
    assert tok.decode(ids) == "zxqv"
    enc = tok("a young man standing near the fountain, close-up").input_ids
    assert enc[0] == tok.bos_token_id and enc[-1] == tok.eos_token_id
    assert len(enc) == 2 + 11  # 7 words, ",", "close", "-", "up" — plus BOS/EOS
    assert tok.decode(enc, skip_special_tokens=True) == "a young man standing near the fountain , close - up"
    assert len(tok) < 5000
    merges = (built["inpaint"] / "tokenizer" / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0] == "#version: 0.2"
    vocab = json.loads((built["inpaint"] / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["piazza</w>"] == tok.convert_tokens_to_ids("piazza</w>")
    assert {"<|startoftext|>", "<|endoftext|>"} <= vocab.keys()


def test_every_listed_word_is_one_token(pipes):
    tok = pipes.tokenizer
    bad = [w for w in set(demo.WORDS) if len(tok(w, add_special_tokens=False).input_ids) != 1]
    assert bad == []


def test_full_size_recipe_has_sd15s_published_shapes():
    """`demo --size full` builds these (for benchmarks only): counted here without memory."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from engine.demo.models import _recipe, build_vocab_and_merges, demo_paths

    recipe = _recipe(len(build_vocab_and_merges()[0]), "full")
    with init_empty_weights():
        counts = {name: sum(p.numel() for p in cls(**recipe[name]).parameters())
                  for name, cls in (("unet", UNet2DConditionModel), ("controlnet", ControlNetModel),
                                    ("vae", AutoencoderKL))}
        counts["text_encoder"] = sum(p.numel() for p in CLIPTextModel(CLIPTextConfig(**recipe["text_encoder"])).parameters())
    assert counts == {"unet": 859_535_364, "controlnet": 361_279_120, "vae": 83_653_863,
                      "text_encoder": 123_060_480}
    assert recipe["dtype"] == "float16"
    assert [p.parts[-2:] for p in demo_paths(Path("m"), "full")] == [("full", "sd-inpaint"),
                                                                     ("full", "controlnet-openpose")]
