"""The supervisor keeps the training queue moving with nobody polling: real trainers, a real
SIGKILL, two supervisors on one data root, and the one a real server runs. Waits are
conditions with deadlines; the status files are only read, never settled, by the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from engine.config import load_settings
from engine.errors import InvalidInput
from engine.supervisor import Supervisor, Task, tasks
from engine.training import jobs
from test_jobs import finished, opts, poll
from test_training_cli import reap  # noqa: F401 - kills the trainers a test's jobs recorded
from test_training_photos import face_photos
from tests.server import REPO, streamlit_server


@pytest.fixture
def supervise(demo_home, reap):
    """Start `python -m engine supervise` processes on the test's data root (1 s rounds)."""
    started = []

    def start() -> tuple[subprocess.Popen, object]:
        log_path = demo_home / f"supervise-{len(started)}.log"
        log = open(log_path, "w")
        proc = subprocess.Popen([sys.executable, "-m", "engine", "supervise"], cwd=REPO,
                                env=dict(os.environ, CARTOLINA_HOME=str(demo_home), CARTOLINA_SUPERVISE_S="1"),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append((proc, log))
        return proc, log_path

    yield start
    for proc, log in started:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- the loop --------------------------------------------------------------------------------------

def test_reconcile_and_a_daily_retention_sweep_are_the_chores(monkeypatch, home):
    from engine import retention
    monkeypatch.setenv("CARTOLINA_SUPERVISE_S", "7")
    assert [(t.name, t.every_s, t.run) for t in tasks(load_settings())] == [
        ("reconcile", 7, jobs.reconcile), ("retention", 86_400, retention.sweep)]
    assert load_settings({}).supervise_s == 10
    for bad in ("0", "3601", "often"):
        with pytest.raises(InvalidInput) as err:
            load_settings({"CARTOLINA_SUPERVISE_S": bad})
        assert err.value.field == "CARTOLINA_SUPERVISE_S" and "from 1 to 3600" in str(err.value)


def test_each_chore_runs_at_start_then_at_its_own_interval(settings):
    runs = {"often": 0, "daily": 0}
    enough = threading.Event()

    def chore(name):
        def run(_settings):
            runs[name] += 1
            if runs["often"] >= 5:
                enough.set()
        return run

    supervisor = Supervisor(settings, [Task("often", 0.05, chore("often")),
                                       Task("daily", 86_400, chore("daily"))]).start()
    try:
        assert enough.wait(20)
    finally:
        supervisor.stop()
    assert runs["daily"] == 1  # once at start, not again for a day
    assert not supervisor._thread.is_alive()


def test_a_round_that_raises_is_logged_and_the_loop_goes_on(settings, caplog):
    calls = []
    recovered = threading.Event()

    def flaky(_settings):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        if len(calls) == 3:
            recovered.set()
        return {"started": ["12345678"], "failed": []}

    caplog.set_level("INFO", logger="cartolina.supervisor")
    supervisor = Supervisor(settings, [Task("flaky", 0.05, flaky)]).start()
    try:
        assert recovered.wait(20)
    finally:
        supervisor.stop()
    failure = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(failure) == 1 and "flaky failed" in failure[0].getMessage()
    assert "No space left on device" in caplog.text  # the traceback is kept
    assert "flaky: {'started': ['12345678']}" in caplog.text  # empty parts are left out


# --- real trainers -----------------------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_a_trainer_killed_with_nobody_polling_fails_and_the_next_job_starts(settings, supervise):
    long = jobs.submit(face_photos(), settings, opts(total_steps=5000, checkpoint_every=1000), start=False)
    short = jobs.submit(face_photos(), settings, opts(seed=6), start=False)
    supervisor, log = supervise()

    running = poll(settings, long["code"], lambda st: st["state"] == "running" and st["step"] >= 1)
    os.kill(running["pid"], signal.SIGKILL)

    dead = poll(settings, long["code"], finished)
    assert dead["state"] == "failed"
    assert "ended without a final status" in dead["error"] and "no checkpoint" in dead["error"]
    done = poll(settings, short["code"], finished)
    assert done["state"] == "succeeded", jobs.log_tail(settings.jobs_dir / short["code"], 40)
    assert done["started_at"] >= dead["finished_at"]
    assert supervisor.poll() is None  # still supervising
    text = log.read_text()
    assert "reconcile every 1 s" in text and f"'failed': ['{long['code']}']" in text


@pytest.mark.timeout(300)
def test_two_supervisors_on_one_data_root_start_each_job_once(settings, supervise):
    queued = [jobs.submit(face_photos(), settings, opts(seed=seed), start=False) for seed in (1, 2, 3)]
    first, _ = supervise()
    second, _ = supervise()

    done = [poll(settings, job["code"], finished) for job in queued]
    assert [st["state"] for st in done] == ["succeeded"] * 3
    assert [st["attempt"] for st in done] == [1, 1, 1]
    for job in queued:
        log = (settings.jobs_dir / job["code"] / "log.txt").read_text()
        assert log.count("trainer started") == 1, log
    # one slot: each started after the one before it had finished
    for before, after in zip(done, done[1:]):
        assert after["started_at"] >= before["finished_at"]
    assert first.poll() is None and second.poll() is None


@pytest.mark.timeout(300)
def test_a_server_runs_one_supervisor_that_starts_a_queued_job_with_no_visitor(settings, demo_home, reap):
    queued = jobs.submit(face_photos(), settings, opts(), start=False)
    with streamlit_server(demo_home, env={"CARTOLINA_SUPERVISE_S": "1"}):
        done = poll(settings, queued["code"], finished)  # nobody opens a page
    assert done["state"] == "succeeded"
    (server_log,) = demo_home.glob("streamlit-*.log")
    assert server_log.read_text().count("cartolina supervisor: started for") == 1
