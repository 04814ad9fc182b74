"""Prompts for the two passes, built as the seed built them and kept within CLIP's window.

The seed's prompt joined the person (age, gender, pose), "wearing " + the visitor's details
and the POI image's description. CLIP reads at most 77 tokens (75 plus start and end), and
whatever lies past that is silently dropped by the pipeline, so here the parts are fitted in
order of importance and anything cut is reported instead of vanishing.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from engine.errors import InvalidInput
from engine.messages import Msg

AGES = ("young", "adult", "old")
GENDERS = ("man", "woman")
DETAILS_MAX = 200
SHOT_PHRASES = {"CLS": "close-up shot", "MES": "medium shot", "FUS": "full body shot, seen from afar"}
QUALITY = "photo, realistic, detailed, natural lighting"
NEGATIVE = ("deformed, distorted, disfigured, bad anatomy, extra limbs, missing limbs, extra fingers, "
            "blurry, lowres, cartoon, painting, watermark, text")
FACE_NEGATIVE = "deformed, distorted, blurry, lowres, cartoon, extra eyes, bad anatomy, watermark"
DEFAULT_TRIGGER = "sks person"


@dataclass(frozen=True)
class Prompts:
    prompt: str
    negative_prompt: str
    face_prompt: str
    face_negative_prompt: str
    tokens: int
    cut: list = field(default_factory=list)  # text that did not fit, by part


def check_details(value) -> str:
    """other_details: free text a visitor types at a kiosk, kept printable and short."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("other_details", value, Msg("text up to {n} characters", n=DETAILS_MAX),
                           reason=Msg("must be text"))
    text = " ".join(value.split())
    if len(text) > DETAILS_MAX:
        raise InvalidInput("other_details", f"{len(text)} characters", Msg("text up to {n} characters", n=DETAILS_MAX),
                           reason=Msg("too long"))
    if any(unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") for c in text):
        raise InvalidInput("other_details", value, Msg("printable text"), reason=Msg("contains control characters"))
    if text.lower().startswith("wearing "):
        text = text[len("wearing "):]
    return text


def _count(tokenizer, text: str) -> int:
    if tokenizer is None:
        return len(text.split())
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def _fit(tokenizer, text: str, budget: int) -> tuple[str, str]:
    """The longest word-prefix of `text` within `budget` tokens, and the rest."""
    words = text.split()
    lo, hi = 0, len(words)
    while lo < hi:  # binary search on the number of words that fit
        mid = (lo + hi + 1) // 2
        if _count(tokenizer, " ".join(words[:mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo]).rstrip(","), " ".join(words[lo:])


def build_prompts(*, poi_description: str, action_description: str, shot_type: str, age: str,
                  gender: str, details: str = "", trigger_words: str = DEFAULT_TRIGGER,
                  tokenizer=None) -> Prompts:
    """Both passes' prompts; parts are fitted by priority, then read in natural order."""
    limit = (getattr(tokenizer, "model_max_length", 77) or 77) - 2
    limit = min(limit, 75)
    person = f"a photo of a {age} {gender} {action_description}".strip()
    parts = {  # priority order: who and what first, the place next, style last
        "person": person,
        "details": f"wearing {details}" if details else "",
        "place": f"in {poi_description}" if poi_description else "",
        "shot": SHOT_PHRASES[shot_type],
        "quality": QUALITY,
    }
    kept: dict[str, str] = {}
    cut: list[dict] = []
    used = 0
    for name, text in parts.items():
        if not text:
            continue
        sep = 1 if kept else 0  # the comma joining parts costs about a token
        cost = _count(tokenizer, text) + sep
        if used + cost <= limit:
            kept[name] = text
            used += cost
            continue
        fitted, rest = _fit(tokenizer, text, max(0, limit - used - sep))
        if fitted and name != "quality":
            kept[name] = fitted
            used += _count(tokenizer, fitted) + sep
        cut.append({"part": name, "text": rest if fitted and name != "quality" else text})
    order = ("person", "details", "shot", "place", "quality")
    prompt = ", ".join(kept[k] for k in order if k in kept)
    face = f"a close-up photo of the face of {trigger_words}, {age} {gender}, detailed face, realistic"
    return Prompts(prompt=prompt, negative_prompt=NEGATIVE, face_prompt=face,
                   face_negative_prompt=FACE_NEGATIVE, tokens=_count(tokenizer, prompt), cut=cut)
