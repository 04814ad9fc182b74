"""Cartolina studio engine: everything but the UI.

`engine` never imports Streamlit, so the command line, the trainer process and the tests
use exactly the code the pages use.
"""

__version__ = "0.1.0"
