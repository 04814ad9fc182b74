"""Catalog editor for curators: places and their photos, poses and their images per distance,
the whole catalog to another kiosk and back."""

import streamlit as st

from ui.catalog_forms import show_note
from ui.catalog_places import places
from ui.catalog_poses import poses_section
from ui.catalog_transfer import transfer
from ui.curator_access import editor_open
from ui.state import catalog, settings

if not editor_open():
    st.stop()  # a kiosk session that has not signed in: Home.py does not even list this page

st.title("Catalog")
st.caption(f"Mode: **{settings().mode}** · data folder: `{settings().home}`")  # for curators, never visitors
cat = catalog()
show_note()

# A keyed radio rather than st.tabs: its choice survives the reruns every edit causes.
SECTIONS = ["Places (POIs)", "Poses (actions)", "Check", "Export / import"]
section = st.radio("Section", SECTIONS, horizontal=True, key="catalog_section", label_visibility="collapsed")

if section == SECTIONS[0]:
    places(cat)
elif section == SECTIONS[1]:
    poses_section(cat)
elif section == SECTIONS[2]:
    problems = cat.validate()
    if problems:
        st.error("Problems a visitor would run into:\n\n" + "\n".join(f"- {p}" for p in problems))
    else:
        st.success("Every photo, pose image and mask is in place, sizes match, masks are clean and "
                   "every face lies inside its person.")
else:
    transfer(cat)
