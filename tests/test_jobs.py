"""The job protocol with real detached trainers: queue order, cancel, kill -9, stale
heartbeats, restarts, cleanup, and the watcher. Every trainer is small (64 px, a few steps)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from engine.config import load_settings
from engine.errors import Conflict, NotFound, PhotoCheckFailed
from engine.training import jobs
from engine.training.watch import JobWatcher
from test_training_photos import astronaut, bomb_png, face_photos, no_face, png, two_faces


def opts(**kw) -> jobs.TrainOptions:
    base = dict(total_steps=4, resolution=64, rank=4, checkpoint_every=2, random_masks=1, seed=5)
    base.update(kw)
    return jobs.TrainOptions(**base)


@pytest.fixture
def trainers():
    """Every pid a test started or saw; their process groups are killed at the end."""
    pids: set[int] = set()
    yield pids
    for pid in pids:
        for sig in (signal.SIGKILL,):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def fast(demo_home, monkeypatch):
    """Settings with a 3 s heartbeat grace, for the crash tests."""
    monkeypatch.setenv("CARTOLINA_HEARTBEAT_GRACE_S", "3")
    s = load_settings()
    s.ensure_dirs()
    return s


def poll(settings, code, until, timeout=150, seen=None, pids=None):
    """Read (without settling the queue) until `until(status)`; returns that status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = jobs.read_status(settings, code)
        if pids is not None and st.get("pid"):
            pids.add(st["pid"])
        if seen is not None:
            seen.append(st)
        if until(st):
            return st
        if finished(st):
            break
        time.sleep(0.05)
    raise AssertionError(f"job {code} never reached the condition; last status {st}; log:\n"
                         + jobs.log_tail(settings.jobs_dir / code, 40))


def finished(st):
    return st["state"] in jobs.FINISHED


# --- bad uploads ---------------------------------------------------------------------------------

