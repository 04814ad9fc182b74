"""The curators' password at a kiosk: compared in constant time, a few tries a minute.

A kiosk stands in front of strangers, and its server may be reachable from the venue's network,
so the editor's password faces guessing at the screen and by script. The comparison takes the
same time whatever the guess (`hmac.compare_digest`), and tries are counted in a sliding minute,
per client (its address, when the server knows it) and for the whole process (addresses can
be many, or one proxy for all). Past either limit a try is refused without looking at the
password, so a guess that happens to be right is refused as well: otherwise the limit would only
slow a guesser down, never stop one.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Callable

WINDOW_S = 60.0
TRIES_PER_CLIENT = 3
TRIES_PER_PROCESS = 10


@dataclass(frozen=True)
class Verdict:
    ok: bool
    wait_s: float = 0.0  # > 0: too many tries, refused unchecked; try again after this long


class CuratorGate:
    """One per server process; every browser session asks the same one (thread-safe)."""

    def __init__(self, password: str, *, per_client: int = TRIES_PER_CLIENT,
                 per_process: int = TRIES_PER_PROCESS, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic):
        self._password = password.encode("utf-8")
        self._limits = {"client": per_client, "process": per_process}
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._process: deque[float] = deque()
        self._clients: dict[str, deque[float]] = defaultdict(deque)

    @property
    def enabled(self) -> bool:
        """No password, no editor: an empty one must never open it."""
        return bool(self._password)

    def attempt(self, given: str, client: str) -> Verdict:
        now = self._clock()
        with self._lock:
            self._forget_before(now - self._window_s)
            tries = self._clients[client]
            waits = [q[0] + self._window_s - now for q, limit in
                     ((tries, self._limits["client"]), (self._process, self._limits["process"]))
                     if len(q) >= limit]
            if waits:
                return Verdict(False, max(waits))
            tries.append(now)
            self._process.append(now)
        ok = self.enabled and hmac.compare_digest(given.encode("utf-8"), self._password)
        return Verdict(ok)

    def _forget_before(self, cutoff: float) -> None:
        for q in (self._process, *self._clients.values()):
            while q and q[0] <= cutoff:
                q.popleft()
        for client in [c for c, q in self._clients.items() if not q]:
            del self._clients[client]  # a client that stopped trying costs no memory
