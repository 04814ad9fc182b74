"""One exception tree for the whole engine.

Callers (pages, the command line, the trainer) catch `CartolinaError` and show its message;
the subclasses let them tell a user's mistake from a broken installation::

    CartolinaError
    ├── InvalidInput          a user-supplied value is wrong (field, value, accepted)
    │   ├── InvalidImage      an upload or file is not a usable image
    │   └── PhotoCheckFailed  training photos failed their per-photo checks
    ├── NotFound              a named catalog record, LoRA or job does not exist
    ├── Conflict              a name is already taken / a finished job cannot change
    ├── CatalogError          the catalog file is unreadable or inconsistent
    ├── ModelError            models are missing or cannot be loaded
    ├── JobError              the training job machinery failed
    ├── ServiceUnavailable    the picture service (the broker) cannot be reached: try again
    ├── DiskFull              a write failed for lack of space; nothing was left half-written
    └── Cancelled             a run was cancelled through its step callback
"""

from __future__ import annotations

from typing import Any, Iterable


class CartolinaError(Exception):
    """Root of every error the engine raises on purpose."""


class InvalidInput(CartolinaError, ValueError):
    """A value a user sent is not accepted.

    Carries the field's name, the rejected value and what would have been accepted, so the
    UI and the command line can point at the exact field.
    """

    def __init__(self, field: str, value: Any, accepted: str | Iterable[Any] | None = None,
                 reason: str | None = None):
        self.field = field
        self.value = value
        if accepted is not None and not isinstance(accepted, str):
            accepted = ", ".join(str(a) for a in accepted)
        self.accepted = accepted
        self.reason = reason
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        msg = f"{field}: {reason or 'invalid value'} (got {shown})"
        if accepted:
            msg += f"; accepted: {accepted}"
        super().__init__(msg)

    def to_dict(self) -> dict:
        return {"field": self.field, "value": _jsonable(self.value), "accepted": self.accepted,
                "reason": self.reason, "message": str(self)}


class InvalidImage(InvalidInput):
    """An uploaded or stored file is not an image we can safely use."""


class PhotoCheckFailed(InvalidInput):
    """One or more training photos failed; `problems` maps photo index → reason."""

    def __init__(self, problems: dict[int, str], count_problem: str | None = None):
        self.problems = dict(problems)
        self.count_problem = count_problem
        parts = []
        if count_problem:
            parts.append(count_problem)
        parts += [f"photo {i + 1}: {why}" for i, why in sorted(self.problems.items())]
        CartolinaError.__init__(self, "; ".join(parts))
        self.field, self.value, self.accepted, self.reason = "photos", None, None, "; ".join(parts)

    def __str__(self) -> str:  # keep the plain per-photo text
        return self.reason or ""

    def to_dict(self) -> dict:
        return {"field": "photos", "count_problem": self.count_problem,
                "problems": [{"photo": i + 1, "reason": r} for i, r in sorted(self.problems.items())],
                "message": str(self)}


class NotFound(CartolinaError, LookupError):
    """A named record, LoRA or job does not exist."""


class Conflict(CartolinaError):
    """The operation clashes with existing state (duplicate name, finished job...)."""


class CatalogError(CartolinaError):
    """The catalog file cannot be read or is inconsistent."""


class ModelError(CartolinaError):
    """Models are missing, incomplete or fail to load."""


class JobError(CartolinaError):
    """The training job machinery failed (spawn, status file, lock)."""


class ServiceUnavailable(CartolinaError):
    """The picture service (Redis, the Celery broker) cannot be reached now; trying again later
    may work. Nothing was queued."""


class DiskFull(CartolinaError):
    """The disk is full: the write was undone, and freeing space is the operator's move."""


class Cancelled(CartolinaError):
    """A generation or training run was cancelled on request."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
