"""Pictures as Celery tasks on Redis: the same interface as the embedded line
(engine.backends.embedded_pictures), for kiosks that share GPU workers (`python -m engine worker`).

What each call does, in Redis terms:
- submit: the request is checked here (a wrong field is reported at once), a fresh code is
  claimed atomically (`SET NX` of the job record, which keeps the checked request), and the
  task `cartolina.generate(code, request)` is sent to the `generate` queue with the task id
  `cartolina-picture-<code>`, so any kiosk can follow any code.
- status: Celery's task state (PENDING → queued, STARTED/PROGRESS → running, SUCCESS →
  the outcome the task returned, REVOKED → cancelled); the place in line is counted from the
  queue itself: the messages ahead of ours in the `generate` list, plus the ones workers have
  taken and not yet acknowledged (being painted, or about to be).
- cancel: a waiting picture's message is removed from the list (`LREM`, atomic: if a worker
  took it first, it is not waiting any more); a cancel flag, which the task reads before it
  starts and at every step, stops one already taken. The task is also revoked.
- ETA: each worker adds the seconds per step of every picture it finishes to one smoothed
  figure in Redis; the steps ahead (their plans, or what is left of the ones being painted)
  are shared among the workers painting now.
If Redis cannot be reached, every call raises ServiceUnavailable within a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import asdict
from typing import Mapping

import redis as redis_lib
from kombu.exceptions import OperationalError

from engine import codes
from engine.catalog import Catalog
from engine.backends.celery_app import GENERATE_TASK, KEEP_S, SPEED_KEY, cancel_key, celery_app, job_key, task_id
from engine.config import Settings
from engine.errors import Cancelled, JobError, NotFound, ServiceUnavailable
from engine.generate import FACE_STRENGTH, Request, Result, check_request, lora_folder
from engine.messages import Msg
from engine.backends.embedded_pictures import FINISHED, PictureStatus

__all__ = ["CeleryPictures", "celery_pictures", "UNREACHABLE", "reachable"]

UNREACHABLE = Msg("the picture service is not reachable, try again")
QUEUE = "generate"
POLL_S = 0.1  # wait(): between reads of the task's state

_REDIS_ERRORS = (redis_lib.exceptions.ConnectionError, redis_lib.exceptions.TimeoutError,
                 OperationalError, OSError)


class CeleryPictures:
    """The picture interface on Celery; any number of kiosks may use one Redis at once."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.app = celery_app(settings)
        self.redis = broker_client(settings)

    # --- the interface -------------------------------------------------------------------------

    def submit(self, raw: Mapping | Request) -> str:
        request = check_request(raw, Catalog.open(self.settings))
        planned = self._estimate_steps(request)
        record = json.dumps({"request": asdict(request), "planned_steps": planned, "submitted_at": time.time()})
        with reachable():
            code = codes.new_code(lambda c: (self.settings.outputs_dir / f"{c}.png").exists()
                                  or not self.redis.set(job_key(c), record, nx=True, ex=KEEP_S))
            try:
                self.app.send_task(GENERATE_TASK, args=(code, asdict(request)), task_id=task_id(code),
                                   queue=QUEUE, retry=True)
            except BaseException:
                self.redis.delete(job_key(code))
                raise
        return code

    def status(self, code: str) -> PictureStatus:
        code = codes.check_code(code, "code")
        with reachable():
            return self._status(code, self._record(code))

    def cancel(self, code: str) -> PictureStatus:
        code = codes.check_code(code, "code")
        with reachable():
            record = self._record(code)
            s = self._status(code, record)
            if s.state in FINISHED:
                return s
            self.redis.set(cancel_key(code), "1", ex=KEEP_S)
            message = self._waiting_message(code)
            if message is not None and self.redis.lrem(QUEUE, 1, message):
                record["cancelled_waiting"] = True
                self.redis.set(job_key(code), json.dumps(record), ex=KEEP_S)
            self.app.control.revoke(task_id(code))
            return self._status(code, record)

    def wait(self, code: str, timeout: float | None = None) -> PictureStatus:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            s = self.status(code)
            if s.state in FINISHED:
                return s
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"picture {code} still {s.state} after {timeout} s")
            time.sleep(POLL_S)

    # --- reading Redis -------------------------------------------------------------------------

    def _record(self, code: str) -> dict:
        raw = self.redis.get(job_key(code))
        if raw is None:
            raise NotFound(f"code: no picture job {code}")
        return json.loads(raw)

    def _estimate_steps(self, request: Request) -> int:
        face = bool(request.selected_lora) and lora_folder(self.settings, request.selected_lora)[0] is not None
        return request.steps + (int(request.steps * FACE_STRENGTH) if face else 0)

    def _waiting_message(self, code: str) -> str | None:
        """Our message as it lies in the queue's list, or None once a worker took it."""
        want = task_id(code)
        for raw in self.redis.lrange(QUEUE, 0, -1):
            if _message_id(raw) == want:
                return raw
        return None

    def _line(self, code: str) -> tuple[list[str], list[str]] | None:
        """(task ids waiting ahead of ours, task ids taken by workers), or None once ours is not
        waiting. kombu pushes on the left and workers pop from the right, so the messages to the
        right of ours are ahead of it; the taken ones are being painted (or about to be)."""
        waiting = [_message_id(raw) for raw in self.redis.lrange(QUEUE, 0, -1)]
        want = task_id(code)
        if want not in waiting:
            return None
        ahead = waiting[waiting.index(want) + 1:]
        taken = [_unacked_id(raw) for raw in self.redis.hvals("unacked") if _unacked_queue(raw) == QUEUE]
        return ahead, taken

    def _steps_left(self, tid: str | None) -> int:
        """A picture's steps still to paint, from its progress or its record's plan."""
        code = (tid or "").rsplit("-", 1)[-1]
        if not codes.is_code(code):
            return 0
        info = self.app.AsyncResult(tid).info
        if isinstance(info, dict) and info.get("total"):
            return max(0, int(info["total"]) - int(info.get("step") or 0))
        raw = self.redis.get(job_key(code))
        return int(json.loads(raw).get("planned_steps") or 0) if raw else 0

    def _eta(self, state: str, steps_left: int, line) -> float | None:
        """Seconds until ready, from the workers' measured speed (None until one picture was
        timed). The pictures ahead are shared among the workers painting now."""
        speed = self.redis.get(SPEED_KEY)
        if speed is None or state in FINISHED:
            return None
        ahead = 0.0
        if line is not None:
            waiting, taken = line
            ahead = sum(self._steps_left(t) for t in waiting + taken) / max(1, len(taken))
        return round((ahead + steps_left) * float(speed), 1)

    def _status(self, code: str, record: dict) -> PictureStatus:
        request = Request(**record["request"])
        planned = int(record.get("planned_steps") or request.steps)
        result = self.app.AsyncResult(task_id(code))
        state, info = result.state, result.info
        step, total, stage = 0, planned, "waiting"
        outcome, error = None, None
        if state == "SUCCESS" and isinstance(info, dict):
            kind = info.get("outcome")
            if kind == "succeeded":
                outcome, new_state = Result(**info["result"]), "succeeded"
                note = info.get("face_pass_note_msg")
                if note:
                    template, params = note["template"], note["params"]  # (a variable: not extracted)
                    outcome.face_pass_note = Msg(template, **params)
                step, total = int(info.get("step") or 0), int(info.get("total") or total)
            elif kind == "cancelled":
                new_state, error = "cancelled", Cancelled(info.get("error") or f"picture {code} cancelled")
            else:
                new_state, error = "failed", JobError(info.get("error") or "the picture could not be made")
            stage = None
        elif state == "FAILURE":
            new_state, stage, error = "failed", None, JobError("the picture could not be made")
        elif state == "REVOKED" or record.get("cancelled_waiting"):
            new_state, stage, error = "cancelled", None, Cancelled(f"picture {code} cancelled while waiting")
        elif state in ("STARTED", "PROGRESS"):
            new_state, stage = "running", "loading"
            if state == "PROGRESS" and isinstance(info, dict):
                step, stage = int(info.get("step") or 0), info.get("stage") or "loading"
                total = int(info.get("total") or planned)
        else:  # PENDING (waiting in the list, or taken and not yet started), RETRY
            new_state = "queued"
        place = position = line = None
        if new_state == "queued":
            line = self._line(code)
            if line is not None:
                place, position = len(line[0]) + len(line[1]) + 1, len(line[0]) + 1
        eta = self._eta(new_state, max(0, total - step), line)
        return PictureStatus(code, new_state, place, position, stage, step, total, eta, request,
                             outcome, error)


