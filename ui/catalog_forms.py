"""What every part of the catalog editor shares: changes run in widget callbacks, the texts of
a record, and the controls to rename, reorder and delete one.

Every change runs in a widget callback, with the record's version bound when the page was
drawn: Streamlit runs a callback before it draws the page again, so the version passed to the
catalog is the one the curator saw, not one read a moment later (which would always match, and
let a second curator's save overwrite the first's). The widgets' keys carry that version too, so
once a record changes every field shows its new content instead of the old one.
"""

from __future__ import annotations

from typing import Callable

import streamlit as st
from babel import Locale

from engine.catalog import DESCRIPTION_MAX, NAME_MAX, Catalog
from engine.catalog_edit import prompt_tokenizer, sample_prompt
from engine.config import available_languages
from engine.errors import CartolinaError
from ui.state import settings

NOTE = "catalog_note"
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp"]


def run_change(change: Callable[[], object], done: str | Callable[[object], str]) -> None:
    """A widget callback: run one catalog change and leave its outcome for `show_note`;
    `done` may word the change's result (a record renamed: its new name)."""
    try:
        result = change()
    except CartolinaError as exc:
        st.session_state[NOTE] = ("error", str(exc))
        return
    st.session_state[NOTE] = ("success", done(result) if callable(done) else done)


def show_note() -> None:
    kind, text = st.session_state.pop(NOTE, (None, ""))
    if kind:
        getattr(st, kind)(text)


def change_button(label: str, change: Callable[[], object], done: str | Callable[[object], str], *,
                  key: str, **kwargs) -> None:
    st.button(label, key=key, on_click=run_change, args=(change, done), **kwargs)


def select_record(label: str, records: list, select_key: str):
    """The record the editor's selectbox points at; a selection renamed or deleted meanwhile
    (by this curator or another) falls back to the first record."""
    names = [r.name for r in records]
    if st.session_state.get(select_key) not in names:
        st.session_state[select_key] = names[0]
    return records[names.index(st.selectbox(label, names, key=select_key))]


def pick(select_key: str, rec):
    """Put the editor's selectbox on the record a change made or renamed; returns it."""
    st.session_state[select_key] = rec.name
    return rec


@st.cache_resource(show_spinner=False)
def _tokenizer(model: str):
    return prompt_tokenizer(model)


def prompt_preview(cat: Catalog, **description: str) -> None:
    """What a description becomes in the prompt (`sample_prompt`), redrawn as it is typed."""
    cfg = settings()
    tokenizer = _tokenizer(cfg.resolve_model(cfg.inpaint_model))
    built = sample_prompt(cat, tokenizer=tokenizer, **description)
    length = f"{built.tokens} of 75 tokens" if tokenizer else f"{built.tokens} words; the model counts tokens"
    st.caption(f"Prompt preview, for an adult woman at medium distance ({length}):")
    st.code(built.prompt, language=None, wrap_lines=True)
    if built.cut:
        st.warning("Too long for the model, so this is left out: " +
                   "; ".join(f"{c['part']}: “{c['text']}”" for c in built.cut))


def value(key: str):
    """A widget's value inside a callback (the widget was drawn with this key)."""
    return st.session_state.get(key)


def translation_fields(record, key: str) -> Callable[[], dict]:
    """A record's title and description in each language the visitor pages speak besides
    English; returns what reads them back for the catalog's `translations=` (in a callback).
    Empty means untranslated: visitors then read the English description and the name."""
    langs = [lang for lang in available_languages() if lang != "en"]
    for lang in langs:
        now, language = record.translations.get(lang, {}), Locale.parse(lang).english_name
        shown = f"What visitors reading {language} see; names and the English texts stay as they are."
        c1, c2 = st.columns([1, 2])
        c1.text_input(f"Title in {language}", value=now.get("title", ""), max_chars=NAME_MAX,
                      placeholder=record.name, help=shown, key=f"{key}:title:{lang}")
        c2.text_area(f"Description in {language}", value=now.get("description", ""),
                     max_chars=DESCRIPTION_MAX, help=shown, key=f"{key}:description:{lang}")
    return lambda: {lang: {"title": value(f"{key}:title:{lang}"),
                           "description": value(f"{key}:description:{lang}")} for lang in langs}


def record_key(kind: str, name: str, version: int) -> str:
    """Widget keys of one version of a record: a new version draws fresh fields."""
    return f"{kind}:{name}:v{version}"


def manage_row(*, key: str, what: str, name: str, names: list[str], rename: Callable[[str], object],
               reorder: Callable[[list[str]], object], delete: Callable[[], object], goes: str) -> None:
    """Rename, move up or down in the list visitors see, and delete after a confirmation that
    says what goes with the record. `rename` selects the renamed record (`pick`)."""
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    c1.text_input(f"New name for this {what}", value=name, max_chars=NAME_MAX, key=f"{key}:rename")
    with c2:
        change_button("Rename", lambda: rename(value(f"{key}:rename")),
                      lambda rec: f"Renamed {name} to {rec.name}.", key=f"{key}:rename_go")
    at = names.index(name)
    c1, c2, c3 = st.columns([1, 1, 3], vertical_alignment="center")
    with c1:
        change_button("Move up", lambda: reorder(_moved(names, at, -1)), f"Moved {name} up.",
                      key=f"{key}:up", disabled=at == 0, icon=":material/arrow_upward:")
    with c2:
        change_button("Move down", lambda: reorder(_moved(names, at, +1)), f"Moved {name} down.",
                      key=f"{key}:down", disabled=at == len(names) - 1, icon=":material/arrow_downward:")
    c3.caption(f"Shown to visitors as number {at + 1} of {len(names)}.")
    with st.expander(f"Delete this {what}", icon=":material/delete:"):
        st.warning(goes)
        change_button(f"Yes, delete {name}", delete, f"Deleted {name}.", key=f"{key}:delete", type="primary")


def _moved(names: list[str], at: int, step: int) -> list[str]:
    moved = list(names)
    moved[at], moved[at + step] = moved[at + step], moved[at]
    return moved
