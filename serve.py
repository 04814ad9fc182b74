"""Server entry: the Streamlit app plus a read-only `/data/outputs/<code>.png` route
(`ui.outputs_route`: pictures only, and a client guessing codes is slowed down) and the HTTP
API under `/api/v1/` (`api`: train, generate, jobs, catalog, forget me; docs/api.md).

The seed served finished pictures at `server_address/data/outputs/<code>`, so a visitor's
phone can fetch one from a QR code. Streamlit's `st.App` (Starlette) takes extra routes;
start it with `streamlit run serve.py` (bin/studio does).

At start-up it prints one line with the data root and the file-watching options actually in
effect, so an operator (and the quick-start test) can see that a kiosk watches nothing.

The app's lifespan runs the supervisor (`engine.supervisor`) for as long as the server lives:
the training queue settles and moves on with no visitor watching.
"""

from pathlib import Path

import streamlit as st

from api import api_mount
from engine.config import load_settings
from engine.supervisor import server_lifespan
from ui.outputs_route import outputs_mount

_settings = load_settings()
_settings.ensure_dirs()

print(f"cartolina: data root {_settings.home}; "
      f"file watcher: {st.get_option('server.fileWatcherType')}; "
      f"run on save: {'on' if st.get_option('server.runOnSave') else 'off'}", flush=True)

app = st.App(
    str(Path(__file__).with_name("Home.py")),
    routes=[outputs_mount(_settings.outputs_dir), api_mount(_settings)],
    lifespan=server_lifespan(_settings),
)
