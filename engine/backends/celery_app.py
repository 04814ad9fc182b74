"""The Celery application and the picture task, for `python -m engine worker` and the Celery
backend's client (engine.backends.celery_pictures).

Delivery (PACKAGES.md, "Celery 5.7 with Debian's redis-server 7.0"): tasks are acknowledged
late and re-queued when their worker dies (`task_acks_late`, `task_reject_on_worker_lost`),
a worker takes one message at a time (`worker_prefetch_multiplier=1`), and Redis hands an
unacknowledged message to another worker after `visibility_timeout` seconds, which must exceed
the longest picture (`task_time_limit` stays below it). A picture may therefore be painted
twice if its first worker dies late: it is saved under the same code, atomically, so a
visitor sees one picture either way.

The task trusts no path from a message: it gets a code and a request of names, and resolves
everything under the worker's own data root (`CARTOLINA_HOME`), which kiosks and workers share.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

from celery import Celery, signals

from engine.config import Settings, load_settings

__all__ = ["QUEUES", "GENERATE_TASK", "TRAIN_TASK", "celery_app", "task_id", "training_task_id",
           "cancel_key", "done_key", "job_key", "SPEED_KEY"]

QUEUES = ("generate", "train")
GENERATE_TASK = "cartolina.generate"
TRAIN_TASK = "cartolina.train"
KEEP_S = 7 * 24 * 3600        # a picture's job record and result stay readable this long
TRAIN_LIMIT_S = 24 * 3600     # a training's hard limit; the pictures' is below the visibility timeout
WATCH_S = 0.5                 # the train task: between looks at its trainer and the cancel request
SPEED_KEY = "cartolina:pictures:seconds_per_step"  # the workers' measured speed, for ETAs
QUEUES_ENV = "CARTOLINA_WORKER_QUEUES"  # set by `python -m engine worker` for its pool processes

log = logging.getLogger("cartolina.worker")

_apps: dict[str, Celery] = {}
_apps_lock = threading.Lock()


def task_id(code: str) -> str:
    """Every kiosk finds a picture's task from its code alone."""
    return f"cartolina-picture-{code}"


def training_task_id(code: str) -> str:
    return f"cartolina-training-{code}"


def job_key(code: str) -> str:
    return f"cartolina:picture:{code}"


def cancel_key(code: str) -> str:
    return f"cartolina:picture:{code}:cancel"


def done_key(code: str) -> str:
    """The outcome of a picture already saved: a task delivered again after its worker died
    between saving and acknowledging returns it instead of painting the picture twice."""
    return f"cartolina:picture:{code}:done"


def celery_app(settings: Settings) -> Celery:
    """The one Celery app of this process for this Redis, with the picture task registered."""
    key = (settings.broker_url, settings.visibility_timeout_s)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            app = _apps[key] = _make_app(*key)
        return app


def _make_app(broker_url: str, vt: int) -> Celery:
    app = Celery("cartolina", broker=broker_url, backend=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        task_time_limit=max(5, vt - 5),
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_routes={GENERATE_TASK: {"queue": "generate"}, TRAIN_TASK: {"queue": "train"}},
        task_default_queue="generate",
        result_expires=KEEP_S,
        broker_transport_options={"visibility_timeout": vt, "unacked_restore_interval": 1,
                                  "unacked_restore_throttle": 1},
        # a kiosk must answer "not reachable" in seconds, never freeze on a dead Redis
        broker_connection_timeout=2,
        broker_connection_retry_on_startup=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5,
                                   "interval_max": 1},
        result_backend_transport_options={"retry_policy": {"max_retries": 2, "interval_start": 0,
                                                           "interval_step": 0.5, "interval_max": 1}},
        redis_socket_connect_timeout=2, redis_socket_timeout=10,
        worker_hijack_root_logger=False,
        worker_proc_alive_timeout=300,  # a pool process loads the pipelines before it says "up"
    )
    app.task(name=GENERATE_TASK, bind=True)(_generate_task)
    app.task(name=TRAIN_TASK, bind=True, time_limit=TRAIN_LIMIT_S)(_train_task)
    return app


# --- the worker side ------------------------------------------------------------------------------

_settings: Settings | None = None


def worker_settings() -> Settings:
    """The worker's own settings (its data root, its models), read once per process."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


@signals.worker_process_init.connect
def _load_pipelines_once(**_):
    """Each pool process of a worker that paints loads the pipelines once, at start-up, not
    per task; a worker only for `train` leaves the GPU's memory to its trainers."""
    if "generate" not in os.environ.get(QUEUES_ENV, "generate").split(","):
        return
    from engine.models import get_pipelines
    get_pipelines(worker_settings())


def _redis(task):
    return task.app.backend.client  # the result backend's Redis client: same server


