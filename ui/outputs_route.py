"""`/data/outputs/<code>.png`: a visitor's picture by its code, and nothing else.

The seed's URL, which a phone reads off a QR code. A picture's code is the only secret
between a visitor and their picture, so:

* only `<8 digits>.png` is looked up; any other name (the code lock, a temp file a killed
  writer left) answers 404 as a missing picture does, and nothing outside `outputs/` can be
  named at all;
* a client asking for codes that do not exist is guessing them: after `MISS_BUDGET` misses
  within `WINDOW_S` seconds from one address, everything it asks answers 429 (with
  Retry-After) until its oldest miss leaves the window. A visitor who mistypes a code a few
  times never notices; a script that read about 1,000 codes a second now reads 30 a minute.
  The count lives in the server process (a restart forgets it) and goes by the address the
  server sees: behind a reverse proxy, that proxy should do the limiting.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict, deque
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

__all__ = ["outputs_mount", "MissLimiter", "MISS_BUDGET", "WINDOW_S"]

MISS_BUDGET = 30
WINDOW_S = 60.0
MAX_CLIENTS = 10_000  # addresses remembered; the oldest is forgotten first
_PICTURE = re.compile(r"^\d{8}\.png$")


class MissLimiter:
    """Misses per client address in a sliding window. Used from the server's event loop only."""

    def __init__(self, budget: int = MISS_BUDGET, window_s: float = WINDOW_S,
                 max_clients: int = MAX_CLIENTS):
        self.budget, self.window_s, self.max_clients = budget, window_s, max_clients
        self._misses: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float]:
        misses = self._misses.get(client, deque())
        while misses and misses[0] <= now - self.window_s:
            misses.popleft()
        return misses

    def retry_after(self, client: str, now: float) -> float | None:
        """Seconds until `client` may ask again; None while it is within its budget."""
        misses = self._recent(client, now)
        if len(misses) < self.budget:
            return None
        return misses[0] + self.window_s - now

    def miss(self, client: str, now: float) -> None:
        misses = self._recent(client, now)
        misses.append(now)
        self._misses[client] = misses
        self._misses.move_to_end(client)
        while len(self._misses) > self.max_clients:
            self._misses.popitem(last=False)


def outputs_mount(folder: Path, limiter: MissLimiter | None = None) -> Mount:
    limiter = limiter or MissLimiter()

    async def picture(request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        now = time.monotonic()
        wait = limiter.retry_after(client, now)
        if wait is not None:
            return PlainTextResponse("too many unknown picture codes from this address; try again later",
                                     status_code=429, headers={"Retry-After": str(max(1, round(wait)))})
        name = request.path_params["name"]
        path = folder / name
        if _PICTURE.match(name) and path.is_file():
            return FileResponse(path, media_type="image/png")
        limiter.miss(client, now)
        return PlainTextResponse("no picture with this code", status_code=404)

    return Mount("/data/outputs", routes=[Route("/{name}", picture, methods=["GET", "HEAD"])],
                 name="outputs")
