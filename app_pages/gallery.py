"""Gallery: the latest pictures, and finding one by its code."""

import streamlit as st

from engine.errors import InvalidInput, NotFound
from engine.generate import find_output
from ui.i18n import _
from ui.results import show_picture
from ui.state import settings

st.title(_("Gallery"))
outputs_dir = settings().outputs_dir

wanted = st.text_input(_("Find your picture by its 8-digit code"), max_chars=8)
if wanted:
    try:
        path = find_output(settings(), wanted)
    except InvalidInput:
        st.error(_("A picture code is 8 digits, e.g. 04718263."))
    except NotFound:
        st.warning(_("No picture with code {code}.").format(code=wanted.strip()))
    else:
        show_picture(path.stem, path)

if settings().mode == "kiosk":
    st.caption(_("At the kiosk, pictures are found by code only."))
    st.stop()

outputs = sorted(outputs_dir.glob("[0-9]" * 8 + ".png"), key=lambda p: p.stat().st_mtime, reverse=True)
if not outputs:
    st.info(_("No pictures yet. Make one on the *Make a picture* page."))
else:
    cols = st.columns(4)
    for i, path in enumerate(outputs[:48]):
        cols[i % 4].image(str(path), caption=path.stem)
