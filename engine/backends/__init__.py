"""Which backend makes the pictures: the one place pages and the command line ask.

    picture_backend(settings) → an object with
        submit(raw) -> code             the request checked now, the picture promised under code
        status(code) -> PictureStatus   queued / running / succeeded / failed / cancelled
        cancel(code) -> PictureStatus   leaves the line, or stops at the next step
        wait(code, timeout) -> PictureStatus

With no `CARTOLINA_BROKER_URL` it is the embedded line (engine.backends.embedded_pictures: one FIFO and one
worker thread in this process, nothing to install). With `CARTOLINA_BROKER_URL=redis://…` it
is the Celery backend (engine.backends.celery_pictures): the pictures are painted by
`python -m engine worker` processes, on this machine or others sharing the data root.
Callers never learn which one runs.
"""

from __future__ import annotations

from engine.config import Settings
from engine.backends.embedded_pictures import FINISHED, STATES, PictureStatus, picture_queue

__all__ = ["STATES", "FINISHED", "PictureStatus", "picture_backend"]


def picture_backend(settings: Settings):
    """The process's picture backend for these settings (one per settings, shared by sessions)."""
    if settings.broker_url:
        from engine.backends.celery_pictures import celery_pictures  # celery is imported only when used
        return celery_pictures(settings)
    return picture_queue(settings)
