"""Watching jobs: a callback whenever a job's status really changes.

The UI holds no process handle (a restarted app must pick up where it was), so it learns
about progress from the status files. `JobWatcher` uses watchdog (inotify on Linux) on the
jobs folder and calls back with the new status; heartbeat-only rewrites are filtered out so a
page is not woken every few seconds for nothing. For a single read use `jobs.status`.

    with JobWatcher(settings, lambda code, st: print(code, st["state"], st["step"])):
        ...
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Callable, Iterable

from engine import codes
from engine.config import Settings
from engine.training import jobs

__all__ = ["JobWatcher", "read_status", "IGNORED_FIELDS"]

read_status = jobs.read_status

# Fields that change on every heartbeat; a change in these alone is not news.
IGNORED_FIELDS = frozenset({"heartbeat_at", "updated_at", "eta_s", "queue_position"})

Callback = Callable[[str, dict], None]


def _essence(status: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in status.items() if k not in IGNORED_FIELDS))


class JobWatcher:
    """Calls `callback(code, status)` from a background thread on each status change.

    `only` limits it to some job codes. `polling=True` uses watchdog's polling observer, for
    file systems without change notifications (some network and container mounts).
    """

    def __init__(self, settings: Settings, callback: Callback, only: Iterable[str] | None = None,
                 *, polling: bool = False, poll_interval_s: float = 1.0):
        self.settings = settings
        self.callback = callback
        self.only = {codes.check_code(c, "code") for c in only} if only else None
        self.polling = polling
        self.poll_interval_s = poll_interval_s
        self._seen: dict[str, tuple] = {}
        self._lock = threading.Lock()
        self._observer = None

    # watchdog calls this for every event under jobs/
    def _on_path(self, path: str | bytes | None) -> None:
        if not path:
            return
        p = Path(path.decode() if isinstance(path, bytes) else path)
        if p.name != jobs.STATUS or not codes.is_code(p.parent.name):
            return
        self.check(p.parent.name)

    def check(self, code: str) -> None:
        """Read one job's status and call back if it changed since last time."""
        if self.only is not None and code not in self.only:
            return
        st = jobs._raw_status(self.settings.jobs_dir / code)
        if st is None:
            return
        key = _essence(st)
        with self._lock:
            if self._seen.get(code) == key:
                return
            self._seen[code] = key
        try:
            self.callback(code, st)
        except Exception:  # a broken callback must not kill the observer thread
            import logging
            logging.getLogger(__name__).exception("job watcher callback failed for %s", code)

    def start(self) -> "JobWatcher":
        from watchdog.events import FileSystemEventHandler
        if self.polling:
            from watchdog.observers.polling import PollingObserver
            observer = PollingObserver(timeout=self.poll_interval_s)
        else:
            from watchdog.observers import Observer
            observer = Observer()
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.is_directory:  # a new job folder is renamed into place whole
                    for path in (getattr(event, "dest_path", None), event.src_path):
                        name = Path(path.decode() if isinstance(path, bytes) else path or "").name
                        if codes.is_code(name):
                            watcher.check(name)
                    return
                watcher._on_path(getattr(event, "dest_path", None))
                watcher._on_path(event.src_path)

        self.settings.jobs_dir.mkdir(parents=True, exist_ok=True)
        # A new job is built in a hidden folder and renamed into place; inotify then re-adds
        # the same watch and watchdog warns about it. Harmless, and not the UI's business.
        warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)
        observer.schedule(Handler(), str(self.settings.jobs_dir), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
        # Report what is there already, so a late subscriber starts from the truth.
        for job in sorted(self.settings.jobs_dir.iterdir()):
            if job.is_dir() and codes.is_code(job.name):
                self.check(job.name)
        return self

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def __enter__(self) -> "JobWatcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
