"""Trainings as Celery tasks on Redis: the job folder on the shared data root stays the one
record of a training (engine.training.jobs); Celery only decides which worker runs it.

- submit: the photos are checked and the job folder written here, `queued`, exactly as on one
  machine; then the task `cartolina.train(code)` goes to the `train` queue with the task id
  `cartolina-training-<code>`. If Redis cannot take it, the job is withdrawn (its photos
  deleted) and ServiceUnavailable raised: the visitor still has the photos on the page.
- status, wait, list, loss history: read from the job folder, as on one machine; the place in
  the queue counts the queued jobs ahead, which the `train` queue serves in the same order.
- cancel: a queued job is cancelled in its folder (its task, when delivered, finds it ended);
  a running one gets a cancel request that the worker running its trainer acts on.
- A queued job whose message Redis no longer holds (a Redis restarted without persistence), or
  a running one whose trainer has gone silent (its worker machine died whole), is sent again
  when its status is read: a second delivery of a job is harmless (the task follows a job
  whose trainer beats, resumes one whose trainer is dead, and ends at once on one that ended).
"""

from __future__ import annotations

import contextlib
import time
from typing import Sequence

from engine.backends.celery_app import TRAIN_TASK, celery_app, training_task_id
from engine.backends.celery_pictures import _message_id, _unacked_id, broker_client, reachable, shared
from engine.backends.embedded_training import TrainingJobs
from engine.config import Settings
from engine.errors import ServiceUnavailable
from engine.messages import Msg
from engine.training import jobs

__all__ = ["CeleryTraining", "celery_training", "QUEUE", "UNREACHABLE"]

QUEUE = "train"
UNREACHABLE = Msg("the training service is not reachable, try again")
RESEND_AFTER_S = 10  # a message just sent may be between the list and a worker for a moment


class CeleryTraining(TrainingJobs):
    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.app = celery_app(settings)
        self.redis = broker_client(settings)

    def submit(self, photos: Sequence, options: jobs.TrainOptions | None = None) -> dict:
        with reachable(UNREACHABLE):
            self.redis.ping()  # before the photos are checked and written: fail fast, lose nothing
        st = jobs.submit(photos, self.settings, options, start=False)
        code = st["code"]
        try:
            with reachable(UNREACHABLE):
                self.app.send_task(TRAIN_TASK, args=(code,), task_id=training_task_id(code),
                                   queue=QUEUE, retry=True)
        except ServiceUnavailable:
            job = jobs.job_dir(self.settings, code)
            with jobs.queue_lock(self.settings):
                jobs.finish(job, st, "failed", "the training service was not reachable")
            raise
        return jobs.read_status(self.settings, code)

    def status(self, code: str) -> dict:
        st = super().status(code)
        now = time.time()
        lost = st.get("state") == "queued" and now - float(st.get("submitted_at") or 0) > RESEND_AFTER_S
        # A trainer silent past the grace: its worker machine died whole, and Redis would hand
        # the message on only after the visibility timeout (an hour). Another delivery now
        # resumes it from its last checkpoint; the old message, when it comes back, finds the
        # job taken or ended.
        silent = (st.get("state") == "running" and
                  now - float(st.get("heartbeat_at") or 0) > float(self.settings.heartbeat_grace_s))
        if lost or silent:
            with reachable(UNREACHABLE):
                if not self._message_held(code, taken_counts=lost):
                    why = ("its message was lost (Redis restarted empty?)" if lost else
                           "its trainer is silent (its worker gone?)")
                    jobs._log(jobs.job_dir(self.settings, code), f"{why}: sent again")
                    self.app.send_task(TRAIN_TASK, args=(code,), task_id=training_task_id(code),
                                       queue=QUEUE, retry=True)
        return st

    def _message_held(self, code: str, taken_counts: bool = True) -> bool:
        """Waiting in the `train` list, or (when `taken_counts`) taken by a worker and not yet
        acknowledged."""
        want = training_task_id(code)
        return (any(_message_id(raw) == want for raw in self.redis.lrange(QUEUE, 0, -1)) or
                (taken_counts and any(_unacked_id(raw) == want for raw in self.redis.hvals("unacked"))))

    def cancel(self, code: str) -> dict:
        st = jobs.cancel(self.settings, code)
        with contextlib.suppress(Exception):  # tidy only: a delivered task finds the job ended anyway
            self.app.control.revoke(training_task_id(code))
        return st


def celery_training(settings: Settings) -> CeleryTraining:
    return shared(CeleryTraining, settings)