BAD_UPLOADS = {
    "four photos": lambda p: p[:4],
    "a non-image": lambda p: p[:2] + [b"%PDF-1.4 not a photo"] + p[3:],
    "no face": lambda p: p[:4] + [no_face()],
    "two faces": lambda p: [two_faces()] + p[1:],
    "a tiny image": lambda p: p[:1] + [png(astronaut().resize((48, 48)))] + p[2:],
    "a decompression bomb": lambda p: p[:3] + [bomb_png()] + p[4:],
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_a_bad_upload_gets_its_per_photo_error_and_starts_no_job(case, settings, demo_home):
    photos = BAD_UPLOADS[case](face_photos())
    with pytest.raises(PhotoCheckFailed) as err:
        jobs.submit(photos, settings, opts())
    e = err.value
    if case == "four photos":
        assert e.count_problem and not e.problems
    else:
        assert len(e.problems) == 1
        index = {"a non-image": 2, "no face": 4, "two faces": 0, "a tiny image": 1,
                 "a decompression bomb": 3}[case]
        reason = {"a non-image": "not an image", "no face": "no face", "two faces": "2 faces",
                  "a tiny image": "too small", "a decompression bomb": "too many pixels"}[case]
        assert reason in e.problems[index]
    assert [p for p in settings.jobs_dir.iterdir() if p.is_dir()] == []
    assert jobs.list_jobs(settings) == []


# --- the queue -----------------------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_two_trainings_asked_at_once_run_one_after_the_other(settings, demo_home, trainers):
    events = []
    with JobWatcher(settings, lambda code, st: events.append((code, st["state"]))):
        a = jobs.submit(face_photos(), settings, opts())
        b = jobs.submit(face_photos(), settings, opts(seed=6))
        trainers.add(a["pid"])
        assert a["state"] == "running" and a["queue_position"] is None and a["pid"]
        assert b["state"] == "queued" and b["queue_position"] == 1 and b["pid"] is None
        # No reconcile from here on: the first trainer itself must start the second one.
        running_counts = []
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline:
            now = [jobs.read_status(settings, j["code"]) for j in (a, b)]
            trainers.update(st["pid"] for st in now if st["pid"])
            running_counts.append(sum(st["state"] == "running" for st in now))
            if all(finished(st) for st in now):
                break
            time.sleep(0.1)
        done_a, done_b = now
        # until the watcher has seen both final writes (it reports on its own thread)
        deadline = time.monotonic() + 30
        while {c for c, s in events if s == "succeeded"} != {a["code"], b["code"]} and time.monotonic() < deadline:
            time.sleep(0.05)
    assert done_a["state"] == done_b["state"] == "succeeded", jobs.log_tail(settings.jobs_dir / b["code"])
    assert done_a["step"] == done_b["step"] == 4
    assert done_b["started_at"] >= done_a["finished_at"]
    assert done_b["pid"] != done_a["pid"]
    assert max(running_counts) == 1  # never two at once, as far as every read could see
    for code in (a["code"], b["code"]):
        job = settings.jobs_dir / code
        assert not (job / "photos").exists() and not list(job.glob("checkpoint-*"))
        assert (settings.loras_dir / code / "pytorch_lora_weights.safetensors").is_file()
        assert "trainer started" in (job / "log.txt").read_text()
        states = [s for c, s in events if c == code]
        assert states[-1] == "succeeded" and "running" in states
    assert [s for c, s in events if c == b["code"]][0] == "queued"
    listed = jobs.list_jobs(settings)
    assert [j["code"] for j in listed] == [a["code"], b["code"]]


@pytest.mark.timeout(300)
def test_cancel_works_while_queued_and_while_running_and_frees_the_slot(settings, demo_home, trainers):
    a = jobs.submit(face_photos(), settings, opts(total_steps=5000, checkpoint_every=1000))
    b = jobs.submit(face_photos(), settings, opts())
    c = jobs.submit(face_photos(), settings, opts(total_steps=5000, checkpoint_every=1000))
    trainers.add(a["pid"])
    assert (b["queue_position"], c["queue_position"]) == (1, 2)

    gone = jobs.cancel(settings, b["code"])
    assert gone["state"] == "cancelled" and gone["error"] == "cancelled while queued"
    assert not (settings.jobs_dir / b["code"] / "photos").exists()
    assert jobs.read_status(settings, c["code"])["queue_position"] == 1
    assert jobs.read_status(settings, a["code"])["state"] == "running"

    poll(settings, a["code"], lambda st: st["step"] >= 1, pids=trainers)  # well into training
    pid = a["pid"]
    gone = jobs.cancel(settings, a["code"])
    assert gone["state"] == "cancelled"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    job = settings.jobs_dir / a["code"]
    assert not (job / "photos").exists() and not (settings.loras_dir / a["code"]).exists()
    assert "cancelled" in (job / "log.txt").read_text()

    # the slot is free: the next queued job has started without anybody asking
    started = poll(settings, c["code"], lambda st: st["state"] != "queued", pids=trainers)
    assert started["state"] == "running"
    assert jobs.cancel(settings, c["code"])["state"] == "cancelled"
    with pytest.raises(Conflict, match="finished job cannot change"):
        jobs.cancel(settings, c["code"])
    with pytest.raises(NotFound):
        jobs.cancel(settings, "00000000")
    assert all(j["state"] == "cancelled" for j in jobs.list_jobs(settings))


# --- crashes -------------------------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_kill_9_of_a_running_trainer_resumes_from_its_checkpoint(fast, trainers):
    settings = fast
    a = jobs.submit(face_photos(), settings, opts(total_steps=2000, checkpoint_every=2))
    trainers.add(a["pid"])
    code, job = a["code"], settings.jobs_dir / a["code"]
    st = poll(settings, code, lambda st: st["step"] >= 3 and bool(jobs.checkpoints(job)), pids=trainers)
    assert st["state"] == "running"
    os.kill(st["pid"], signal.SIGKILL)
    killed_at = time.monotonic()

    # Anyone touching the queue notices within the grace: here, the status read.
    while True:
        now = jobs.status(settings, code)
        if now["attempt"] == 2 or finished(now):
            break
        assert time.monotonic() - killed_at < settings.heartbeat_grace_s + 5, now
        time.sleep(0.2)
    trainers.add(now["pid"])
    assert now["state"] == "running" and now["attempt"] == 2 and now["pid"] != st["pid"]
    log = job / "log.txt"
    assert "will resume from checkpoint-" in log.read_text()
    resumed = poll(settings, code, lambda s: "resumed from checkpoint-" in log.read_text(), pids=trainers)
    assert resumed["state"] == "running"
    line = [ln for ln in log.read_text().splitlines() if "resumed from checkpoint-" in ln][0]
    assert int(line.rsplit("at step ", 1)[1]) >= 2
    assert jobs.cancel(settings, code)["state"] == "cancelled"
    assert not (job / "photos").exists() and not list(job.glob("checkpoint-*"))


@pytest.mark.timeout(300)
def test_a_sigterm_that_is_not_a_cancel_checkpoints_and_leaves_the_job_to_resume(fast, trainers):
    """`docker stop` or a shutdown: the trainer saves where it is and the job resumes later."""
    settings = fast
    a = jobs.submit(face_photos(), settings, opts(total_steps=2000, checkpoint_every=1000))
    trainers.add(a["pid"])
    code, job = a["code"], settings.jobs_dir / a["code"]
    st = poll(settings, code, lambda st: st["step"] >= 2, pids=trainers)
    os.killpg(st["pid"], signal.SIGTERM)
    assert jobs._wait_dead(st["pid"], st["pid_started_at"], 30)
    log = (job / "log.txt").read_text()
    assert "saved on the way out" in log and "the job will resume" in log
    assert jobs.read_status(settings, code)["state"] == "running"  # no final word: not finished
    saved = jobs.latest_checkpoint(job)
    assert saved and saved[0] >= 2

    report = jobs.reconcile(settings)
    assert report["resumed"] == [code] and report["started"] == [code]
    now = jobs.read_status(settings, code)
    trainers.add(now["pid"])
    assert now["attempt"] == 2 and now["step"] == saved[0]
    assert jobs.cancel(settings, code)["state"] == "cancelled"


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                            start_new_session=True)


