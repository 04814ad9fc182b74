"""8-digit codes: the only handle a visitor gets for a LoRA or a picture.

A code is typed on a phone or read off a QR code, so it is digits only (the seed's LoraCode),
may start with 0, and comes from `secrets` so nobody can guess their neighbour's LoRA by
counting. Callers pass a `taken` predicate and hold their own lock while they create the
thing the code names, so two processes never hand out the same code.
"""

from __future__ import annotations

import secrets
from typing import Callable

from engine.errors import Conflict, InvalidInput
from engine.messages import Msg

__all__ = ["CODE_DIGITS", "new_code", "check_code", "is_code"]

CODE_DIGITS = 8
_SPACE = 10 ** CODE_DIGITS
_MAX_TRIES = 1000


def is_code(value) -> bool:
    return isinstance(value, str) and len(value) == CODE_DIGITS and value.isascii() and value.isdigit()


def check_code(value, field: str = "selected_lora") -> str:
    """The code as a clean string, or InvalidInput naming the field.

    Surrounding blanks are tolerated (a pasted code often carries them); anything else is
    refused rather than fixed, so a typo is never silently turned into someone else's code.
    """
    text = value.strip() if isinstance(value, str) else value
    if not is_code(text):
        raise InvalidInput(field, value, Msg("{n} digits", n=CODE_DIGITS), reason=Msg("not a valid code"))
    return text


def new_code(taken: Callable[[str], bool]) -> str:
    """A fresh random code for which `taken(code)` is False."""
    for _ in range(_MAX_TRIES):
        code = f"{secrets.randbelow(_SPACE):0{CODE_DIGITS}d}"
        if not taken(code):
            return code
    raise Conflict(f"no free {CODE_DIGITS}-digit code found after {_MAX_TRIES} tries")
