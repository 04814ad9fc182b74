"""Pictures as jobs: submit a request, get a code, follow its state, cancel it.

A picture takes a minute or two on a kiosk's GPU, and two visitors may ask at once: the
pipelines can only paint one picture at a time (one lock guards them), so without a queue the
second visitor's page simply freezes. Here every request becomes a job that waits its turn
in a first-come, first-served line and says where it stands: its place in line, the pass and
step it is at, and an estimate of the seconds left, learnt from the pictures made before.

This is the embedded backend DESIGN.md describes: one line and one worker thread per server
process, which owns the process-wide pipelines. Its interface (`submit`, `status`, `cancel`,
the states, `PictureStatus`) is the contract a multi-machine backend keeps too. Jobs live in
memory: a server restart forgets waiting requests (pictures already made stay on disk).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Mapping

from engine import codes
from engine.catalog import Catalog
from engine.config import Settings
from engine.errors import Cancelled, CartolinaError, JobError, NotFound
from engine.generate import FACE_STRENGTH, Progress, Request, Result, check_request, generate, lora_folder
from engine.messages import Msg

__all__ = ["STATES", "FINISHED", "PictureStatus", "PictureQueue", "picture_queue"]

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
KEEP_FINISHED = 500  # finished jobs remembered for their status; older ones are forgotten
SMOOTHING = 0.5      # weight of the newest run in the seconds-per-step estimate

log = logging.getLogger("cartolina.pictures")


@dataclass(frozen=True)
class PictureStatus:
    """Where a picture stands, as a page or an API client reads it."""

    code: str
    state: str
    place_in_line: int | None   # counting the picture being made: 2 means one is ahead
    queue_position: int | None  # among the waiting ones only, 1 = next (as for trainings)
    stage: str | None           # waiting, loading, body, face, saving
    step: int                   # over both passes
    total_steps: int            # planned steps over both passes (an estimate until it runs)
    eta_s: float | None         # seconds until the picture is ready; None until one was timed
    request: Request
    result: Result | None = None
    error: CartolinaError | None = None

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("result", "error", "request")}
        out["request"] = asdict(self.request)
        out["result"] = self.result.to_dict() if self.result else None
        out["error"] = str(self.error) if self.error else None
        return out


@dataclass
class _Job:
    code: str
    request: Request
    planned_steps: int
    submitted_at: float = field(default_factory=time.monotonic)
    state: str = "queued"
    stage: str = "waiting"
    step: int = 0
    total_steps: int = 0
    started_at: float | None = None
    cancel_requested: bool = False
    result: Result | None = None
    error: CartolinaError | None = None


class PictureQueue:
    """One first-come, first-served line of pictures and the thread that paints them."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._changed = threading.Condition()
        self._jobs: collections.OrderedDict[str, _Job] = collections.OrderedDict()
        self._waiting: collections.deque[str] = collections.deque()
        self._running: str | None = None
        self._seconds_per_step: float | None = None
        self._worker: threading.Thread | None = None

    # --- the interface -------------------------------------------------------------------------

    def submit(self, raw: Mapping | Request) -> str:
        """Check the request now (so a wrong field is reported at once, next to the field)
        and put it at the end of the line; returns the code the picture will be saved under."""
        request = check_request(raw, Catalog.open(self.settings))
        with self._changed:
            code = codes.new_code(self._code_taken)
            self._jobs[code] = _Job(code, request, self._estimate_steps(request))
            self._waiting.append(code)
            self._start_worker()
            self._changed.notify_all()
        log.info("picture %s queued (%d waiting)", code, len(self._waiting))
        return code

    def status(self, code: str) -> PictureStatus:
        code = codes.check_code(code, "code")
        with self._changed:
            return self._status(self._job(code))

    def cancel(self, code: str) -> PictureStatus:
        """A waiting picture leaves the line at once; one being painted stops at its next step.
        Cancelling a finished picture changes nothing (its status says how it ended)."""
        code = codes.check_code(code, "code")
        with self._changed:
            job = self._job(code)
            if job.state == "queued":
                self._waiting.remove(code)
                self._finish(job, "cancelled", Cancelled(f"picture {code} cancelled while waiting"))
            elif job.state == "running":
                job.cancel_requested = True
            return self._status(job)

    def wait(self, code: str, timeout: float | None = None) -> PictureStatus:
        """Until the picture is finished (for the command line and tests; pages poll instead)."""
        code = codes.check_code(code, "code")
        with self._changed:
            job = self._job(code)
            if not self._changed.wait_for(lambda: job.state in FINISHED, timeout):
                raise TimeoutError(f"picture {code} still {job.state} after {timeout} s")
            return self._status(job)

    def drain(self, timeout: float | None = None) -> None:
        """Until nothing waits or is painted: a server (or a test) that stops should not
        leave a picture half made in a thread that is about to die."""
        with self._changed:
            if not self._changed.wait_for(lambda: not self._waiting and self._running is None, timeout):
                raise TimeoutError(f"pictures still being made after {timeout} s")

    # --- bookkeeping (called with the condition held) --------------------------------------------

    def _code_taken(self, code: str) -> bool:
        return code in self._jobs or (self.settings.outputs_dir / f"{code}.png").exists()

    def _job(self, code: str) -> _Job:
        job = self._jobs.get(code)
        if job is None:
            raise NotFound(f"code: no picture job {code} (waiting requests are forgotten when the server restarts)")
        return job

    def _estimate_steps(self, request: Request) -> int:
        """Steps over both passes as planned before the schedulers are asked: close enough to
        estimate a wait; the exact count replaces it when the picture starts."""
        face = bool(request.selected_lora) and lora_folder(self.settings, request.selected_lora)[0] is not None
        return request.steps + (int(request.steps * FACE_STRENGTH) if face else 0)

    def _remaining_steps(self, job: _Job) -> int:
        if job.state == "running":
            return max(0, (job.total_steps or job.planned_steps) - job.step)
        return job.planned_steps if job.state == "queued" else 0

    def _status(self, job: _Job) -> PictureStatus:
        ahead: list[_Job] = []
        place = position = None
        if job.state == "queued":
            index = self._waiting.index(job.code)
            ahead = [self._jobs[c] for c in list(self._waiting)[:index]]
            if self._running:
                ahead.insert(0, self._jobs[self._running])
            place, position = len(ahead) + 1, index + 1
        eta = None
        if job.state not in FINISHED and self._seconds_per_step is not None:
            steps = sum(self._remaining_steps(j) for j in ahead) + self._remaining_steps(job)
            eta = round(steps * self._seconds_per_step, 1)
        return PictureStatus(job.code, job.state, place, position, job.stage, job.step,
                             job.total_steps or job.planned_steps, eta, job.request, job.result, job.error)

    def _finish(self, job: _Job, state: str, error: CartolinaError | None = None,
                result: Result | None = None) -> None:
        job.state, job.stage, job.error, job.result = state, None, error, result
        finished = [c for c, j in self._jobs.items() if j.state in FINISHED]
        for old in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[old]
        self._changed.notify_all()

    def _learn_speed(self, job: _Job) -> None:
        if job.started_at is None or not job.step:
            return
        measured = (time.monotonic() - job.started_at) / job.step
        old = self._seconds_per_step
        self._seconds_per_step = measured if old is None else SMOOTHING * measured + (1 - SMOOTHING) * old

    # --- the worker ------------------------------------------------------------------------------

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._serve, name="cartolina-pictures", daemon=True)
            self._worker.start()

    def _next(self) -> _Job:
        with self._changed:
            self._changed.wait_for(lambda: bool(self._waiting))
            job = self._jobs[self._waiting.popleft()]
            job.state, job.stage, job.started_at = "running", "loading", time.monotonic()
            self._running = job.code
            self._changed.notify_all()
            return job

    def _serve(self) -> None:
        while True:
            job = self._next()
            try:
                result = generate(job.request, self.settings, on_progress=self._progress(job), code=job.code)
            except Cancelled as exc:
                outcome = ("cancelled", exc, None)
            except CartolinaError as exc:
                outcome = ("failed", exc, None)
            except Exception as exc:  # noqa: BLE001 - the line must keep moving; the log has it all
                log.exception("picture %s failed", job.code)
                outcome = ("failed", JobError(Msg("the picture could not be made")), None)
            else:
                outcome = ("succeeded", None, result)
            with self._changed:
                if outcome[0] == "succeeded":
                    self._learn_speed(job)
                self._running = None
                self._finish(job, *outcome)
            log.info("picture %s %s", job.code, outcome[0])

    def _progress(self, job: _Job):
        def report(p: Progress) -> bool:
            with self._changed:
                job.stage, job.step, job.total_steps = p.stage, p.done, p.total
                self._changed.notify_all()
                return not job.cancel_requested
        return report


_lines: dict[str, PictureQueue] = {}
_lines_lock = threading.Lock()


def picture_queue(settings: Settings) -> PictureQueue:
    """The process's one line for these settings: every session of a server shares it."""
    key = repr(settings)  # Settings holds a dict, so it cannot be a key itself
    with _lines_lock:
        if key not in _lines:
            _lines[key] = PictureQueue(settings)
        return _lines[key]