def _pretend_running(settings, code, pid, heartbeat_age, attempt=1):
    job = settings.jobs_dir / code
    st = jobs._raw_status(job)
    now = time.time()
    jobs.write_status(job, dict(st, state="running", pid=pid, pid_started_at=jobs._pid_started(pid),
                                heartbeat_at=now - heartbeat_age, started_at=now - 60, attempt=attempt))
    with open(job / "log.txt", "a") as fh:
        fh.write("step 17: something the operator will want to read\n")


def test_a_hung_trainer_with_a_stale_heartbeat_is_killed_and_its_job_fails_with_the_log(fast, trainers):
    settings = fast
    st = jobs.submit(face_photos(), settings, opts(), start=False)
    hung = _sleeper()
    trainers.add(hung.pid)
    _pretend_running(settings, st["code"], hung.pid, heartbeat_age=settings.heartbeat_grace_s + 2)
    report = jobs.reconcile(settings)
    assert report["failed"] == [st["code"]]
    assert hung.wait(timeout=10) == -signal.SIGKILL
    done = jobs.read_status(settings, st["code"])
    assert done["state"] == "failed"
    assert "no heartbeat" in done["error"] and "no checkpoint" in done["error"]
    assert "something the operator will want to read" in done["error"]  # the log's tail
    assert not (settings.jobs_dir / st["code"] / "photos").exists()
    # a finished state never changes
    assert jobs.reconcile(settings) == {"resumed": [], "failed": [], "cancelled": [], "started": [],
                                        "discarded": []}
    assert jobs.read_status(settings, st["code"])["state"] == "failed"


def test_a_fresh_heartbeat_from_a_live_trainer_is_left_alone(fast, trainers):
    settings = fast
    st = jobs.submit(face_photos(), settings, opts(), start=False)
    other = jobs.submit(face_photos(), settings, opts(), start=False)
    busy = _sleeper()
    trainers.add(busy.pid)
    _pretend_running(settings, st["code"], busy.pid, heartbeat_age=0)
    assert jobs.reconcile(settings)["started"] == []  # the one slot is taken
    assert jobs.read_status(settings, st["code"])["state"] == "running"
    assert jobs.read_status(settings, other["code"])["queue_position"] == 1
    assert busy.poll() is None
    busy.kill()
    busy.wait()


