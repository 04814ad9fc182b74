"""Server entry: the Streamlit app plus a read-only `/data/outputs/<code>.png` route.

The seed served finished pictures at `server_address/data/outputs/<code>`, so a visitor's
phone can fetch one from a QR code. Streamlit's `st.App` (Starlette) takes extra routes;
start it with `streamlit run serve.py` (bin/studio does).
"""

from pathlib import Path

import streamlit as st
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from engine.config import load_settings

_settings = load_settings()
_settings.ensure_dirs()

app = st.App(
    str(Path(__file__).with_name("Home.py")),
    routes=[Mount("/data/outputs", app=StaticFiles(directory=_settings.outputs_dir), name="outputs")],
)