@contextlib.contextmanager
def reachable(message: Msg = UNREACHABLE):
    """Redis or the broker not answering becomes ServiceUnavailable, which pages word plainly."""
    try:
        yield
    except _REDIS_ERRORS as exc:
        raise ServiceUnavailable(message) from exc


def _message_id(raw: str) -> str | None:
    try:
        return json.loads(raw)["headers"]["id"]
    except (ValueError, KeyError, TypeError):
        return None


def _unacked_id(raw: str) -> str | None:
    try:
        return json.loads(raw)[0]["headers"]["id"]
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def _unacked_queue(raw: str) -> str | None:
    try:
        _message, _exchange, routing_key = json.loads(raw)
        return routing_key
    except (ValueError, TypeError):
        return None


def broker_client(settings: Settings) -> redis_lib.Redis:
    """A Redis client that gives up in seconds, so a kiosk says "not reachable" instead of freezing."""
    return redis_lib.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=5,
                                    decode_responses=True)


_backends: dict[tuple, object] = {}
_backends_lock = threading.Lock()


def shared(kind: type, settings: Settings):
    """One `kind` backend per process and settings, shared by every session."""
    key = (kind, repr(settings) + settings.broker_url)
    with _backends_lock:
        if key not in _backends:
            _backends[key] = kind(settings)
        return _backends[key]


def celery_pictures(settings: Settings) -> CeleryPictures:
    return shared(CeleryPictures, settings)