@pytest.mark.timeout(300)
def test_after_a_restart_a_dead_trainer_resumes_from_its_checkpoint(settings, demo_home, trainers):
    """The app and the trainer died together (power cut): the next start loses nothing."""
    from engine.training.train_lora import train
    st = jobs.submit(face_photos(), settings, opts(total_steps=6), start=False)
    code, job = st["code"], settings.jobs_dir / st["code"]
    train(json.loads((job / "spec.json").read_text()), job, settings.loras_dir, stop_after=3)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _pretend_running(settings, code, gone.pid, heartbeat_age=1)
    queued_too = jobs.submit(face_photos(), settings, opts(total_steps=2), start=False)

    fresh = load_settings()  # "the app restarts"
    report = jobs.reconcile(fresh)
    assert report["resumed"] == [code] and report["started"] == [code]
    now = jobs.read_status(fresh, code)
    trainers.add(now["pid"])
    assert now["state"] == "running" and now["attempt"] == 2
    assert jobs.read_status(fresh, queued_too["code"])["queue_position"] == 1
    jobs.cancel(fresh, queued_too["code"])  # (that the next job starts is tested above)
    done = poll(fresh, code, finished, pids=trainers)
    assert done["state"] == "succeeded" and done["step"] == 6
    assert "resumed from checkpoint-3 at step 3" in (job / "log.txt").read_text()


def test_a_dead_trainer_without_a_checkpoint_fails(settings, demo_home):
    st = jobs.submit(face_photos(), settings, opts(), start=False)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _pretend_running(settings, st["code"], gone.pid, heartbeat_age=0)
    s = load_settings()
    assert jobs.reconcile(s)["failed"] == [st["code"]]
    # (the reconcile started nothing: the failed job was the only one)
    done = jobs.read_status(s, st["code"])
    assert done["state"] == "failed" and "ended without a final status" in done["error"]


def test_status_of_an_unknown_or_malformed_code(settings):
    from engine.errors import InvalidInput
    with pytest.raises(NotFound):
        jobs.read_status(settings, "12345678")
    with pytest.raises(InvalidInput) as err:
        jobs.read_status(settings, "12-45")
    assert err.value.field == "code"


def test_with_two_slots_two_trainings_run_and_the_third_waits(demo_home, monkeypatch, trainers):
    monkeypatch.setenv("CARTOLINA_MAX_PARALLEL_TRAININGS", "2")
    settings = load_settings()
    a, b, c = (jobs.submit(face_photos(), settings, opts(), start=False) for _ in range(3))
    busy = _sleeper()
    trainers.add(busy.pid)
    _pretend_running(settings, a["code"], busy.pid, heartbeat_age=0)
    assert jobs.reconcile(settings)["started"] == [b["code"]]
    started = jobs.read_status(settings, b["code"])
    trainers.add(started["pid"])
    assert started["state"] == "running"
    assert jobs.read_status(settings, c["code"])["queue_position"] == 1
    assert jobs.cancel(settings, b["code"])["state"] == "cancelled"
    now = jobs.read_status(settings, c["code"])  # b's slot went to c at once
    trainers.add(now["pid"])
    assert now["state"] == "running"
    assert jobs.cancel(settings, c["code"])["state"] == "cancelled"
    busy.kill()
    busy.wait()


def test_the_trainer_finds_the_base_model_by_its_name_not_the_submitting_machines_path(settings, demo_home, trainers):
    """A kiosk on another machine may mount the data root elsewhere: its absolute path means nothing here."""
    st = jobs.submit(face_photos(), settings, opts(), start=False)
    job = settings.jobs_dir / st["code"]
    spec = json.loads((job / "spec.json").read_text())
    assert spec["base_model_name"] == "demo/sd-inpaint"
    (job / "spec.json").write_text(json.dumps(dict(spec, base_model="/srv/kiosk-2/models/demo/sd-inpaint")))
    jobs.reconcile(settings)
    done = jobs.wait(settings, st["code"], timeout=240)
    assert done["state"] == "succeeded", jobs.log_tail(job, 40)
