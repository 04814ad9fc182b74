"""The language an API answer speaks: `?lang=xx`, else the first language of `Accept-Language`
that the studio has, else `CARTOLINA_LANGUAGE`.

Two kinds of text follow it: the catalog's own texts (the curators' translations, read with
`engine.catalog.record_text`, as the visitor pages read them) and the engine's messages a
visitor may read (`engine.messages.Msg`: a photo's problem, a field's reason and accepted
values), put into the language through the visitor pages' gettext catalogs under `locales/`.
The API's own words (problem titles) and the machine names (fields, values, states) stay
English, so a front-end can branch on them.
"""

from __future__ import annotations

import functools
import gettext

from engine.config import LOCALES_DIR, available_languages
from engine.messages import Msg

__all__ = ["choose_language", "say"]

DOMAIN = "messages"


def choose_language(query: str | None, accept_language: str | None, default: str) -> str:
    """`query` if the studio speaks it (the caller refuses others), else the best of the
    Accept-Language header by its q-values, else `default`."""
    langs = available_languages()
    if query in langs:
        return query
    best: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().split("-")[0].lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if primary in langs and q > 0:
            best.append((-q, i, primary))
    return min(best)[2] if best else default


@functools.cache
def _translations(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=LOCALES_DIR, languages=[lang], fallback=True)


def say(message, lang: str) -> str | None:
    """An engine message in `lang`, its values put back (themselves translated when they are
    messages); plain text as it is; None stays None."""
    if message is None:
        return None
    if isinstance(message, Msg):
        params = {k: say(v, lang) if isinstance(v, Msg) else v for k, v in message.params.items()}
        translated = _translations(lang).gettext(message.template)
        return translated.format(**params) if params else translated
    text = str(message)
    return _translations(lang).gettext(text) if text else text
