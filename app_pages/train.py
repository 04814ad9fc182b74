import streamlit as st

st.title("Your face")
st.warning("**Placeholder — coming with the LoRA training work (issue 4).** Here you will "
           "give five photos of your face and receive an 8-digit code for your personal model.",
           icon="🚧")
