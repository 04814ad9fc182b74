"""Trainings on Celery: a real redis-server on a loopback port and real `python -m engine worker`
processes that start real trainers (small: 64 px, a few steps) on one shared data root. The job
folder stays the record; Celery decides which worker runs it."""

import shutil
import time

import psutil
import pytest

from engine.backends import training_backend
from engine.backends.celery_training import CeleryTraining
from engine.config import load_settings
from engine.errors import ServiceUnavailable
from engine.training import jobs
from test_jobs import opts
from test_training_photos import face_photos
from tests.celery_parts import RedisServer, Workers, _until

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="Debian's redis-server is not installed (bin/setup --dev installs it)")


@pytest.fixture
def site(demo_home, tmp_path, monkeypatch):
    monkeypatch.setenv("CARTOLINA_HEARTBEAT_GRACE_S", "3")  # the workers inherit it
    server = RedisServer(tmp_path)
    server.start()
    monkeypatch.setenv("CARTOLINA_BROKER_URL", server.url)
    settings = load_settings()
    settings.ensure_dirs()
    workers = Workers(demo_home, server.url)
    try:
        yield settings, server, workers
    finally:
        workers.stop_all()
        server.stop()


def _log(settings, code) -> str:
    return (settings.jobs_dir / code / "log.txt").read_text()


def test_trainings_wait_their_turn_and_run_on_a_worker(site):
    settings, _, workers = site
    trainings = training_backend(settings)
    assert isinstance(trainings, CeleryTraining)
    first = trainings.submit(face_photos(), opts())
    second = trainings.submit(face_photos(), opts(seed=6))
    # no worker yet: both wait, in order, and nothing was started on this machine
    assert [(s["state"], s["queue_position"]) for s in (first, second)] == [("queued", 1), ("queued", 2)]
    assert trainings.status(second["code"])["queue_position"] == 2
    workers.start("trainer", "--queues", "train")
    done = [trainings.wait(s["code"], timeout=300) for s in (first, second)]
    assert [d["state"] for d in done] == ["succeeded", "succeeded"]
    assert done[0]["finished_at"] <= done[1]["started_at"]  # one at a time, first come first served
    for d in done:
        assert d["worker"] == "trainer@test" and d["attempt"] == 1
        assert (settings.loras_dir / d["code"] / "meta.json").is_file()
        assert "trainer started by worker trainer@test" in _log(settings, d["code"])
        assert not (settings.jobs_dir / d["code"] / "photos").exists()  # the faces are gone
    assert trainings.loss_history(first["code"])


def test_cancel_reaches_a_training_on_a_worker_and_a_waiting_one(site):
    settings, _, workers = site
    trainings = training_backend(settings)
    running = trainings.submit(face_photos(), opts(total_steps=2000))
    waiting = trainings.submit(face_photos(), opts())
    assert trainings.cancel(waiting["code"])["state"] == "cancelled"
    workers.start("trainer", "--queues", "train")
    _until(lambda: trainings.status(running["code"])["step"] > 0, "training", 300)
    pid = trainings.status(running["code"])["pid"]
    final = trainings.cancel(running["code"])  # returns once the job has ended, photos deleted
    assert final["state"] == "cancelled" and final["step"] < 2000
    assert not (settings.jobs_dir / running["code"] / "photos").exists()
    _until(lambda: not jobs.pid_alive(pid), "the trainer gone", 30)  # it exits right after
    assert not (settings.loras_dir / waiting["code"]).exists()


def test_a_worker_killed_mid_training_leaves_it_to_another_that_resumes_from_its_checkpoint(site):
    settings, _, workers = site
    trainings = training_backend(settings)
    first = workers.start("first", "--queues", "train")
    second = workers.start("second", "--queues", "train")
    control = CeleryTraining(settings).app.control
    assert control.cancel_consumer("train", destination=["second@test"], reply=True, timeout=10)
    code = trainings.submit(face_photos(), opts(total_steps=60, checkpoint_every=3))["code"]
    job = settings.jobs_dir / code
    _until(lambda: jobs.read_status(settings, code)["step"] >= 4 and bool(jobs.checkpoints(job)),
           "a checkpoint", 300)
    assert jobs.read_status(settings, code)["worker"] == "first@test"
    assert control.cancel_consumer("train", destination=["first@test"], reply=True, timeout=10)
    assert control.add_consumer("train", destination=["second@test"], reply=True, timeout=10)
    # the pool process running the task dies as on an out-of-memory kill; its trainer, told
    # by the kernel that its parent is gone, saves a checkpoint and stops
    pool = psutil.Process(first.pid).children()
    assert len(pool) == 1
    trainer = jobs.read_status(settings, code)["pid"]
    pool[0].kill()
    done = trainings.wait(code, timeout=300)
    assert done["state"] == "succeeded" and done["worker"] == "second@test" and done["attempt"] == 2
    assert not jobs.pid_alive(trainer)
    log = _log(settings, code)
    assert "trainer started by worker second@test" in log
    resumed = [ln for ln in log.splitlines() if "resumed from checkpoint-" in ln]
    assert len(resumed) == 1 and int(resumed[0].rsplit("at step ", 1)[1]) >= 3  # not from zero
    assert [p.name for p in settings.loras_dir.iterdir()] == [code]


