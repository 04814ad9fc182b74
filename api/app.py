"""The routes of `/api/v1`: the seed's API (its LoraTraining and GenerateImage views) over the
studio's job interface (`engine.backends`), so the pages, the command line and the API share one
picture line and one training queue, embedded or on Celery.

    POST   /train                 five photos (multipart) → 202 {lora_code, status_url}
    POST   /generate              the seed's fields (JSON or form) → 202 {code, status_url}
    GET    /jobs/{code}           a picture's or a training's state, place, step, ETA, result
    DELETE /jobs/{code}           cancel it
    GET    /catalog               places, photos, poses with thumbnails' URLs, in a language
    GET    /catalog/places/{poi}/photos/{image}/thumbnail, /catalog/poses/{action}/thumbnail
    DELETE /visitors/{lora_code}  forget me: what `python -m engine forget CODE` does
    GET    /openapi.json          the contract, generated from the models in api.models

FastAPI, mounted as a sub-application beside the Streamlit app (`serve.py`): it runs on the
same Starlette that `st.App` is, and it writes the OpenAPI 3.1 document from the pydantic models
that validate the requests. Errors: `api.problems`; who may call and how often: `api.access`.
"""


import json
import logging
import re
import time
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, File, Path, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import Match, Mount

from api import problems
from api.access import UNKNOWN_CODE_BUDGET, WINDOW_S, Gate
from api.catalog_view import Thumbnails, catalog_answer
from api.language import choose_language, say
from api.models import (CODE_PATTERN, CatalogAnswer, ForgetReport, GenerateAccepted, GenerateRequest, JobStatus,
                        Problem, TrainAccepted)
from engine.backends import PictureStatus, picture_backend, training_backend
from engine.config import Settings, available_languages
from engine.errors import (Cancelled, CartolinaError, Conflict, InvalidInput, JobError, NotFound,
                           ServiceUnavailable)
from engine.forget import forget
from engine.messages import Msg
from engine.poses import SHOT_TYPES
from ui.outputs_route import MissLimiter  # the outputs route's sliding window, reused

__all__ = ["create_app", "api_mount", "PREFIX"]

PREFIX = "/api/v1"
log = logging.getLogger("cartolina.api")

Code = Annotated[str, Path(pattern=CODE_PATTERN, description="an 8-digit code", examples=["04718263"])]
Lang = Literal[tuple(available_languages())]  # type: ignore[valid-type]

_PROBLEM = {"model": Problem}
_RETRY = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
PROBLEMS = {
    401: dict(_PROBLEM, description="a token is set and none, or a wrong one, was sent"),
    403: dict(_PROBLEM, description="no token is set and the client is not on this machine"),
    404: dict(_PROBLEM, description="not found, or the API is off (a kiosk without a token)"),
    422: dict(_PROBLEM, description="a field is not accepted: `field`, `value`, `accepted`, `reason`"),
    429: dict(_PROBLEM, description="past the rate limit per client", headers=_RETRY),
    500: dict(_PROBLEM, description="the studio failed; its log has the details"),
    "default": dict(_PROBLEM, description="any other refusal, as problem details"),
}
WITH_BODY = {413: dict(_PROBLEM, description="the body is larger than the route takes"),
             415: dict(_PROBLEM, description="neither JSON nor a form")}
UNAVAILABLE = {503: dict(_PROBLEM, description="the picture or training service (Redis) is not reachable",
                         headers=_RETRY)}
BODY_OF_GENERATE = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")

NULLABLE = {name for name, f in GenerateRequest.model_fields.items() if not f.is_required() and f.default is None}
NO_JOB = ("no picture or training has this code (pictures still waiting are forgotten when the "
          "server restarts)")


def request_language(request: Request, settings: Settings) -> str:
    return choose_language(request.query_params.get("lang"), request.headers.get("accept-language"),
                           settings.language)


