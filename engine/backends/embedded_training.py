"""Training jobs on the file protocol (engine.training.jobs), trainers started on this machine.

Every status lives in the job's folder on the data root, so this class is also the reading
half of the Celery backend (engine.backends.celery_training), which only changes who starts
the trainer and how a cancel reaches it.
"""

from __future__ import annotations

from typing import Callable, Sequence

from engine.config import Settings
from engine.training import jobs

__all__ = ["TrainingJobs"]


class TrainingJobs:
    """The training interface (see engine.backends) with trainers started in this process's
    machine by `jobs.reconcile`, at most `CARTOLINA_MAX_PARALLEL_TRAININGS` at once."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def submit(self, photos: Sequence, options: jobs.TrainOptions | None = None) -> dict:
        return jobs.submit(photos, self.settings, options)

    def status(self, code: str) -> dict:
        return jobs.status(self.settings, code)

    def cancel(self, code: str) -> dict:
        return jobs.cancel(self.settings, code)

    def wait(self, code: str, timeout: float | None = None,
             on_status: Callable[[dict], None] | None = None) -> dict:
        return jobs.wait(self.settings, code, timeout=timeout, on_status=on_status)

    def list(self) -> list[dict]:
        return jobs.list_jobs(self.settings)

    def loss_history(self, code: str) -> list[tuple[int, float]]:
        return jobs.loss_history(self.settings, code)
