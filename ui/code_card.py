"""A visitor's LoRA code, shown so that it leaves the kiosk with them.

The code is the only key to their face, and a kiosk visitor has no account: so it is shown big
enough to copy by hand, with a copy button, and as a QR code that opens *Make a picture* on
their phone with the code already filled in.
"""

from __future__ import annotations

import streamlit as st

from ui.i18n import _, language
from ui.links import page_url, qr_png

_BIG = ('<p style="font-size:3.2rem;font-weight:700;letter-spacing:0.12em;'
        'font-family:monospace;margin:0">{code}</p>')


def show_code(code: str) -> None:
    """`code` must be a checked 8-digit code: it goes into the page as HTML."""
    url = page_url("scene", lora=code, lang=language())
    left, right = st.columns([3, 2])
    with left:
        st.caption(_("Your code"))
        st.markdown(_BIG.format(code=code), unsafe_allow_html=True)
        st.code(code, language=None)
    with right:
        st.image(qr_png(url), caption=_("Scan to make a picture with your face on your phone"), width=200)
        st.caption(url)
