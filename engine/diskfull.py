"""One name for "the disk is full", whichever library hit it.

A full disk surfaces as `OSError(ENOSPC)` from Python, as a `SafetensorError` whose text ends
in "(os error 28)" from the Rust writer, or wrapped in some other library's exception; an
operator needs one sentence that names the folder and what to do, not a traceback. Writers
clean up after themselves (temp file + replace), so the guard only has to name the problem.
"""

from __future__ import annotations

import errno
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from engine.errors import DiskFull

__all__ = ["is_disk_full", "disk_full_guard", "disk_full_error"]

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_FULL_TEXTS = ("no space left on device", "disk quota exceeded", f"os error {errno.ENOSPC}")


def is_disk_full(exc: BaseException) -> bool:
    """True when `exc`, or anything it was raised from, says the disk (or quota) is full."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        if any(text in str(exc).lower() for text in _FULL_TEXTS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_error(where: Path | str) -> DiskFull:
    where = Path(where)
    try:
        free = f"{shutil.disk_usage(where if where.is_dir() else where.parent).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    return DiskFull(f"the disk is full: could not write {where} ({free}). "
                    "Free some space (old pictures and LoRAs: `python -m engine retention --dry-run`) "
                    "and try again")


@contextmanager
def disk_full_guard(where: Path | str) -> Iterator[None]:
    """Turn any full-disk failure inside the block into `DiskFull` naming `where`."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as exc:  # engine errors too: a library's failure is often wrapped in one
        if is_disk_full(exc):
            raise disk_full_error(where) from exc
        raise
