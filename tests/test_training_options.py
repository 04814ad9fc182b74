"""`python -m engine train --rank --lr --checkpoint-every`: a bad value exits 2 naming the
option and its range before any photo is read; a good one reaches spec.json and the trainer;
and a job shorter than the default 250-step checkpoint interval can resume after a kill."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest

from engine.config import load_settings
from engine.training import jobs
from test_jobs import finished, poll
from test_training_cli import photo_files, reap, run  # noqa: F401 - fixtures

SMALL = ["--resolution", "64", "--seed", "1"]


@pytest.mark.parametrize("flag, value, field, accepted", [
    ("--rank", "0", "rank", "an integer from 1 to 256"),
    ("--rank", "257", "rank", "an integer from 1 to 256"),
    ("--rank", "4.5", "rank", "an integer from 1 to 256"),
    ("--lr", "0", "learning_rate", "a number from 1e-07 to 1"),
    ("--lr", "2", "learning_rate", "a number from 1e-07 to 1"),
    ("--lr", "nan", "learning_rate", "a number from 1e-07 to 1"),
    ("--checkpoint-every", "0", "checkpoint_every", "an integer from 1 to 1000000"),
    ("--checkpoint-every", "ten", "checkpoint_every", "an integer from 1 to 1000000"),
])
def test_a_bad_training_option_exits_2_naming_it_and_its_range(flag, value, field, accepted, demo_home):
    photos = [str(demo_home / f"not-read-{i}.png") for i in range(5)]
    out = run("train", *photos, flag, value, home=demo_home, timeout=60)
    assert out.returncode == 2
    assert f"argument {flag}: {field} must be {accepted} (got '{value}')" in out.stderr
    assert not [p for p in (demo_home / "jobs").iterdir() if p.is_dir()]


@pytest.mark.timeout(300)
def test_rank_lr_and_checkpoint_every_reach_the_trainer_and_a_short_job_resumes(demo_home, photo_files, reap):
    out = run("train", *photo_files, "--steps", "100", "--rank", "8", "--lr", "3e-4",
              "--checkpoint-every", "2", *SMALL, "--json", home=demo_home)
    assert out.returncode == 0, out.stderr
    code = json.loads(out.stdout)["code"]
    job = demo_home / "jobs" / code
    options = json.loads((job / "spec.json").read_text())["options"]
    assert (options["total_steps"], options["rank"], options["learning_rate"], options["checkpoint_every"]) == \
        (100, 8, 3e-4, 2)

    # Killed as soon as it has a checkpoint: with the default interval (250) this job has none.
    settings = load_settings({"CARTOLINA_HOME": str(demo_home)})
    st = poll(settings, code, lambda st: st["state"] == "running" and bool(jobs.checkpoints(job)))
    os.kill(st["pid"], signal.SIGKILL)
    assert jobs._wait_dead(st["pid"], st["pid_started_at"], 30)

    listed = run("jobs", "--json", home=demo_home)  # an operator's look settles the queue
    assert listed.returncode == 0, listed.stderr
    (resumed,) = json.loads(listed.stdout)
    assert resumed["state"] == "running" and resumed["attempt"] == 2

    done = poll(settings, code, finished)
    assert done["state"] == "succeeded" and done["step"] == 100 and done["attempt"] == 2
    log = (job / "log.txt").read_text()
    assert "100 steps, rank 8, lr 0.0003" in log  # the trainer's own account of its options
    resumed_at = re.search(r"resumed from checkpoint-(\d+) at step (\d+)", log)
    assert resumed_at and resumed_at[1] == resumed_at[2] and int(resumed_at[1]) % 2 == 0
    meta = json.loads((demo_home / "loras" / code / "meta.json").read_text())
    assert (meta["rank"], meta["learning_rate"], meta["steps"]) == (8, 3e-4, 100)
