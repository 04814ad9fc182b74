"""Who may open the catalog editor: anyone in studio mode; at a kiosk, only a browser session
that gave the curators' password, and nobody when none is set (`engine.curator_access`).

The sign-in lives in the session, so a kiosk's Start over, its idle reload or a new tab signs
out; `Home.py` lists the editor in a session's navigation only once it is signed in, so its
address leads nowhere before.
"""

from __future__ import annotations

import math

import streamlit as st

from engine.curator_access import CuratorGate
from ui.state import settings

SIGNED_IN = "curator_signed_in"


@st.cache_resource
def gate() -> CuratorGate:
    """One per server process, so the limit on tries holds across every browser session."""
    return CuratorGate(settings().curator_password)


def sign_in_offered() -> bool:
    cfg = settings()
    return cfg.mode == "kiosk" and bool(cfg.curator_password)


def editor_open() -> bool:
    return settings().mode == "studio" or (sign_in_offered() and st.session_state.get(SIGNED_IN) is True)


def _client() -> str:
    """The browser's address when the server knows it: a guesser at another address has tries
    of their own, while the process-wide limit still caps everyone together."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "unknown"


def sign_in(password: str) -> None:
    verdict = gate().attempt(password, _client())
    if verdict.ok:
        st.session_state[SIGNED_IN] = True
    elif verdict.wait_s:
        st.session_state["staff_note"] = f"Too many tries: wait {math.ceil(verdict.wait_s)} s and try again."
    else:
        st.session_state["staff_note"] = "Wrong password."
