"""Process-wide resources and per-session defaults for the pages."""

from __future__ import annotations

import streamlit as st

from engine.catalog import Catalog
from engine.config import Settings, load_settings

SESSION_DEFAULTS = {
    "lora_code": "",        # the visitor's 8-digit LoRA code once training started
    "last_output": "",      # the code of the last generated picture
    "train_photos": (),     # Your face: the photos added so far, each with its verdict (a tuple:
                            # a default is shared by every session, so it must not be mutable)
    "train_widgets": 0,     # Your face: in the uploader's and the camera's keys, +1 empties them
}


@st.cache_resource
def settings() -> Settings:
    cfg = load_settings()
    cfg.ensure_dirs()
    return cfg


@st.cache_resource(show_spinner=False)
def pipelines():
    """The pipelines, once per server process, shared by every session (never mutated per user:
    LoRAs are switched under the engine's lock)."""
    from engine.models import get_pipelines
    return get_pipelines(settings())


def catalog() -> Catalog:
    # Cheap to open, and a fresh handle always sees other processes' writes.
    return Catalog.open(settings())


def init_session() -> None:
    for key, value in SESSION_DEFAULTS.items():
        st.session_state.setdefault(key, value)
