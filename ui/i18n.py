"""The visitor's language: gettext catalogs under `locales/`, chosen per browser session.

A language is a gettext catalog, `locales/<lang>/LC_MESSAGES/messages.po`, compiled to `.mo`
by set-up (`pybabel compile`); English is the source text and needs none. So a curator adds a
language by adding a catalog (see README, "Languages"). The language of a session comes from
`?lang=xx` in the URL (a poster's QR code can open the right one), then from the switch drawn
on every page, then from `CARTOLINA_LANGUAGE`.

The engine stays language-free: its messages are `engine.messages.Msg` (English text plus the
template and values), and `word` puts them into the session's language. The catalog's texts
are the curators' and carry their own translations (`catalog_text`).
"""

from __future__ import annotations

import functools
import gettext
import logging

import streamlit as st
from babel import Locale

from engine.catalog import Action, POI, POIImage, record_text
from engine.config import LOCALES_DIR, available_languages
from engine.errors import InvalidInput, ServiceUnavailable
from engine.messages import Msg
from ui.state import settings

DOMAIN = "messages"
log = logging.getLogger("cartolina.ui")


def N_(text: str) -> str:
    """Marks a text for extraction where it is defined; `_` translates it where it is shown."""
    return text


# The request fields a visitor fills in, in the visitor's words.
FIELD_LABELS = {
    "poi_name": N_("place"), "poi_image": N_("photo"), "action_name": N_("pose"),
    "action_shot_type": N_("distance"), "age": N_("age"), "gender": N_("gender"),
    "other_details": N_("clothing and details"), "selected_lora": N_("your 8-digit code"),
    "action_prompt": N_("your description of the pose"), "steps": N_("quality (steps)"),
    "code": N_("code"), "photos": N_("photos"),
}


@functools.cache
def _translations(lang: str) -> gettext.NullTranslations:
    """One compiled catalog per language per process; English is the source text. A plain
    cache: every translated text asks, and Streamlit's cache would hash the key each time."""
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=LOCALES_DIR, languages=[lang])


def language() -> str:
    """The session's language: the URL's `?lang=` if it names a catalog, else the last choice,
    else the studio's default."""
    wanted = st.query_params.get("lang")
    if wanted in available_languages():
        st.session_state["lang"] = wanted
    return st.session_state.get("lang") or settings().language


def _(text: str) -> str:
    """Translate a source text into the session's language (the gettext keyword Babel extracts)."""
    return _translations(language()).gettext(text) if text else ""


def word(message) -> str:
    """An engine message (or any text) in the session's language, values put back in."""
    if not message:
        return ""  # gettext("") is the catalog's header, never a visitor text
    if isinstance(message, Msg):
        params = {k: word(v) if isinstance(v, Msg) else v for k, v in message.params.items()}
        translated = _(message.template)
        return translated.format(**params) if params else translated
    return _(str(message))


def catalog_text(record: POI | POIImage | Action, field: str) -> str:
    """A place's, photo's or pose's "title" or "description" as the visitor reads it: the
    curators' translation into the session's language, else English (the name as title)."""
    return record_text(record, field, language())


def language_name(lang: str) -> str:
    """The language's name in itself ("English", "Italiano"), from Babel's CLDR data."""
    return Locale.parse(lang).get_display_name(lang).capitalize()


def _switched() -> None:
    chosen = st.session_state["lang_switch"] or language()  # a tap on the current one clears it
    st.session_state["lang"] = chosen
    st.query_params["lang"] = chosen


def language_switch() -> None:
    """The switch every page shows; it also puts `?lang=` in the URL so a reload keeps it."""
    langs = available_languages()
    if len(langs) < 2:
        return
    st.session_state["lang_switch"] = language()
    st.segmented_control("Language", langs, format_func=language_name, key="lang_switch",
                         on_change=_switched, label_visibility="collapsed")


def error_text(exc: Exception) -> str:
    """What a visitor reads about an error: the field in their words, the reason and what is
    accepted, in their language. Anything that is not the visitor's mistake is logged in full
    and shown as one plain sentence: no traceback or server path reaches a visitor page."""
    if isinstance(exc, InvalidInput):
        field = _(FIELD_LABELS[exc.field]) if exc.field in FIELD_LABELS else exc.field
        text = _("Please check {field}: {reason}.").format(
            field=field, reason=word(exc.reason or Msg("invalid value")))
        if exc.accepted:
            text += " " + _("Accepted: {accepted}.").format(accepted=word(exc.accepted))
        return text
    if isinstance(exc, ServiceUnavailable) and exc.args and isinstance(exc.args[0], Msg):
        text = word(exc.args[0])  # not the visitor's mistake, and worth trying again soon
        return text[:1].upper() + text[1:] + "."
    log.exception("error shown to a visitor as a generic message", exc_info=exc)
    return _("Something went wrong on our side. Please try again, or ask the staff for help.")
