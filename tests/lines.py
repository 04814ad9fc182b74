"""Helpers for tests of the picture line: a request the demo catalog accepts, waiting for the
line's own thread, and the pipelines held busy as when another picture is being painted."""

from __future__ import annotations

import contextlib
import time

from engine.models import get_pipelines

REQUEST = {"poi_name": "Piazza del Duomo", "poi_image": "Fountain view", "action_name": "waving",
           "action_shot_type": "MES", "age": "adult", "gender": "woman", "seed": 3, "steps": 2}


def until(condition, timeout: float = 180.0) -> None:
    """Wait for a condition of the line (its worker thread moves on its own)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@contextlib.contextmanager
def painting_blocked(settings):
    """The pipelines busy: the line's worker takes the next job (state running) and waits at
    the pipelines' lock, for as long as the test looks."""
    lock = get_pipelines(settings).lock
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
