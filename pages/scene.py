import streamlit as st

st.title("Make a picture")
st.warning("**Placeholder — coming with the generation engine (issue 3).** Here you will pick "
           "a place, a pose and a shot distance, and get a picture of yourself there.", icon="🚧")
