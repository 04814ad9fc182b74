"""The jobs a visitor waits for, pictures and trainings: the one place pages, the command line
and the HTTP API ask for them, never knowing which backend runs.

    picture_backend(settings) → an object with
        submit(raw) -> code             the request checked now, the picture promised under code
        status(code) -> PictureStatus   queued / running / succeeded / failed / cancelled,
                                        place in line, step of total, ETA, result or error
        cancel(code) -> PictureStatus   leaves the line, or stops at the next step
        wait(code, timeout) -> PictureStatus

    training_backend(settings) → an object with
        submit(photos, options=None) -> dict   photos checked now (PhotoCheckFailed names each
                                               bad one), the job queued; its status, with `code`
        status(code) -> dict            state, queue_position, step, total_steps, loss, eta_s, error
        cancel(code) -> dict            returns once the job has ended and its photos are deleted
                                        (embedded: once its trainer is gone too)
        wait(code, timeout=None, on_status=None) -> dict
        list() -> list[dict]
        loss_history(code) -> [(step, loss)]

With no `CARTOLINA_BROKER_URL` both are embedded: pictures in one FIFO line and one worker
thread in this process (engine.backends.embedded_pictures), trainings as detached processes on
the file protocol (engine.backends.embedded_training); nothing to install. With
`CARTOLINA_BROKER_URL=redis://…` both are Celery tasks on Redis (engine.backends.celery_pictures,
engine.backends.celery_training), run by `python -m engine worker` processes on this machine or
others sharing the data root. Either raises ServiceUnavailable when the broker is unreachable.
"""

from __future__ import annotations

from engine.backends.embedded_pictures import FINISHED, STATES, PictureStatus, picture_queue
from engine.config import Settings

__all__ = ["STATES", "FINISHED", "PictureStatus", "picture_backend", "training_backend"]


def picture_backend(settings: Settings):
    """The process's picture backend for these settings (one per settings, shared by sessions)."""
    if settings.broker_url:
        from engine.backends.celery_pictures import celery_pictures  # celery is imported only when used
        return celery_pictures(settings)
    return picture_queue(settings)


def training_backend(settings: Settings):
    """The process's training backend for these settings."""
    if settings.broker_url:
        from engine.backends.celery_training import celery_training
        return celery_training(settings)
    from engine.backends.embedded_training import TrainingJobs
    return TrainingJobs(settings)
