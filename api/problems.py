"""Errors as the web expects them: RFC 9457 `application/problem+json`.

Every refusal names what to fix: `field`, `value`, `accepted` and `reason` (in the request's
language where the engine's message has a translation). The engine's one exception tree
(`engine.errors`) maps onto statuses here and nowhere else::

    InvalidInput                  422 invalid-field   (PhotoCheckFailed: bad-photos, each photo named)
    NotFound                      404 not-found
    Conflict                      409 conflict
    ServiceUnavailable            503 service-unavailable (with Retry-After)
    DiskFull                      507 disk-full
    any other error               500 server-error: one plain sentence; the log keeps the detail

A response never carries a traceback or a server path: only `InvalidInput`'s parts (a value the
client sent, what is accepted) and messages written for visitors reach the client; anything else
is logged and answered with a fixed sentence.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from fastapi.encoders import jsonable_encoder
from starlette.responses import JSONResponse

from api.language import say
from engine.codes import CODE_DIGITS
from engine.errors import (CartolinaError, Conflict, DiskFull, InvalidInput, NotFound, PhotoCheckFailed,
                           ServiceUnavailable)

CODE_PATTERN = rf"^\d{{{CODE_DIGITS}}}$"

__all__ = ["MEDIA_TYPE", "TYPES", "problem", "from_error", "from_validation", "RETRY_SERVICE_S"]

log = logging.getLogger("cartolina.api")

MEDIA_TYPE = "application/problem+json"
RETRY_SERVICE_S = 10  # Retry-After of a 503: Redis back, a worker up again

# slug → (status, title). `type` is "urn:cartolina:problem:<slug>"; docs/api.md lists them.
TYPES = {
    "bad-request": (400, "The request could not be read"),
    "unauthorized": (401, "A valid API token is needed"),
    "forbidden": (403, "Not allowed from this address"),
    "not-found": (404, "Not found"),
    "api-off": (404, "The API is off"),
    "method-not-allowed": (405, "Method not allowed"),
    "conflict": (409, "Conflict"),
    "too-large": (413, "Upload too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "invalid-field": (422, "A field is not accepted"),
    "bad-photos": (422, "Photos refused"),
    "too-many-requests": (429, "Too many requests"),
    "server-error": (500, "Something went wrong on our side"),
    "service-unavailable": (503, "Service unavailable"),
    "disk-full": (507, "The studio's disk is full"),
}
_BY_STATUS = {status: slug for slug, (status, _) in reversed(TYPES.items())}


def problem(slug: str, detail: str, *, instance: str | None = None, headers: dict | None = None,
            status: int | None = None, **extensions: Any) -> JSONResponse:
    status_default, title = TYPES[slug]
    body = {"type": f"urn:cartolina:problem:{slug}", "title": title, "status": status or status_default,
            "detail": detail}
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(jsonable_encoder(body), status_code=body["status"], media_type=MEDIA_TYPE,
                        headers=headers)


def slug_for_status(status: int) -> str:
    return _BY_STATUS.get(status, "server-error" if status >= 500 else "bad-request")


def _value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value if not isinstance(value, str) or len(value) <= 200 else value[:197] + "..."
    return repr(value)[:200]


def invalid_item(exc: InvalidInput, lang: str) -> dict:
    return {"field": exc.field, "value": _value(exc.value), "accepted": say(exc.accepted, lang),
            "reason": say(exc.reason, lang) or "invalid value"}


def from_error(exc: CartolinaError, lang: str, instance: str | None = None,
               not_found: str | None = None) -> JSONResponse:
    """The problem an engine error becomes, in `lang` where it has words for a visitor."""
    answer = _from_error(exc, lang, instance, not_found)
    answer.headers["Content-Language"] = lang
    return answer


def _from_error(exc: CartolinaError, lang: str, instance: str | None, not_found: str | None) -> JSONResponse:
    if isinstance(exc, PhotoCheckFailed):
        photos = [{"photo": i + 1, "reason": say(why, lang)} for i, why in sorted(exc.problems.items())]
        count = say(exc.count_problem, lang)
        parts = ([count] if count else []) + [f"photo {p['photo']}: {p['reason']}" for p in photos]
        return problem("bad-photos", "; ".join(parts), instance=instance, field="photos",
                       reason=parts[0] if parts else None, photos=photos, count_problem=count)
    if isinstance(exc, InvalidInput):
        item = invalid_item(exc, lang)
        return problem("invalid-field", str(exc), instance=instance, **item)
    if isinstance(exc, NotFound):
        return problem("not-found", not_found or str(exc) or "not found", instance=instance)
    if isinstance(exc, ServiceUnavailable):
        said = say(exc.args[0], lang) if exc.args else None
        return problem("service-unavailable", said or "the service is not reachable, try again",
                       instance=instance, headers={"Retry-After": str(RETRY_SERVICE_S)})
    if isinstance(exc, DiskFull):
        log.error("answered 507: %s", exc)
        return problem("disk-full", "the studio cannot store anything now; the staff have to free space",
                       instance=instance)
    if isinstance(exc, Conflict):
        log.warning("answered 409: %s", exc)
        return problem("conflict", "this cannot be done in the job's current state", instance=instance)
    log.error("answered 500 for %s: %s", type(exc).__name__, exc)
    return server_error(instance)


def server_error(instance: str | None = None) -> JSONResponse:
    return problem("server-error", "the request could not be completed; the studio's log has the details",
                   instance=instance)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _accepted_from_schema(schema: dict) -> str | None:
    """What a model field accepts, read from its JSON Schema (so it says what the document says)."""
    options = schema.get("anyOf") or [schema]
    words = []
    for option in options:
        if "enum" in option:
            words.append(", ".join(str(v) for v in option["enum"]))
        elif "const" in option:
            words.append(str(option["const"]))
        elif option.get("type") in ("integer", "number"):
            kind = "an integer" if option["type"] == "integer" else "a number"
            lo, hi = option.get("minimum"), option.get("maximum")
            words.append(f"{kind} from {_number(lo)} to {_number(hi)}" if lo is not None and hi is not None
                         else kind)
        elif option.get("type") == "boolean":
            words.append("true or false")
        elif option.get("type") == "string":
            words.append(f"{option.get('pattern', 'text')}" if "pattern" in option else "text")
        elif option.get("type") == "array":
            words.append("a list")
        elif option.get("type") == "null":
            words.append("null")
    return " or ".join(words) or None


_REASONS = {"literal_error": "not one of the accepted values", "enum": "not one of the accepted values",
            "int_parsing": "not an integer", "int_type": "not an integer", "int_from_float": "not an integer",
            "float_parsing": "not a number", "float_type": "not a number", "bool_parsing": "not true or false",
            "bool_type": "not true or false", "string_type": "not text", "greater_than_equal": "out of range",
            "less_than_equal": "out of range", "list_type": "not a list", "is_instance_of": "not a file"}


def from_validation(errors: Iterable[dict], instance: str | None, schemas: dict[str, dict] | None = None,
                    body_model_schema: dict | None = None) -> JSONResponse:
    """Pydantic's (or FastAPI's) validation errors: the first names the field; all are listed."""
    items = []
    properties = (body_model_schema or {}).get("properties", {})
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or "body"
        kind = err.get("type", "")
        value = None if kind == "missing" else _value(err.get("input"))
        accepted = None
        top = loc[0] if loc else None
        if top in properties:
            accepted = _accepted_from_schema(properties[top])
        elif schemas and top in schemas:
            accepted = _accepted_from_schema(schemas[top])
        if kind == "extra_forbidden":
            reason, accepted = "unknown field", ", ".join(properties) or None
        elif kind == "missing":
            reason = "missing"
        elif kind in ("json_invalid", "model_attributes_type", "dict_type") or field == "body":
            reason, accepted = "the body is not a JSON object", "a JSON object (or a form) with the fields"
        elif kind == "string_pattern_mismatch" and (err.get("ctx") or {}).get("pattern") == CODE_PATTERN:
            reason, accepted = "not a valid code", f"{CODE_DIGITS} digits"
        else:
            reason = _REASONS.get(kind) or err.get("msg") or "invalid value"
            if not accepted:
                expected = (err.get("ctx") or {}).get("expected") or (err.get("ctx") or {}).get("pattern")
                accepted = str(expected) if expected else None
        items.append({"field": field, "value": value, "accepted": accepted, "reason": reason})
    if not items:
        items = [{"field": "body", "value": None, "accepted": None, "reason": "invalid request"}]
    first = items[0]
    got = "" if first["value"] is None else f" (got {first['value']!r})"
    detail = f"{first['field']}: {first['reason']}{got}" + (f"; accepted: {first['accepted']}"
                                                            if first["accepted"] else "")
    return problem("invalid-field", detail, instance=instance, errors=items if len(items) > 1 else None,
                   **first)