def create_app(settings: Settings) -> FastAPI:
    """The API application for these settings (mounted at /api/v1 by `api_mount`)."""
    app = FastAPI(title="Cartolina studio API", version="1",
                  summary="Train a visitor's face and put them in the picture, with the seed's fields.",
                  description="Docs with curl and httpx examples: docs/api.md in the repository.",
                  openapi_url="/openapi.json", docs_url=None, redoc_url=None,
                  swagger_ui_oauth2_redirect_url=None,
                  generate_unique_id_function=lambda route: route.name)
    thumbnails = Thumbnails(settings)
    unknown_codes = MissLimiter(UNKNOWN_CODE_BUDGET, WINDOW_S)  # a client guessing codes is stopped

    def language(request: Request, response: Response,
                 lang: Annotated[Lang | None, Query(description="the language of texts in the answer; "
                                                                "else Accept-Language, else the studio's")] = None
                 ) -> str:
        chosen = request_language(request, settings)
        response.headers["Content-Language"] = chosen
        return chosen

    Language = Annotated[str, Depends(language)]

    def origin(request: Request) -> str:
        return settings.public_url or f"{request.url.scheme}://{request.url.netloc}"

    def url(request: Request, *segments: str) -> str:
        """An absolute URL under /api/v1 (catalog names may hold spaces, commas, &...)."""
        return origin(request) + PREFIX + "".join("/" + quote(s, safe="") for s in segments)

    def picture_url(request: Request, code: str) -> str:
        return f"{origin(request)}/data/outputs/{code}.png"

    def guessing(request: Request) -> Response | None:
        """Unknown codes from one client are counted: past the budget it is refused (429)."""
        client = request.client.host if request.client else "unknown"
        wait = unknown_codes.retry_after(client, _now())
        if wait is None:
            return None
        return problems.problem("too-many-requests", "too many unknown codes from this address; try again later",
                                instance=request.url.path, headers={"Retry-After": str(max(1, round(wait)))})

    def missed(request: Request) -> None:
        unknown_codes.miss(request.client.host if request.client else "unknown", _now())

    # --- errors ---------------------------------------------------------------------------------

    @app.exception_handler(CartolinaError)
    async def engine_error(request: Request, exc: CartolinaError):
        return problems.from_error(exc, request_language(request, settings), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return problems.from_validation(exc.errors(), request.url.path)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        texts = {404: "no such route under /api/v1 (see /api/v1/openapi.json)",
                 405: f"{request.method} is not a method of this route"}
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # every method of the path, not only the first route's
            allowed = sorted({m for route in app.routes if route.matches(request.scope)[0] != Match.NONE
                              for m in getattr(route, "methods", ())})
            headers = dict(headers or {}, Allow=", ".join(allowed))
        detail = texts.get(exc.status_code) or (exc.detail if exc.status_code == 413 else None) or \
            "the request's body could not be read"
        return problems.problem(problems.slug_for_status(exc.status_code), detail, instance=request.url.path,
                                headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.error("API request %s %s failed", request.method, request.url.path, exc_info=exc)
        return problems.server_error(request.url.path)

    # --- training -------------------------------------------------------------------------------

    @app.post("/train", status_code=202, response_model=TrainAccepted, tags=["jobs"],
              responses={**PROBLEMS, **WITH_BODY, **UNAVAILABLE,
                         202: {"headers": {"Location": {"description": "the status URL",
                                                        "schema": {"type": "string"}}}},
                         422: dict(_PROBLEM, description="photos refused: `photos` lists each one with "
                                                         "its reason, as the training page shows them")})
    async def train(request: Request, response: Response, lang: Language,
                    photos: Annotated[list[UploadFile], File(
                        description=f"the visitor's face photos ({settings.photos_min}"
                                    + (f"–{settings.photos_max}" if settings.photos_max != settings.photos_min
                                       else "") + f"), each one face, at most {settings.max_upload_bytes >> 20} "
                                    "MiB; JPEG, PNG or WebP")]):
        """The seed's LoraTraining: the photos are checked now (each refused photo is named with its
        reason) and the training is queued; its code is the visitor's LoRA code."""
        data, oversized = [], []
        for i, photo in enumerate(photos):
            content = await photo.read()
            if len(content) > settings.max_upload_bytes:
                oversized.append(i + 1)
            data.append(content)
        if oversized:
            limit = settings.max_upload_bytes
            return problems.problem("too-large", f"photo {', '.join(map(str, oversized))}: larger than "
                                    f"{limit >> 20} MiB", instance=request.url.path, field="photos",
                                    accepted=f"photos of at most {limit} bytes", value=oversized)
        status = await run_in_threadpool(training_backend(settings).submit, data)
        status_url = url(request, "jobs", status["code"])
        response.headers["Location"] = status_url
        return {"lora_code": status["code"], "status_url": status_url, "state": status["state"],
                "queue_position": status.get("queue_position")}

    # --- pictures -------------------------------------------------------------------------------

    @app.post("/generate", status_code=202, response_model=GenerateAccepted, tags=["jobs"],
              openapi_extra={"requestBody": {"required": True, "content": {
                  kind: {"schema": {"$ref": "#/components/schemas/GenerateRequest"}} for kind in BODY_OF_GENERATE}}},
              responses={**PROBLEMS, **WITH_BODY, **UNAVAILABLE,
                         202: {"headers": {"Location": {"description": "the status URL",
                                                        "schema": {"type": "string"}}}}})
    async def generate(request: Request, response: Response, lang: Language):
        """The seed's GenerateImage: every field is checked now (against the catalog too) and the
        picture joins the line; follow it at `status_url`, fetch it at `picture_url`."""
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if kind == "application/json" or kind.endswith("+json"):
            body = await request.body()
            try:
                data = json.loads(body) if body.strip() else None
            except ValueError:
                return problems.from_validation([{"type": "json_invalid", "loc": ("body",)}], request.url.path)
        elif kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form(max_files=0, max_fields=len(GenerateRequest.model_fields) + 1)
            # An empty form field is one not given, and so is "null" where the field may be null
            # (OpenAPI's form encoding of a null).
            data = {k: v for k, v in form.items() if v != "" and not (v == "null" and k in NULLABLE)}
        else:
            return problems.problem("unsupported-media-type", f"a body of type {kind or 'none'} cannot be read",
                                    instance=request.url.path, field="Content-Type", value=kind,
                                    accepted=", ".join(BODY_OF_GENERATE))
        if not isinstance(data, dict):
            return problems.from_validation([{"type": "dict_type", "loc": ("body",), "input": data}],
                                            request.url.path)
        try:
            wanted = GenerateRequest.model_validate(data)
        except ValidationError as exc:
            return problems.from_validation(exc.errors(), request.url.path,
                                            body_model_schema=GenerateRequest.model_json_schema())
        code = await run_in_threadpool(picture_backend(settings).submit, wanted.model_dump())
        status = await run_in_threadpool(picture_backend(settings).status, code)
        status_url = url(request, "jobs", code)
        response.headers["Location"] = status_url
        return {"code": code, "status_url": status_url, "picture_url": picture_url(request, code),
                "state": status.state, "place_in_line": status.place_in_line}

    # --- jobs -------------------------------------------------------------------------------------

    def picture_answer(request: Request, s: PictureStatus, lang: str) -> dict:
        out = {"code": s.code, "kind": "picture", "state": s.state, "place_in_line": s.place_in_line,
               "queue_position": s.queue_position, "stage": s.stage, "step": s.step,
               "total_steps": s.total_steps, "eta_s": s.eta_s}
        if s.result is not None:
            if not (settings.outputs_dir / f"{s.code}.png").is_file():
                raise NotFound(NO_JOB)  # forgotten, or past the retention period
            out.update(picture_url=picture_url(request, s.code), action_name=s.result.action_name,
                       face_pass=s.result.face_pass, face_pass_note=say(_without_code(s.result.face_pass_note), lang),
                       face_seed=s.result.face_seed, likeness=(s.result.likeness or {}).get("level"))
        if s.error is not None:
            out["error"] = picture_error(s.error, lang)
        return out

    def picture_error(error: CartolinaError, lang: str) -> str:
        if isinstance(error, Cancelled):
            return "cancelled"
        if isinstance(error, InvalidInput):
            return problems.invalid_item(error, lang)["reason"] + f" ({error.field})"
        if isinstance(error, (JobError, ServiceUnavailable)) and error.args and hasattr(error.args[0], "template"):
            return say(error.args[0], lang)
        log.warning("picture error shown as a plain sentence: %s", error)
        return say("the picture could not be made", lang)

    def training_answer(st: dict, lang: str) -> dict:
        state = st.get("state")
        out = {"code": st["code"], "kind": "training", "state": state,
               "queue_position": st.get("queue_position"), "step": st.get("step"),
               "total_steps": st.get("total_steps"), "eta_s": st.get("eta_s"), "loss": st.get("loss")}
        if state == "succeeded":
            out["lora_code"] = st["code"]
        elif state == "failed":
            out["error"] = say("This training failed. Your photos were deleted; please start again.", lang)
        elif state == "cancelled":
            out["error"] = "cancelled"
        elif state == "broken":
            out["error"] = say("This training's files are damaged, so it cannot go on. "
                               "Please ask the staff for help.", lang)
        return out

    def finished_picture(code: str) -> dict | None:
        """A picture made before the server restarted: its job is forgotten, its file is not."""
        if (settings.outputs_dir / f"{code}.png").is_file():
            return {"code": code, "kind": "picture", "state": "succeeded"}
        return None

    @app.get("/jobs/{code}", response_model=JobStatus, response_model_exclude_none=False, tags=["jobs"],
             responses={**PROBLEMS, **UNAVAILABLE})
    def job_status(request: Request, code: Code, lang: Language):
        """A picture's or a training's state, place in line, step of total and ETA; a finished
        picture's URL, a finished training's LoRA code, or why it failed."""
        refused = guessing(request)
        if refused:
            return refused
        unavailable = None
        try:
            return picture_answer(request, picture_backend(settings).status(code), lang)
        except NotFound:
            pass
        except ServiceUnavailable as exc:
            unavailable = exc
        try:
            return training_answer(training_backend(settings).status(code), lang)
        except NotFound:
            pass
        old = finished_picture(code)
        if old:
            return dict(old, picture_url=picture_url(request, code))
        if unavailable is not None:
            raise unavailable
        missed(request)
        raise NotFound(NO_JOB)

    @app.delete("/jobs/{code}", response_model=JobStatus, tags=["jobs"], responses={**PROBLEMS, **UNAVAILABLE})
    def cancel_job(request: Request, code: Code, lang: Language):
        """Cancel: a waiting job leaves the line at once, a running one stops at its next step.
        A finished job stays as it ended (its status says how)."""
        refused = guessing(request)
        if refused:
            return refused
        try:
            return picture_answer(request, picture_backend(settings).cancel(code), lang)
        except NotFound:
            pass
        trainings = training_backend(settings)
        try:
            return training_answer(trainings.cancel(code), lang)
        except Conflict:
            return training_answer(trainings.status(code), lang)
        except NotFound:
            pass
        old = finished_picture(code)
        if old:
            return dict(old, picture_url=picture_url(request, code))
        missed(request)
        raise NotFound(NO_JOB)

    # --- forget me --------------------------------------------------------------------------------

    @app.delete("/visitors/{lora_code}", response_model=ForgetReport, tags=["privacy"], responses=PROBLEMS)
    def forget_visitor(request: Request, lora_code: Code):
        """Forget me: the LoRA, its training job (cancelled first if it runs) and every picture made
        with it; given a picture's code, that picture. As `python -m engine forget CODE`."""
        refused = guessing(request)
        if refused:
            return refused
        try:
            return forget(settings, lora_code)
        except NotFound:
            missed(request)
            raise NotFound("nothing is kept under this code: no LoRA, training or picture") from None

    # --- catalog ----------------------------------------------------------------------------------

    @app.get("/catalog", response_model=CatalogAnswer, tags=["catalog"], responses=PROBLEMS)
    def catalog(request: Request, lang: Language):
        """Places, their photos and the poses, with their titles and descriptions in the language
        and their thumbnails' URLs: what a front-end needs to draw its own choice screens."""
        return catalog_answer(
            settings, lang,
            photo_url=lambda poi, image: url(request, "catalog", "places", poi, "photos", image, "thumbnail"),
            pose_url=lambda action: url(request, "catalog", "poses", action, "thumbnail"))

    image_response = {200: {"content": {"image/jpeg": {}}, "description": "the thumbnail"}}

    @app.get("/catalog/places/{poi}/photos/{image}/thumbnail", tags=["catalog"], response_class=Response,
             responses={**PROBLEMS, **image_response})
    def photo_thumbnail(poi: str, image: str):
        """A place's photo, at most 360 px on its longer side (JPEG)."""
        try:
            data = thumbnails.photo(poi, image)
        except NotFound:
            raise NotFound("no such place or photo") from None
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=300"})

    pose_response = {200: {"content": {"image/png": {}}, "description": "the thumbnail"}}

    @app.get("/catalog/poses/{action}/thumbnail", tags=["catalog"], response_class=Response,
             responses={**PROBLEMS, **pose_response})
    def pose_thumbnail(action: str, shot: Annotated[Literal[SHOT_TYPES] | None, Query(  # type: ignore[valid-type]
            description="the distance; default MES")] = None):
        """A pose as a mannequin (its silhouette, face and skeleton), 200 px square (PNG)."""
        try:
            data = thumbnails.pose(action, shot)
        except NotFound:
            raise NotFound("no such pose at this distance") from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "public, max-age=300"})

    app.openapi = lambda: _openapi(app, settings)
    return app


