"""What the studio keeps of a visitor, and for how long: said plainly, in their language."""

import streamlit as st

from ui.i18n import _

st.title(_("Your photos and privacy"))
st.markdown(_("""
- **Your photos** are used only to teach a small personal model what your face looks like.
  They are deleted as soon as that training ends, whether it succeeds or not.
- **Your personal model** and **your pictures** are kept under your 8-digit codes, so you
  can make more pictures later and fetch them on your phone. They are not shown to other
  visitors: a picture is found only by its code.
- **Keep your codes to yourself**: anyone who has a code can use that model or see that picture.
- To have your model and pictures deleted, ask the staff and give them your codes.
"""))
