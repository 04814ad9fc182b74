"""Kiosk mode: the next visitor finds a clean screen.

A kiosk's tab stays open all day and visitors walk away mid-flow, so in kiosk mode every page
has a "Start over" button, and a screen left untouched for `CARTOLINA_IDLE_S` seconds goes back
to a clean welcome page by itself. The idle timer runs in the browser (a few lines of script
watching the visitor's touches and keys, and holding off while a picture is being made for
the visitor in front of it), so an idle kiosk sends the server nothing; going back
is a fresh page load, hence a fresh session: nothing of the last visitor stays on screen, while
their LoRA and pictures stay reachable by code. The controls are made touch-sized and the
navigation moves to the top; Streamlit's menu is already off (`client.toolbarMode = "minimal"`).
"""

from __future__ import annotations

import json

import streamlit as st

from ui.i18n import _
from ui.state import settings

_KIOSK_CSS = """
<style>
  [data-testid="stDecoration"], [data-testid="stStatusWidget"] { display: none !important; }
  .stButton button, .stFormSubmitButton button, .stDownloadButton button,
  [data-testid="stPageLink"] a { min-height: 3.2rem; font-size: 1.15rem; }
  input, textarea { font-size: 1.15rem !important; }
</style>
"""

# The timer must run in the page itself: the iframe Streamlit gives HTML is sandboxed against
# navigating the page, so it only plants this script in the page (once per page load) and
# sets the timeout. On timeout the page loads the welcome page anew (a new Streamlit session),
# in the studio's default language, so the URL carries no ?lang=.
_IDLE_JS = """
<script>
  const page = window.parent;
  page.__cartolinaIdle = {ms: %(idle_ms)d, home: %(home)s};
  if (!page.document.getElementById("cartolina-idle")) {
    const script = page.document.createElement("script");
    script.id = "cartolina-idle";
    script.textContent = `
      (() => {
        let timer = null;
        const restart = () => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            // a visitor watching their picture being made is not idle
            if (document.querySelector(".%(busy)s")) { restart(); return; }
            location.replace(location.origin + window.__cartolinaIdle.home);
          }, window.__cartolinaIdle.ms);
        };
        for (const kind of ["pointerdown", "pointermove", "keydown", "touchstart", "wheel", "input"]) {
          document.addEventListener(kind, restart, {passive: true, capture: true});
        }
        restart();
      })();`;
    page.document.head.appendChild(script);
  }
</script>
"""


BUSY_CLASS = "cartolina-busy"


def keep_awake() -> None:
    """Drawn while the visitor waits for something on screen (their picture in the line or
    being painted): the idle timer then waits too, instead of wiping the page under them."""
    st.html(f'<div class="{BUSY_CLASS}"></div>')


def _start_over() -> None:
    st.session_state.clear()  # widget states too, so the button itself reads False afterwards
    st.query_params.clear()
    st.session_state["_start_over"] = True


def kiosk_chrome(home_page) -> None:
    """Everything kiosk mode adds to every page: the Start over button, the idle timer and
    the CSS. `home_page` is the welcome page, where Start over lands."""
    st.html(_KIOSK_CSS)
    st.button(_("Start over"), icon=":material/restart_alt:", on_click=_start_over, key="start_over")
    if st.session_state.pop("_start_over", False):
        st.switch_page(home_page)
    base = st.get_option("server.baseUrlPath").strip("/")
    # A same-origin iframe (st.iframe runs HTML strings with scripts), so it can watch the page.
    st.iframe(_IDLE_JS % {"idle_ms": settings().idle_s * 1000, "busy": BUSY_CLASS,
                          "home": json.dumps(f"/{base}/" if base else "/")}, height=1)