def test_a_training_that_keeps_dying_fails_after_the_last_attempt(site):
    settings, _, workers = site
    trainings = training_backend(settings)
    code = trainings.submit(face_photos(), opts())["code"]
    job = settings.jobs_dir / code
    with jobs.queue_lock(settings):  # as left by a third trainer that died on another machine
        st = jobs._raw_status(job)
        jobs.write_status(job, dict(st, state="running", pid=999_999, host="elsewhere",
                                    heartbeat_at=time.time() - 60, attempt=jobs.MAX_ATTEMPTS))
        (job / "checkpoint-2").mkdir()
        (job / "checkpoint-2" / "state.json").write_text("{}")
    workers.start("trainer", "--queues", "train")
    done = trainings.wait(code, timeout=300)
    assert done["state"] == "failed"
    assert f"attempt {jobs.MAX_ATTEMPTS} of {jobs.MAX_ATTEMPTS}" in done["error"]
    assert "no heartbeat from the trainer on elsewhere" in done["error"]
    assert not (settings.loras_dir / code).exists() and not (job / "photos").exists()


def test_a_lost_message_is_sent_again_and_redis_stopped_refuses_a_training_at_once(site, monkeypatch):
    settings, server, workers = site
    trainings = training_backend(settings)
    waiting = trainings.submit(face_photos(), opts())["code"]
    server.stop()
    server.start()  # empty: this Redis keeps nothing, so the job's message is gone
    monkeypatch.setattr("engine.backends.celery_training.RESEND_AFTER_S", 0)
    assert trainings.status(waiting)["state"] == "queued"  # ...and sent again
    workers.start("trainer", "--queues", "train")
    assert trainings.wait(waiting, timeout=300)["state"] == "succeeded"
    assert "its message was lost" in _log(settings, waiting)
    server.stop()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="the training service is not reachable, try again"):
        trainings.submit(face_photos(), opts())
    assert time.monotonic() - started < 15
    assert [d.name for d in settings.jobs_dir.iterdir() if d.is_dir()] == [waiting]  # no new job


def test_the_command_line_says_plainly_when_redis_is_not_reachable(demo_home, tmp_path):
    import os
    import subprocess
    import sys

    from tests.server import REPO, free_port
    photos = []
    for i, data in enumerate(face_photos()):
        photos.append(tmp_path / f"face{i}.png")
        photos[-1].write_bytes(data)
    env = dict(os.environ, CARTOLINA_HOME=str(demo_home),
               CARTOLINA_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there

    def run(*args):
        return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)

    picture = run("generate", "--poi", "Piazza del Duomo", "--poi-image", "Fountain view",
                  "--action", "waving", "--shot", "MES", "--age", "adult", "--gender", "woman")
    assert picture.returncode == 1
    assert picture.stderr.strip().splitlines()[-1] == "error: the picture service is not reachable, try again"
    training = run("train", *map(str, photos), "--steps", "4", "--resolution", "64")
    assert training.returncode == 1
    assert training.stderr.strip().splitlines()[-1] == "error: the training service is not reachable, try again"
    assert not any((demo_home / "jobs").iterdir()) and not any((demo_home / "outputs").glob("*.png"))


def test_a_worker_machine_that_dies_whole_leaves_its_training_to_another_at_once(site):
    """Not one pool process: the whole worker. Its message stays unacknowledged in Redis until
    the visibility timeout (an hour); a kiosk reading the silent job sends it again."""
    import os
    import signal
    settings, _, workers = site
    trainings = training_backend(settings)
    first = workers.start("first", "--queues", "train")
    code = trainings.submit(face_photos(), opts(total_steps=60, checkpoint_every=3))["code"]
    job = settings.jobs_dir / code
    _until(lambda: jobs.read_status(settings, code)["step"] >= 4 and bool(jobs.checkpoints(job)),
           "a checkpoint", 300)
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool; the trainer saves and stops
    workers.start("second", "--queues", "train")
    _until(lambda: trainings.status(code).get("worker") == "second@test", "taken over", 120)
    done = trainings.wait(code, timeout=300)
    assert done["state"] == "succeeded" and done["attempt"] == 2
    log = _log(settings, code)
    assert "its trainer is silent (its worker gone?): sent again" in log
    assert len([ln for ln in log.splitlines() if "resumed from checkpoint-" in ln]) == 1
