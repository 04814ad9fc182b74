"""What the studio keeps of a visitor, for how long and how to delete it, said plainly in their
language; and the deletion itself, so a visitor need not ask anybody."""

import streamlit as st

from engine.errors import InvalidInput, NotFound
from engine.forget import forget
from ui.i18n import _, error_text
from ui.state import settings

st.title(_("Your photos and privacy"))
st.markdown(_("""
- **Your photos** are used only to teach a small personal model what your face looks like.
  They are deleted as soon as that training ends, whether it succeeds or not.
- **Your personal model** and **your pictures** are kept under your 8-digit codes for
  {days} days, so you can make more pictures and fetch them on your phone; then they are
  deleted. They are not shown to other visitors: a picture is found only by its code, and the
  picture file does not carry your model's code.
- **Keep your codes to yourself**: anyone who has a code can use that model or see that picture.
- **To delete them now**, enter a code below: your model's code deletes the model and every
  picture made with it; a picture's code deletes that picture.
""").format(days=settings().retention_days))

st.subheader(_("Delete my data"))
with st.form("forget", clear_on_submit=True):  # a kiosk's next visitor must not see the code
    code = st.text_input(_("Your 8-digit code"), max_chars=8)
    sure = st.checkbox(_("I understand that this cannot be undone"))
    asked = st.form_submit_button(_("Delete my data"), type="primary")
if asked:
    if not sure:
        st.warning(_("Tick the box to confirm, then press the button again."))
    else:
        try:
            forget(settings(), code)
        except InvalidInput:
            st.error(_("A code is 8 digits, e.g. 04718263."))
        except NotFound:
            st.warning(_("Nothing is kept under code {code}.").format(code=code.strip()))
        except Exception as exc:
            st.error(error_text(exc))
        else:
            st.success(_("Done: everything kept under code {code} has been deleted.").format(code=code.strip()))
