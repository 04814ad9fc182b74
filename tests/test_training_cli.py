"""`python -m engine train|jobs|job|cancel` as a user runs them: real processes, exit codes, JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from test_training_photos import face_photos, two_faces

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--steps", "4", "--resolution", "64", "--rank", "4", "--seed", "1"]


def run(*args, home, timeout=240):
    env = dict(os.environ, CARTOLINA_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def photo_files(tmp_path) -> list[str]:
    paths = []
    for i, data in enumerate(face_photos()):
        p = tmp_path / f"face{i}.png"
        p.write_bytes(data)
        paths.append(str(p))
    return paths


@pytest.fixture
def reap(demo_home):
    """Kill any trainer a test left behind (by the pids its jobs recorded)."""
    yield
    for status in (demo_home / "jobs").glob("*/status.json"):
        pid = json.loads(status.read_text()).get("pid")
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_bad_photos_exit_2_with_one_reason_per_photo_and_no_job(demo_home, photo_files, tmp_path):
    bad = tmp_path / "group.png"
    bad.write_bytes(two_faces())
    missing = str(tmp_path / "nowhere.jpg")
    out = run("train", *photo_files[:3], str(bad), missing, "--json", home=demo_home)
    assert out.returncode == 2, out.stderr
    assert "photo 4: 2 faces found" in out.stderr and "photo 5: cannot read file" in out.stderr
    error = json.loads(out.stdout)["error"]
    assert [p["photo"] for p in error["problems"]] == [4, 5]
    assert not [p for p in (demo_home / "jobs").iterdir() if p.is_dir()]

    four = run("train", *photo_files[:4], home=demo_home)
    assert four.returncode == 2 and "4 photos given; exactly 5 needed" in four.stderr


def test_bad_arguments_and_unknown_codes_exit_2(demo_home, photo_files):
    assert run("train", *photo_files, "--steps", "0", home=demo_home).returncode == 2
    out = run("train", *photo_files, "--resolution", "100", home=demo_home)
    assert out.returncode == 2 and "resolution" in out.stderr
    out = run("job", "12345678", "--json", home=demo_home)
    assert out.returncode == 2 and "no training job 12345678" in out.stderr
    out = run("cancel", "1234", home=demo_home)
    assert out.returncode == 2 and "8 digits" in out.stderr
    out = run("jobs", "--json", home=demo_home)
    assert out.returncode == 0 and json.loads(out.stdout) == []


@pytest.mark.timeout(300)
def test_train_wait_follows_to_the_end_then_jobs_and_job_show_it(demo_home, photo_files, reap):
    out = run("train", *photo_files, *SMALL, "--wait", "--json", home=demo_home)
    assert out.returncode == 0, out.stderr + out.stdout
    final = json.loads(out.stdout)
    code = final["code"]
    assert final["state"] == "succeeded" and final["step"] == final["total_steps"] == 4
    assert (demo_home / "loras" / code / "pytorch_lora_weights.safetensors").is_file()

    listed = json.loads(run("jobs", "--json", home=demo_home).stdout)
    assert [(j["code"], j["state"]) for j in listed] == [(code, "succeeded")]
    shown = run("job", code, "--json", home=demo_home)
    assert shown.returncode == 0
    status = json.loads(shown.stdout)
    for field in ("state", "step", "total_steps", "loss", "eta_s", "pid", "heartbeat_at", "error",
                  "queue_position"):
        assert field in status
    text = run("job", code, home=demo_home).stdout
    assert code in text and "succeeded" in text and "step 4/4" in text

    again = run("cancel", code, home=demo_home)
    assert again.returncode == 2 and "already succeeded" in again.stderr


@pytest.mark.timeout(300)
def test_train_prints_code_and_state_at_once_and_cancel_ends_it(demo_home, photo_files, reap):
    out = run("train", *photo_files, "--steps", "5000", "--resolution", "64", "--rank", "4",
              home=demo_home)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("code ") and len(lines[0].split()[1]) == 8
    code = lines[0].split()[1]
    assert lines[1] == "state running"

    second = run("train", *photo_files, *SMALL, home=demo_home)
    assert "state queued (place 1 in the queue)" in second.stdout
    code2 = second.stdout.split()[1]

    gone = run("cancel", code2, "--json", home=demo_home)
    assert gone.returncode == 0 and json.loads(gone.stdout)["state"] == "cancelled"
    gone = run("cancel", code, "--json", home=demo_home)
    assert gone.returncode == 0, gone.stderr
    status = json.loads(gone.stdout)
    assert status["state"] == "cancelled"
    assert not (demo_home / "jobs" / code / "photos").exists()
    assert not (demo_home / "loras" / code).exists()
