"""Who may call the API, how often, and how much they may send: one ASGI layer in front of it.

In the order a request meets them:

1. **off**: a kiosk (`CARTOLINA_MODE=kiosk`) with no `CARTOLINA_API_TOKEN` serves no API at all
   (404 api-off), so a screen facing visitors never exposes one by accident;
2. **who**: with a token set, every request needs `Authorization: Bearer <token>` (compared in
   constant time; 401 otherwise). In studio mode with no token the API answers loopback clients
   only (127.0.0.0/8, ::1; 403 for others). Behind a reverse proxy on the same machine every
   client looks like loopback: set a token there. A client that sends `BAD_TOKEN_BUDGET` wrong
   tokens within a minute is refused (429) until the oldest leaves the minute, even with the
   right one, so a token cannot be guessed at speed;
3. **how often**: `CARTOLINA_API_RATE_PER_MIN` requests a minute per client address (429 with
   Retry-After past it). Unknown job codes count apart, as on `/data/outputs/`: a client that
   asks for 30 codes that do not exist in a minute is guessing them (429);
4. **how much**: a body longer than its route's limit is refused with 413 before it is read,
   by its Content-Length, or as soon as a chunked one passes the limit. POST /train takes
   `CARTOLINA_PHOTOS_MAX` photos of at most `CARTOLINA_MAX_UPLOAD_MB` each; anything else
   at most 64 KiB.

CORS is off (browsers on other origins cannot read answers) unless `CARTOLINA_API_ORIGINS`
lists origins; `api.app` puts Starlette's CORSMiddleware in front of this layer then, so
preflight requests need no token.

The counts live in the server process (a restart forgets them) and go by the address the
server sees.
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem
from engine.config import Settings
from ui.outputs_route import MissLimiter

__all__ = ["Gate", "BAD_TOKEN_BUDGET", "BODY_LIMIT", "UNKNOWN_CODE_BUDGET", "train_body_limit"]

WINDOW_S = 60.0
BAD_TOKEN_BUDGET = 10
UNKNOWN_CODE_BUDGET = 30
BODY_LIMIT = 64 * 1024  # any route but POST /train
MULTIPART_OVERHEAD = 1024 * 1024


def train_body_limit(settings: Settings) -> int:
    return settings.photos_max * settings.max_upload_bytes + MULTIPART_OVERHEAD


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Gate:
    """The ASGI layer described in the module's docstring, around the API application."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings = app, settings
        self.requests = MissLimiter(settings.api_rate_per_min, WINDOW_S)
        self.bad_tokens = MissLimiter(BAD_TOKEN_BUDGET, WINDOW_S)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, self._limited(request, receive), send)

    def _refusal(self, request: Request):
        s, path = self.settings, request.url.path
        client = request.client.host if request.client else "unknown"
        now = time.monotonic()
        if s.mode == "kiosk" and not s.api_token:
            return problem("api-off", "this kiosk serves no API: the staff turn it on with "
                                      "CARTOLINA_API_TOKEN", instance=path)
        if s.api_token:
            wait = self.bad_tokens.retry_after(client, now)
            if wait is not None:
                return _too_many("too many wrong API tokens from this address", wait, path)
            given = _bearer(request)
            if given is None or not hmac.compare_digest(given.encode(), s.api_token.encode()):
                self.bad_tokens.miss(client, now)
                why = "no API token was sent" if given is None else "the API token is not the right one"
                return problem("unauthorized", f"{why}: send Authorization: Bearer <CARTOLINA_API_TOKEN>",
                               instance=path, headers={"WWW-Authenticate": 'Bearer realm="cartolina"' + (
                                   ', error="invalid_token"' if given is not None else "")})
        elif not is_loopback(client):
            return problem("forbidden", "with no CARTOLINA_API_TOKEN set, the API answers only this "
                                        "machine (loopback)", instance=path)
        wait = self.requests.retry_after(client, now)
        if wait is not None:
            return _too_many(f"more than {s.api_rate_per_min} requests a minute from this address", wait, path)
        self.requests.miss(client, now)
        limit = self._body_limit(request)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return _too_large(limit, path)
        return None

    def _body_limit(self, request: Request) -> int:
        if request.method == "POST" and request.url.path.rstrip("/").endswith("/train"):
            return train_body_limit(self.settings)
        return BODY_LIMIT

    def _limited(self, request: Request, receive: Receive) -> Receive:
        limit, seen = self._body_limit(request), 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, detail=_limit_text(limit))
            return message
        return counted


def _limit_text(limit: int) -> str:
    size = f"{limit / 1024 / 1024:.0f} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
    return f"the request's body is larger than this route takes ({size})"


def _too_large(limit: int, path: str):
    return problem("too-large", _limit_text(limit), instance=path, accepted=f"at most {limit} bytes")


def _too_many(detail: str, wait: float, path: str):
    return problem("too-many-requests", detail + "; try again later", instance=path,
                   headers={"Retry-After": str(max(1, round(wait)))})