def _without_code(note):
    """A face pass's note without the LoRA's code: whoever holds a picture's code (a QR code
    passed around) must not learn the code that paints its visitor's face."""
    if isinstance(note, Msg) and "code" in note.params:
        return Msg(note.template, **dict(note.params, code="…"))
    return note or None


def _now() -> float:
    return time.monotonic()


def _openapi(app: FastAPI, settings: Settings) -> dict:
    """FastAPI's document, with what it cannot say by itself: errors are problem+json, the
    picture request is read as JSON or as a form, and who may call."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description,
                      routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["GenerateRequest"] = GenerateRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    photos = schemas["Body_train"]["properties"]["photos"]
    photos.update(minItems=settings.photos_min, maxItems=settings.photos_max)
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            for status, answer in operation.get("responses", {}).items():
                content = answer.get("content", {})
                if (status == "default" or int(status) >= 400) and "application/json" in content:
                    content[problems.MEDIA_TYPE] = content.pop("application/json")
    doc["components"]["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "CARTOLINA_API_TOKEN. Needed whenever one is set; a kiosk serves no API without "
                       "one; a studio without one answers only its own machine."}}
    doc["security"] = [{"bearer": []}, {}]
    app.openapi_schema = doc
    return doc


def api_mount(settings: Settings) -> Mount:
    """`/api/v1` for serve.py's `st.App(routes=[...])`: the API behind its gate, and behind CORS
    when `CARTOLINA_API_ORIGINS` lists origins."""
    app = Gate(create_app(settings), settings)
    if settings.api_origins:
        app = CORSMiddleware(app, allow_origins=list(settings.api_origins),
                             allow_methods=["GET", "POST", "DELETE"],
                             allow_headers=["Authorization", "Content-Type", "Accept-Language"],
                             expose_headers=["Location", "Retry-After", "Content-Language"], max_age=600)
    mount = Mount(PREFIX, app=app, name="api")
    # Starlette's mount pattern ends in `.*`, which stops at a newline: a name with %0A in it would
    # fall through to the Streamlit app's plain 404. Every path under /api/v1/ is the API's.
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount
