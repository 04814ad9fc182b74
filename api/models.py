"""The API's requests and answers as pydantic models: the same classes validate what comes in
and write `/api/v1/openapi.json` (FastAPI reads their JSON Schema), so the document cannot
drift from the checks.

The accepted values come from the engine's own constants (shot types, ages, genders, the
ranges of seed, steps and guidance), and everything that needs the catalog (a place, a photo,
a pose) is checked by the engine (`engine.generate.check_request`) exactly as for the pages and
the command line.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.problems import CODE_PATTERN
from engine import codes, generate, picker, prompts
from engine.backends import STATES
from engine.poses import SHOT_TYPES

__all__ = ["GenerateRequest", "GenerateAccepted", "TrainAccepted", "JobStatus", "CatalogAnswer",
           "Place", "Photo", "Pose", "Choice", "ForgetReport", "Problem", "ProblemItem", "PhotoProblem",
           "CODE_PATTERN", "JOB_STATES"]

JOB_STATES = (*STATES, "broken")

ShotType = Literal[SHOT_TYPES]  # type: ignore[valid-type]
Age = Literal[prompts.AGES]  # type: ignore[valid-type]
Gender = Literal[prompts.GENDERS]  # type: ignore[valid-type]


class GenerateRequest(BaseModel):
    """A picture request with the seed's fields and values (its GenerateImage view), plus the
    studio's `seed`, `steps` and `guidance`. Unknown fields are refused."""

    # No example request in the document: one the catalog accepts would make every schema-driven
    # client (a fuzzer, a "try it" button) queue real pictures. docs/api.md has examples.
    model_config = ConfigDict(extra="forbid")

    poi_name: str = Field(description="the place (a `places[].name` of GET /catalog)")
    poi_image: str = Field(description="a photo of that place (a `places[].photos[].name`)")
    action_name: str | None = Field(None, description="the pose (a `poses[].name`); not needed with "
                                                      "`dynamic_action_selection`")
    action_shot_type: ShotType = Field(description="distance: CLS close, MES medium, FUS far")
    age: Age
    gender: Gender
    other_details: str = Field("", description=f"what the person wears, put in the prompt as "
                                               f"\"wearing …\" (up to {prompts.DETAILS_MAX} characters)")
    selected_lora: str | None = Field(None, description=f"a LoRA's {codes.CODE_DIGITS}-digit code: the "
                                                        "visitor's face is painted only when it exists "
                                                        "(a missing or unknown code is not an error)")
    dynamic_action_selection: bool = Field(False, description="true: the pose is picked from "
                                                              "`action_prompt` instead of `action_name`")
    action_prompt: str = Field("", description=f"the pose in words, for the picker (up to "
                                               f"{picker.PROMPT_MAX} characters)")
    seed: int | None = Field(None, ge=0, le=generate.SEED_MAX, description="random seed; none: a fresh one")
    steps: int = Field(generate.DEFAULT_STEPS, ge=generate.STEPS_RANGE[0], le=generate.STEPS_RANGE[1],
                       description="denoising steps of the body pass")
    guidance: float = Field(generate.DEFAULT_GUIDANCE, ge=generate.GUIDANCE_RANGE[0],
                            le=generate.GUIDANCE_RANGE[1], description="classifier-free guidance scale")
    face_seed: int | None = Field(None, ge=0, le=generate.SEED_MAX,
                                  description="the face pass's seed; none: `seed` + 1. The same request "
                                              "with the same `seed` and a new `face_seed` paints the same "
                                              "picture with a new face (when the likeness was low)")


class GenerateAccepted(BaseModel):
    code: str = Field(pattern=CODE_PATTERN, description="the picture's code, also its file name")
    status_url: str = Field(description="GET it to follow the picture; DELETE it to cancel")
    picture_url: str = Field(description="where the picture will be once it is made")
    state: Literal[STATES]  # type: ignore[valid-type]
    place_in_line: int | None = Field(description="counting the picture being made: 2 means one is ahead")


