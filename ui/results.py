"""Showing a finished picture: the image, its code, a download, and a QR code for a phone."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.i18n import _
from ui.links import picture_url, qr_png


def show_picture(code: str, path: Path, note: str = "") -> None:
    left, right = st.columns([3, 1])
    with left:
        st.image(str(path), caption=_("Picture {code}").format(code=code))
    with right:
        st.metric(_("Your picture code"), code)
        st.download_button(_("Download"), data=path.read_bytes(), file_name=f"cartolina-{code}.png",
                           mime="image/png", type="primary", key=f"dl-{code}")
        url = picture_url(code)
        st.image(qr_png(url), caption=_("Scan to get it on your phone"), width=180)
        st.caption(url)
        if note:
            st.caption(note)
