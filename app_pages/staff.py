"""Staff sign-in at a kiosk: the curators' password opens the catalog editor for this session."""

import streamlit as st

from ui.curator_access import SIGNED_IN, editor_open, sign_in

st.title("Staff")
if editor_open():
    st.success("Signed in: the catalog editor is open in this session until Start over or Sign out.")
    st.page_link("app_pages/catalog.py", label="Open the catalog editor", icon=":material/inventory_2:")
    if st.button("Sign out"):
        st.session_state.pop(SIGNED_IN, None)
        st.rerun()
else:
    if note := st.session_state.pop("staff_note", None):
        st.error(note)
    with st.form("staff_sign_in", clear_on_submit=True):
        st.text_input("Curator password", type="password", key="staff_password")
        st.form_submit_button("Sign in", on_click=lambda: sign_in(st.session_state.get("staff_password") or ""))