class TrainAccepted(BaseModel):
    lora_code: str = Field(pattern=CODE_PATTERN, description="the visitor's code: `selected_lora` of "
                                                             "POST /generate once the training succeeded")
    status_url: str
    state: Literal[JOB_STATES]  # type: ignore[valid-type]
    queue_position: int | None = Field(description="among the waiting trainings, 1 = next")


class JobStatus(BaseModel):
    """Where a picture or a training stands."""

    code: str = Field(pattern=CODE_PATTERN)
    kind: Literal["picture", "training"]
    state: Literal[JOB_STATES] = Field(  # type: ignore[valid-type]
        description="queued, running, succeeded, failed, cancelled; `broken`: a training whose "
                    "files are damaged")
    place_in_line: int | None = Field(None, description="pictures: counting the one being made")
    queue_position: int | None = Field(None, description="among the waiting ones only, 1 = next")
    stage: str | None = Field(None, description="pictures: waiting, loading, body, face, saving")
    step: int | None = None
    total_steps: int | None = None
    eta_s: float | None = Field(None, description="seconds until it is ready; null until known")
    loss: float | None = Field(None, description="trainings: the latest loss")
    picture_url: str | None = Field(None, description="a succeeded picture, as a phone fetches it")
    lora_code: str | None = Field(None, description="a succeeded training: the code to generate with")
    action_name: str | None = Field(None, description="a succeeded picture: the pose used (the "
                                                      "picked one with dynamic_action_selection)")
    face_pass: bool | None = Field(None, description="a succeeded picture: whether the visitor's face "
                                                     "was painted")
    face_pass_note: str | None = None
    face_seed: int | None = Field(None, description="a succeeded picture with a face pass: the face seed kept")
    likeness: Literal["high", "fair", "low"] | None = Field(
        None, description="a succeeded picture with a face pass: how close the painted face came to the "
                          "visitor's photos (dlib's face model); null when no face could be measured")
    error: str | None = Field(None, description="why it failed or was cancelled, in the request's language")


class Photo(BaseModel):
    name: str
    title: str
    description: str
    width: int
    height: int
    thumbnail_url: str


class Place(BaseModel):
    name: str = Field(description="the key to send as poi_name, in every language")
    title: str
    description: str
    photos: list[Photo]


class Pose(BaseModel):
    name: str = Field(description="the key to send as action_name")
    title: str
    description: str
    shot_types: list[ShotType]
    thumbnail_url: str = Field(description="the pose as a mannequin (PNG), at its medium distance "
                                           "if it has one; `?shot=` picks another")


class Choice(BaseModel):
    value: str
    label: str


class CatalogAnswer(BaseModel):
    """What a front-end needs to draw its own choice screens (read-only)."""

    language: str
    languages: list[str]
    places: list[Place] = Field(description="places with at least one photo, in the curators' order")
    poses: list[Pose] = Field(description="poses ready at all three distances, in the curators' order")
    shot_types: list[Choice]
    ages: list[Choice]
    genders: list[Choice]


class ForgetReport(BaseModel):
    code: str = Field(pattern=CODE_PATTERN)
    lora: bool = Field(description="the LoRA was deleted")
    job: bool = Field(description="its training job was deleted (cancelled first if it ran)")
    pictures: list[str] = Field(description="codes of the pictures deleted")


class ProblemItem(BaseModel):
    field: str
    value: object | None = None
    accepted: str | None = None
    reason: str | None = None


class PhotoProblem(BaseModel):
    photo: int = Field(description="1-based, in the order the photos were sent")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details; `field`, `value`, `accepted` and `reason` name what to fix."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None
    value: object | None = None
    accepted: str | None = None
    reason: str | None = None
    errors: list[ProblemItem] | None = Field(None, description="every field refused, when several were")
    photos: list[PhotoProblem] | None = Field(None, description="POST /train: each refused photo")
    count_problem: str | None = Field(None, description="POST /train: the number of photos is wrong")
