"""Cartolina studio — the Streamlit entry: navigation, mode, language and shared session defaults.

Pages stay thin: they render and call `engine`. Settings are read once per process. The
language switch (and in kiosk mode Start over and the idle timer) is drawn here, above every
page, and every visitor text goes through `_`.
"""

import streamlit as st

from ui.curator_access import editor_open, sign_in_offered
from ui.i18n import _, error_text, language_switch
from ui.kiosk import kiosk_chrome
from ui.state import init_session, settings

st.set_page_config(page_title="Cartolina studio", page_icon="🖼️", layout="wide")
init_session()
cfg = settings()


def welcome() -> None:
    st.title("Cartolina studio")
    st.write(_("Put yourself in the picture: five photos of your face, a place, a pose — "
               "and a postcard of you at the monument."))
    if cfg.uses_demo_models:
        st.info(_("Running on the **demo models**: tiny random networks that exercise every "
                  "step in seconds. Their pictures are noise, by design."), icon="ℹ️")
    c1, c2, c3 = st.columns(3)
    c1.page_link("app_pages/train.py", label=_("1. Give five photos of your face"),
                 icon=":material/photo_camera:")
    c2.page_link("app_pages/scene.py", label=_("2. Make a picture"), icon=":material/palette:")
    c3.page_link("app_pages/gallery.py", label=_("3. Find it by its code"), icon=":material/photo_library:")
    st.page_link("app_pages/privacy.py", label=_("What happens to your photos"), icon=":material/lock:")
    # No server path on a visitor page, in either mode: the data folder is on the Catalog page.


home = st.Page(welcome, title=_("Welcome"), icon=":material/home:", default=True)
pages = [
    home,
    st.Page("app_pages/train.py", title=_("Your face"), icon=":material/photo_camera:", url_path="train"),
    st.Page("app_pages/scene.py", title=_("Make a picture"), icon=":material/palette:", url_path="scene"),
    st.Page("app_pages/gallery.py", title=_("Gallery"), icon=":material/photo_library:", url_path="gallery"),
    st.Page("app_pages/privacy.py", title=_("Your photos and privacy"), icon=":material/lock:",
            url_path="privacy"),
]
if sign_in_offered():
    # At a kiosk the editor exists only for a session that gave the curators' password here.
    pages.append(st.Page("app_pages/staff.py", title="Staff", icon=":material/badge:", url_path="staff"))
if editor_open():
    pages.append(st.Page("app_pages/catalog.py", title="Catalog", icon=":material/inventory_2:", url_path="catalog"))

page = st.navigation(pages, position="top" if cfg.mode == "kiosk" else "sidebar")  # kiosk: no sidebar
left, right = st.columns([2, 1], vertical_alignment="center")
with right, st.container(horizontal_alignment="right"):  # wide enough for every language's name
    language_switch()
if cfg.mode == "kiosk":
    with left:
        kiosk_chrome(home)
try:
    page.run()
except Exception as exc:  # noqa: BLE001 - the page boundary: the log keeps the detail
    st.error(error_text(exc), icon=":material/error:")
