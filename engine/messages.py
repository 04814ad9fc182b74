"""Messages a visitor may read, kept translatable without the engine knowing any language.

The engine speaks English (the command line and the logs read it as it is), but a visitor
page words every error in the visitor's language. So a message is built from a template and
its values: `Msg` *is* the English text (a `str`, so every caller that prints or compares it
keeps working) and also remembers the template, which is the gettext msgid that Babel
extracts (`-k Msg`, see babel.cfg), and the values to put back into the translated
template. The UI translates with `ui.i18n.word`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Msg"]


class Msg(str):
    """An English message with its template and values; `str(msg)` is the English text."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> "Msg":
        obj = super().__new__(cls, template.format(**params) if params else template)
        obj.template = template
        obj.params = params
        return obj

    def __reduce__(self):  # survives pickling (Streamlit caches, multiprocessing)
        return (_rebuild, (self.template, self.params))


def _rebuild(template: str, params: dict[str, Any]) -> Msg:
    return Msg(template, **params)
