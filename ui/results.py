"""Showing a finished picture: the image, its code, a download, and a QR code for a phone."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlsplit

import segno
import streamlit as st

from ui.i18n import _
from ui.state import settings


def picture_url(code: str) -> str:
    """The absolute URL of outputs/<code>.png as a phone on the same network would see it."""
    base = settings().public_url
    if not base:
        parts = urlsplit(st.context.url or "")
        base = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
    return f"{base}/data/outputs/{code}.png"


def qr_png(url: str) -> bytes:
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=5, border=2)
    return buf.getvalue()


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
