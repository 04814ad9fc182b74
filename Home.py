"""Cartolina studio — the Streamlit entry: navigation, mode and shared session defaults.

Pages stay thin: they render and call `engine`. Settings are read once per process.
"""

import streamlit as st

from ui.state import init_session, settings

st.set_page_config(page_title="Cartolina studio", page_icon="🖼️", layout="wide")
init_session()
cfg = settings()


def welcome() -> None:
    st.title("Cartolina studio")
    st.write("Put yourself in the picture: five photos of your face, a place, a pose — "
             "and a postcard of you at the monument.")
    if cfg.uses_demo_models:
        st.info("Running on the **demo models**: tiny random networks that exercise every "
                "step in seconds. Their pictures are noise, by design. Point "
                "`CARTOLINA_INPAINT_MODEL` / `CARTOLINA_CONTROLNET_MODEL` at real models "
                "for real pictures.", icon="ℹ️")
    c1, c2, c3 = st.columns(3)
    c1.page_link("app_pages/train.py", label="1. Give five photos of your face", icon=":material/photo_camera:")
    c2.page_link("app_pages/scene.py", label="2. Make a picture", icon=":material/palette:")
    c3.page_link("app_pages/gallery.py", label="3. Find it by its code", icon=":material/photo_library:")
    st.caption(f"Mode: **{cfg.mode}** · data folder: `{cfg.home}`")


pages = [
    st.Page(welcome, title="Welcome", icon=":material/home:", default=True),
    st.Page("app_pages/train.py", title="Your face", icon=":material/photo_camera:", url_path="train"),
    st.Page("app_pages/scene.py", title="Make a picture", icon=":material/palette:", url_path="scene"),
    st.Page("app_pages/gallery.py", title="Gallery", icon=":material/photo_library:", url_path="gallery"),
]
if cfg.mode == "studio":
    # Curators edit the catalog; a kiosk facing visitors does not show the editor.
    pages.append(st.Page("app_pages/catalog.py", title="Catalog", icon=":material/inventory_2:", url_path="catalog"))

st.navigation(pages).run()
