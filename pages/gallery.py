import streamlit as st

from ui.state import settings

st.title("Gallery")
outputs = sorted(settings().outputs_dir.glob("[0-9]" * 8 + ".png"),
                 key=lambda p: p.stat().st_mtime, reverse=True)
if not outputs:
    st.info("No pictures yet. Make one on the *Make a picture* page.")
else:
    cols = st.columns(4)
    for i, path in enumerate(outputs[:48]):
        cols[i % 4].image(str(path), caption=path.stem)
