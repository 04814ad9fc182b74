"""The trainer script on the demo models: files written, a LoRA that loads and changes the
picture, determinism, resume from a checkpoint ending where an uninterrupted run ends, and the
loss curve the page draws."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.errors import InvalidInput
from engine.training import jobs
from engine.training.train_lora import LORA_WEIGHTS, parse_args, train
from test_training_photos import face_photos

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_options(**kw) -> jobs.TrainOptions:
    base = dict(total_steps=6, resolution=64, rank=4, learning_rate=1e-3, checkpoint_every=3,
                random_masks=1, seed=7)
    base.update(kw)
    return jobs.TrainOptions(**base)


def new_job(settings, **kw):
    """A queued job folder (no trainer started)."""
    st = jobs.submit(face_photos(), settings, small_options(**kw), start=False)
    return settings.jobs_dir / st["code"], st["code"]


def run_trainer(job, timeout=180) -> subprocess.CompletedProcess:
    """The trainer as a real separate process, in its own group, killed if the test fails."""
    with open(job / "log.txt", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "engine.training.train_lora", "--job", str(job)],
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc


def lora_tensors(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / LORA_WEIGHTS))


def test_parse_args_needs_a_job_folder(tmp_path):
    assert parse_args(["--job", str(tmp_path)]).job == tmp_path
    with pytest.raises(SystemExit):
        parse_args([])


@pytest.mark.timeout(240)
def test_trainer_process_writes_a_lora_that_loads_and_changes_the_picture(settings, demo_home):
    job, code = new_job(settings)
    proc = run_trainer(job)
    log = (job / "log.txt").read_text()
    assert proc.returncode == 0, log

    status = json.loads((job / "status.json").read_text())
    assert status["state"] == "succeeded" and status["error"] is None
    assert status["step"] == status["total_steps"] == 6
    assert isinstance(status["loss"], float) and status["pid"] == proc.pid
    assert "checkpoint-3 saved" in log and "LoRA written" in log

    # only the LoRA and its metadata remain (and the loss curve: no photo in it)
    assert not (job / "photos").exists()
    assert not list(job.glob("checkpoint-*"))
    assert sorted(p.name for p in job.iterdir()) == ["log.txt", "loss.csv", "spec.json", "status.json"]
    history = jobs.loss_history(settings, code)
    assert [step for step, _ in history] == [1, 2, 3, 4, 5, 6]
    assert all(loss > 0 for _, loss in history)
    assert history[-1][1] == pytest.approx(status["loss"], abs=1e-6)

    folder = settings.loras_dir / code
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [LORA_WEIGHTS, f"{code}_kohya.safetensors", "meta.json", "face_reference.json"])
    assert not [p for p in settings.loras_dir.iterdir() if p.name.startswith(".")]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["code"] == code and meta["trigger_words"] == "sks person"
    assert meta["base_model"] == "demo/sd-inpaint" and meta["steps"] == 6 and meta["rank"] == 4
    assert meta["resolution"] == 64 and isinstance(meta["final_loss"], float) and meta["created_at"]
    # The demo models paint noise, where no face is found: the last checkpoint is kept, and said so.
    likeness = meta["likeness"]
    assert likeness["held_back"] == 1 and [c["step"] for c in likeness["checkpoints"]] == [3, 6]
    assert all(d is None for c in likeness["checkpoints"] for d in c["distances"])
    assert likeness["chosen_step"] == 6 and "no face found in the validation paintings" in likeness["note"]

    from engine.generate import lora_folder  # the generation engine finds it under the code
    assert lora_folder(settings, code)[0] == folder

    weights = lora_tensors(folder)
    assert weights and all(k.startswith("unet.") for k in weights)
    ups = [v for k, v in weights.items() if "up" in k]
    assert any(v.abs().max() > 0 for v in ups)  # B starts at zero: non-zero means it trained
    kohya = load_file(str(folder / f"{code}_kohya.safetensors"))
    assert all(k.startswith("lora_unet_") for k in kohya)
    assert {k.rsplit(".", 2)[-2] if k.endswith("weight") else "alpha" for k in kohya} == \
        {"lora_down", "lora_up", "alpha"}
    assert len(kohya) == len(weights) // 2 * 3

    from diffusers import StableDiffusionInpaintPipeline
    from PIL import Image
    pipe = StableDiffusionInpaintPipeline.from_pretrained(
        str(settings.models_dir / "demo" / "sd-inpaint"), safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    image, mask = Image.new("RGB", (64, 64), (120, 100, 90)), Image.new("L", (64, 64), 255)

    def paint():
        return pipe("a photo of sks person", image=image, mask_image=mask, height=64, width=64,
                    num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                    output_type="np").images[0]

    before = paint()
    pipe.load_lora_weights(str(folder), adapter_name="visitor")
    after = paint()
    assert np.abs(after - before).max() > 1e-3
    pipe.disable_lora()
    assert np.allclose(paint(), before, atol=1e-6)


@pytest.mark.timeout(240)
def test_resume_from_a_checkpoint_ends_with_the_weights_of_an_uninterrupted_run(settings, demo_home):
    whole, whole_code = new_job(settings, total_steps=7, checkpoint_every=2, checkpoints_keep=2)
    meta = train(json.loads((whole / "spec.json").read_text()), whole, settings.loras_dir)
    assert meta["steps"] == 7

    # the same spec (same seed) in a second folder, interrupted after step 5
    parts, parts_code = new_job(settings, total_steps=7, checkpoint_every=2, checkpoints_keep=2)
    spec = json.loads((parts / "spec.json").read_text())
    assert train(spec, parts, settings.loras_dir, stop_after=5) == {"stopped_at": 5}
    assert [n for n, _ in jobs.checkpoints(parts)] == [4, 5]  # checkpoint-2 pruned: keep 2
    assert not (settings.loras_dir / parts_code).exists()
    # as if killed after logging step 5's loss but before saving its checkpoint
    shutil.rmtree(parts / "checkpoint-5")
    assert [step for step, _ in jobs.loss_history(settings, parts_code)] == [1, 2, 3, 4, 5]
    steps_seen = []
    meta = train(spec, parts, settings.loras_dir, report=lambda **kw: steps_seen.append(kw["step"]))
    assert steps_seen[0] == 4 and steps_seen[-1] == 7 and meta["steps"] == 7
    # step 5 trained twice, logged once: the curve is the uninterrupted run's, point for point
    assert jobs.loss_history(settings, parts_code) == jobs.loss_history(settings, whole_code)

    a = lora_tensors(settings.loras_dir / whole_code)
    b = lora_tensors(settings.loras_dir / parts_code)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_long_run_keeps_a_bounded_loss_curve_of_means_and_readers_skip_a_torn_line(settings):
    job = settings.jobs_dir / "12345678"
    job.mkdir()
    log = jobs.LossLog(job, total_steps=1502)  # 4 steps a point: at most 500 points
    for step in range(1, 1503):
        log.add(step, float(step))
    history = jobs.loss_history(settings, "12345678")
    assert len(history) <= jobs.MAX_LOSS_POINTS
    assert history[:2] == [(4, 2.5), (8, 6.5)]  # the mean of each point's steps
    assert history[-1] == (1502, 1501.5)  # the last step always, with what was left
    with open(job / "loss.csv", "a") as fh:
        fh.write("1503,0.12")  # a line being written: no newline yet
    assert jobs.loss_history(settings, "12345678") == history
    jobs.LossLog(job, total_steps=1502, resumed_at=8)  # a resumed attempt drops the steps it redoes
    assert jobs.loss_history(settings, "12345678") == history[:2]


@pytest.mark.timeout(240)
def test_another_seed_gives_another_lora(settings, demo_home):
    """(The same seed giving the same weights is shown by the resume test above.)"""
    results = []
    for seed in (3, 4):
        job, code = new_job(settings, total_steps=2, checkpoint_every=100, seed=seed)
        train(json.loads((job / "spec.json").read_text()), job, settings.loras_dir)
        results.append(lora_tensors(settings.loras_dir / code))
    assert any(not torch.equal(results[0][k], results[1][k]) for k in results[1])


def test_cancel_flag_stops_the_run_before_it_writes_a_lora(settings, demo_home):
    from engine.errors import Cancelled
    job, code = new_job(settings, total_steps=50)
    calls = []

    def stop():  # polled once after loading, then before every step
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        train(json.loads((job / "spec.json").read_text()), job, settings.loras_dir, should_stop=stop)
    assert not (settings.loras_dir / code).exists()


@pytest.mark.parametrize("field,value", [("rank", 0), ("learning_rate", 2.0), ("resolution", 100),
                                         ("mixed_precision", "fp8"), ("total_steps", 1.5),
                                         ("trigger_words", "  "), ("caption", "no trigger here")])
def test_bad_training_options_name_the_field(field, value):
    with pytest.raises(InvalidInput) as err:
        jobs.TrainOptions(**{field: value}).checked()
    assert err.value.field == field


def test_a_non_inpainting_model_is_refused(tmp_path, demo_home):
    from diffusers import UNet2DConditionModel
    from engine.errors import ModelError
    from engine.training.train_lora import load_components
    src = demo_home / "models" / "demo" / "sd-inpaint"
    fake = tmp_path / "sd-txt2img"
    shutil.copytree(src, fake, ignore=shutil.ignore_patterns("unet"))
    unet = UNet2DConditionModel.from_pretrained(src, subfolder="unet")
    cfg = dict(unet.config)
    cfg["in_channels"] = 4
    UNet2DConditionModel.from_config(cfg).save_pretrained(fake / "unet")
    with pytest.raises(ModelError, match="not an inpainting model"):
        load_components(str(fake))


@pytest.mark.parametrize("setting,device,card_gib,expected", [
    ("auto", "cuda", 6, True),     # the seed's card: those 0.4 GiB decide whether it fits
    ("auto", "cuda", 80, False),   # a big card: 1.8× faster steps without it
    ("auto", "cpu", None, False),
    ("on", "cuda", 80, True), ("off", "cuda", 6, False), ("on", "cpu", None, True),
])
def test_gradient_checkpointing_only_where_memory_is_short(setting, device, card_gib, expected):
    from engine.training.train_lora import use_checkpointing
    card = None if card_gib is None else card_gib * 2**30
    assert use_checkpointing(setting, device, card) is expected
