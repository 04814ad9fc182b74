"""Links a phone can open: absolute URLs to the studio and their QR codes.

A QR code is read by a phone, not by the browser that drew it, so its URL must be absolute:
`CARTOLINA_PUBLIC_URL` when the operator set it (the kiosk's address on the monument's
network), else the address this browser used to reach the studio.
"""

from __future__ import annotations

import io
from urllib.parse import urlencode, urlsplit

import segno
import streamlit as st

from ui.state import settings


def base_url() -> str:
    base = settings().public_url
    if not base:
        parts = urlsplit(st.context.url or "")
        base = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
    return base


def picture_url(code: str) -> str:
    """outputs/<code>.png, served read-only beside the app."""
    return f"{base_url()}/data/outputs/{code}.png"


def page_url(url_path: str, **params: str) -> str:
    """A page of the studio with query parameters, e.g. the scene page with a LoRA code filled."""
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{base_url()}/{url_path}" + (f"?{query}" if query else "")


def qr_png(url: str) -> bytes:
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=5, border=2)
    return buf.getvalue()
