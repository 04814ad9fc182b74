"""The supervisor: the studio's periodic chores, run from one place that lives as long as the server.

The training queue settles whenever somebody touches it (`jobs.reconcile`), but a kiosk at
night has nobody touching it: a trainer killed then stayed "running" until a visitor opened a
page, and the job queued behind it never started. The supervisor runs each chore in `tasks`
at its own interval, with nobody watching: reconcile every `CARTOLINA_SUPERVISE_S` seconds,
so a dead trainer is settled (resumed from its checkpoint, or failed) and the next job
started within that time.

Every server process runs one, started and stopped with the server by `st.App`'s lifespan
(serve.py), so there is nothing else to start or to forget to start. `python -m engine
supervise` runs the same loop without a server (a box that only trains, or a server started
some other way). Several on one data root are safe: each chore guards itself (reconcile works
under the queue's file lock, and only the holder that sees a free slot starts a job), so two
supervisors may do a round twice, never start a job twice.

A chore that raises is logged with its traceback and tried again at its next turn: one bad
round (a full disk, a lock held too long) never ends the loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Callable, Sequence

from engine import retention
from engine.config import Settings
from engine.training import jobs

__all__ = ["Task", "tasks", "Supervisor", "server_lifespan", "register"]

log = logging.getLogger("cartolina.supervisor")


@dataclass(frozen=True)
class Task:
    """One chore: `run(settings)` every `every_s` seconds, counted from the end of its last round."""

    name: str
    every_s: float
    run: Callable[[Settings], object]


def tasks(settings: Settings) -> list[Task]:
    """The periodic work; a new chore is one more line."""
    return [
        Task("reconcile", settings.supervise_s, jobs.reconcile),
        Task("retention", retention.DAY_S, retention.sweep),  # faces kept no longer than promised
    ]


def _summary(result: object) -> object:
    """What a round did, without its empty parts: a quiet round logs nothing."""
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if v}
    return result


class Supervisor:
    """Runs every task once at start (stale jobs are settled at start-up), then each at its
    own interval, until `stop()`."""

    def __init__(self, settings: Settings, chores: Sequence[Task] | None = None):
        self.settings = settings
        self.tasks = list(tasks(settings) if chores is None else chores)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def describe(self) -> str:
        return ", ".join(f"{t.name} every {t.every_s:g} s" for t in self.tasks)

    def run(self) -> None:
        due = [0.0] * len(self.tasks)
        while not self._stop.is_set():
            for i, task in enumerate(self.tasks):
                if due[i] <= time.monotonic() and not self._stop.is_set():
                    self._round(task)
                    due[i] = time.monotonic() + task.every_s
            self._stop.wait(max(0.0, min(due) - time.monotonic()))

    def _round(self, task: Task) -> None:
        try:
            result = task.run(self.settings)
        except Exception:
            log.exception("%s failed; trying again in %g s", task.name, task.every_s)
            return
        summary = _summary(result)
        if summary:
            log.info("%s: %s", task.name, summary)

    def start(self) -> "Supervisor":
        self._thread = threading.Thread(target=self.run, name="cartolina-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _log_to_stderr() -> None:
    """The server's (or the command's) own output shows what the supervisor did; Streamlit
    configures only its own loggers."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s cartolina supervisor: %(message)s",
                                               "%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def server_lifespan(settings: Settings):
    """For `st.App(lifespan=…)`: one supervisor per server process, for exactly its lifetime."""

    @asynccontextmanager
    async def lifespan(_app):
        _log_to_stderr()
        supervisor = Supervisor(settings).start()
        log.info("started for %s: %s", settings.home, supervisor.describe())
        try:
            yield None
        finally:
            await asyncio.to_thread(supervisor.stop)

    return lifespan


# --- `python -m engine supervise` --------------------------------------------------------------

def _cmd_supervise(_args) -> int:
    from engine.cli import EXIT_OK
    from engine.config import load_settings
    settings = load_settings()
    settings.ensure_dirs()
    supervisor = Supervisor(settings)
    # Trainers run in sessions of their own, so stopping the supervisor never stops a training.
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stop())
    _log_to_stderr()
    log.info("started for %s: %s", settings.home, supervisor.describe())
    supervisor.run()
    log.info("stopped")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("supervise", help="run the periodic chores (training queue) until stopped",
                       description="Settle dead trainers and start queued jobs every "
                                   "CARTOLINA_SUPERVISE_S seconds (10), until SIGTERM or Ctrl-C. "
                                   "Every server already runs this loop; this is for a machine "
                                   "that only trains. Safe beside servers on the same data root.")
    p.set_defaults(func=_cmd_supervise)
