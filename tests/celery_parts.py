"""Real parts for the Celery backend's tests: Debian's redis-server on a free loopback port and
`python -m engine worker` processes, started by the tests and stopped in their teardown."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.server import REPO, free_port


def _until(condition, what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not reached in {timeout:.0f} s" +
                               (f":\n{log.read_text()[-4000:]}" if log and log.exists() else ""))
        time.sleep(0.05)


class RedisServer:
    """One redis-server that a test can stop and start again on the same port."""

    def __init__(self, folder: Path):
        self.port, self.folder, self.proc = free_port(), folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def _answers(self) -> bool:
        with contextlib.suppress(redis.exceptions.RedisError):
            return redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
        return False

    def start(self) -> None:
        log = self.folder / f"redis-{self.port}.log"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.folder)],
            stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
        _until(lambda: self.proc.poll() is None and self._answers(), "redis answering", 30, log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None


class Workers:
    """`python -m engine worker` processes on one data root and one Redis."""

    def __init__(self, home: Path, broker_url: str):
        self.home, self.broker_url, self.procs = home, broker_url, []

    def start(self, name: str, *args: str, timeout: float = 240) -> subprocess.Popen:
        log = self.home / f"worker-{name}.log"
        env = dict(os.environ, CARTOLINA_HOME=str(self.home), CARTOLINA_BROKER_URL=self.broker_url,
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, "-m", "engine", "worker", "--name", f"{name}@test", *args],
                                cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        proc.log = log
        self.procs.append(proc)
        _until(lambda: proc.poll() is None and " ready." in log.read_text(), f"worker {name} ready",
               timeout, log)
        return proc

    def stop_all(self) -> None:
        """SIGTERM to each worker (a warm shutdown), then anything left of its process group killed."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
