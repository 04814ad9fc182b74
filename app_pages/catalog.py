import streamlit as st

from ui.state import catalog

st.title("Catalog")
st.caption("Read-only for now — **the editor (add, edit, delete) is a placeholder, coming next.**")
cat = catalog()
problems = cat.validate()
if problems:
    st.error("The catalog has problems:\n\n" + "\n".join(f"- {p}" for p in problems))

pois_tab, actions_tab = st.tabs(["Places (POIs)", "Poses (actions)"])
with pois_tab:
    for poi in cat.list_pois():
        st.subheader(poi.name)
        st.write(poi.description)
        imgs = cat.list_poi_images(poi.name)
        cols = st.columns(max(1, len(imgs)))
        for col, rec in zip(cols, imgs):
            col.image(str(cat.asset_path(rec.file)), caption=f"{rec.name} — {rec.description}")
with actions_tab:
    for action in cat.list_actions():
        st.subheader(action.name)
        st.write(action.description)
        recs = cat.list_action_images(action.name)
        cols = st.columns(max(1, len(recs)))
        for col, rec in zip(cols, recs):
            col.image(str(cat.asset_path(rec.pose_image)), caption=rec.shot_type)