def _generate_task(self, code: str, request: dict) -> dict:
    """Paint one picture; returns {"outcome": succeeded|failed|cancelled, "result"|"error"}."""
    from engine import codes
    from engine.errors import Cancelled, CartolinaError
    from engine.generate import generate

    code = codes.check_code(code, "code")
    settings = worker_settings()
    redis = _redis(self)
    if redis.exists(cancel_key(code)):
        return {"outcome": "cancelled", "error": f"picture {code} cancelled while waiting"}
    done = redis.get(done_key(code))
    if done is not None and (settings.outputs_dir / f"{code}.png").exists():
        log.info("picture %s was made already (delivered again): not painted twice", code)
        return json.loads(done)
    from engine.models import get_pipelines
    self.update_state(state="PROGRESS", meta={"step": 0, "total": 0, "stage": "loading"})
    pipelines = get_pipelines(settings)  # already loaded by worker_process_init, or now (solo)

    seen = {"step": 0, "total": 0}
    started = time.monotonic()

    def on_progress(p) -> bool:
        seen["step"], seen["total"] = p.done, p.total
        self.update_state(state="PROGRESS", meta={"step": p.done, "total": p.total, "stage": p.stage})
        return not redis.exists(cancel_key(code))

    try:
        result = generate(request, settings, pipelines=pipelines, on_progress=on_progress, code=code)
    except Cancelled as exc:
        return {"outcome": "cancelled", "error": str(exc)}
    except CartolinaError as exc:
        return {"outcome": "failed", "error": str(exc)}
    except Exception:  # noqa: BLE001 - the visitor gets one plain sentence, the log the rest
        log.exception("picture %s failed", code)
        return {"outcome": "failed", "error": "the picture could not be made"}
    out = {"outcome": "succeeded", "result": result.to_dict(), **seen}
    note = result.face_pass_note
    if hasattr(note, "template"):  # a Msg: kept translatable for the visitor's page
        out["face_pass_note_msg"] = {"template": note.template, "params": note.params}
    redis.set(done_key(code), json.dumps(out), ex=KEEP_S)
    _learn_speed(redis, (time.monotonic() - started) / seen["step"] if seen["step"] else None)
    return out


def _learn_speed(redis, measured: float | None) -> None:
    """Smoothed as the embedded line does; two workers writing at once lose one sample, no more."""
    from engine.backends.embedded_pictures import SMOOTHING
    if not measured:
        return
    old = redis.get(SPEED_KEY)
    new = measured if old is None else SMOOTHING * measured + (1 - SMOOTHING) * float(old)
    redis.set(SPEED_KEY, f"{new:.6f}")


# --- training ------------------------------------------------------------------------------------

def _train_task(self, code: str) -> dict:
    """Run the trainer of job `code` (its folder on the shared data root) until the job ends.

    The job folder is the record: this task starts the trainer as the file protocol does
    (engine.training.jobs) and watches it. A delivery that finds the job `running` is a
    re-delivery: if that trainer still beats (a re-delivery after the visibility timeout, or
    a second copy), it follows the job to its end; once it is dead or silent past the grace,
    it resumes the job from its last checkpoint, at most `MAX_ATTEMPTS` starts in all, counted
    in the job's status, so a crash that repeats ends as `failed` instead of looping.
    """
    from engine import codes
    from engine.training import jobs

    code = codes.check_code(code, "code")
    settings = worker_settings()
    job = jobs.job_dir(settings, code)
    host = socket.gethostname()
    while True:
        with jobs.queue_lock(settings):
            st = jobs._raw_status(job) if job.is_dir() else None
            if st is None:
                return {"outcome": "gone"}  # forgotten meanwhile, or its files are damaged
            if st.get("state") in jobs.FINISHED:
                return {"outcome": st["state"]}
            if jobs.cancel_requested(job):
                jobs.finish(job, st, "cancelled", "cancelled")
                return {"outcome": "cancelled"}
            if st.get("state") == "running" and _trainer_beats(st, host, settings):
                proc = None  # another worker's (or an earlier copy's): follow it
            elif st.get("state") == "running":
                if st.get("host") == host and jobs.pid_alive(st.get("pid"), st.get("pid_started_at")):
                    jobs.kill_hung(st["pid"], st.get("pid_started_at"))  # alive but silent
                if jobs.settle_dead(settings, job, st, _why_dead(st, host)) != "queued":
                    return {"outcome": jobs._raw_status(job).get("state")}
                st = jobs._raw_status(job)
            if st.get("state") == "queued":
                proc = jobs.start_trainer(settings, job, st, die_with_parent=True,
                                          by=f" by worker {self.request.hostname}",
                                          host=host, worker=self.request.hostname)
        _watch(self, settings, job, proc)


def _trainer_beats(st: dict, host: str, settings: Settings) -> bool:
    from engine.training import jobs
    if st.get("host") == host and not jobs.pid_alive(st.get("pid"), st.get("pid_started_at")):
        return False  # on this machine the pid tells at once
    beat = st.get("heartbeat_at") or st.get("started_at") or 0
    return time.time() - float(beat) <= float(settings.heartbeat_grace_s)


def _why_dead(st: dict, host: str) -> str:
    if st.get("host") == host:
        return f"trainer pid {st.get('pid')} ended without a final status"
    return f"no heartbeat from the trainer on {st.get('host') or 'another machine'}"


def _watch(task, settings: Settings, job, proc) -> None:
    """Until our trainer exits (or, following another's, until the job's status changes hands):
    report its progress as task state, and pass on a cancel request as SIGTERM."""
    from engine.training import jobs
    signalled_at = None
    while True:
        st = jobs._raw_status(job) or {}
        if proc is None:
            if st.get("state") != "running" or not _trainer_beats(st, socket.gethostname(), settings):
                return  # ended, or silent: the loop above settles it
        elif proc.poll() is not None:
            return
        task.update_state(state="PROGRESS", meta={"step": st.get("step") or 0,
                                                  "total": st.get("total_steps") or 0, "stage": "training"})
        if proc is not None and jobs.cancel_requested(job):
            if signalled_at is None:
                proc.terminate()  # the trainer writes `cancelled` and exits
                signalled_at = time.monotonic()
            elif time.monotonic() - signalled_at > jobs.CANCEL_GRACE_S:
                proc.kill()
        time.sleep(WATCH_S)
