"""Choosing by looking: tiles of thumbnails with a button each, and the cached pictures behind
them. The thumbnails are drawn once per catalog version and shared by every session (a
curator's edit changes the catalog file, hence the version, hence the cache key)."""

from __future__ import annotations

import io
from typing import Callable, Sequence

import streamlit as st
from PIL import Image

from engine import previews
from engine.catalog import Catalog
from ui.state import settings


def catalog_version() -> int:
    path = settings().catalog_path
    return path.stat().st_mtime_ns if path.is_file() else 0


def _encode(img: Image.Image, kind: str) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format=kind, **({"quality": 85} if kind == "JPEG" else {}))
    return buf.getvalue()


@st.cache_data(max_entries=512, show_spinner=False)
def photo_thumbnail(version: int, home: str, poi: str, image: str) -> bytes:
    return _encode(previews.photo_thumbnail(Catalog.open(settings()), poi, image), "JPEG")


@st.cache_data(max_entries=512, show_spinner=False)
def pose_thumbnail(version: int, home: str, action: str, shot_type: str) -> bytes:
    return _encode(previews.pose_thumbnail(Catalog.open(settings()), action, shot_type), "PNG")


@st.cache_data(max_entries=256, show_spinner=False)
def scene_preview(version: int, home: str, poi: str, image: str, action: str, shot_type: str) -> bytes:
    return _encode(previews.scene_preview(Catalog.open(settings()), poi, image, action, shot_type), "JPEG")


def tiles(values: Sequence[str], *, chosen: str | None, picture: Callable[[str], bytes],
          label: Callable[[str], str], on_choose: Callable[[str], None], key: str, columns: int,
          extra: Callable[[str], str] | None = None) -> None:
    """A grid of pictures, each with a button carrying its name: tapping the name chooses it,
    and the chosen one's button is filled and ticked. Buttons span their tile, so a finger
    finds them on a kiosk."""
    cols = st.columns(columns)
    for i, value in enumerate(values):
        is_chosen = value == chosen
        with cols[i % columns].container(border=True):
            st.image(picture(value), width="stretch")
            if extra:
                st.caption(extra(value))
            st.button(label(value), key=f"{key}-{i}", on_click=on_choose, args=(value,),
                      type="primary" if is_chosen else "secondary",
                      icon=":material/check_circle:" if is_chosen else None, width="stretch")
