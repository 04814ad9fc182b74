"""The whole catalog to another kiosk and back, in the catalog editor (`engine.catalog_archive`)."""

from __future__ import annotations

import io
from datetime import date

import streamlit as st

from engine.catalog import Catalog
from engine.catalog_archive import MAX_TOTAL_BYTES, export_catalog, import_catalog
from engine.errors import InvalidInput
from ui.catalog_forms import change_button, value

MODES = {"merge": "Merge: the archive's places and poses replace those with the same names; the others stay",
         "replace": "Replace: the archive's places and poses replace every one here"}


def transfer(cat: Catalog) -> None:
    st.subheader("Export")
    st.write("Every place, photo and pose with its images, in one zip file to import at another kiosk "
             "(here, or with `python -m engine catalog import FILE.zip`).")
    st.download_button("Download the catalog", data=lambda: _exported(cat), icon=":material/download:",
                       file_name=f"cartolina-catalog-{date.today().isoformat()}.zip", mime="application/zip")
    st.subheader("Import")
    st.write("The archive is checked whole (every record and every picture) before anything changes, "
             "and then lands whole.")
    st.file_uploader("Catalog archive (.zip)", type=["zip"], key="import_file",
                     max_upload_size=MAX_TOTAL_BYTES // (1024 * 1024))  # a whole catalog, not one photo
    mode = st.radio("How", list(MODES), format_func=MODES.get, key="import_mode")
    if mode == "replace":
        st.warning(f"Replaces the {len(cat.list_pois())} places and {len(cat.list_actions())} poses here.")
    change_button("Check and import", lambda: _import(cat, mode), lambda r: (
        f"Imported {r['pois']} places with {r['poi_images']} photos and {r['actions']} poses."),
        key="import_go")


def _exported(cat: Catalog) -> bytes:
    """Made when the button is pressed, not each time the page is drawn."""
    buf = io.BytesIO()
    export_catalog(cat, buf)
    return buf.getvalue()


def _import(cat: Catalog, mode: str) -> dict:
    upload = value("import_file")
    if upload is None:
        raise InvalidInput("archive", None, "a .zip made by Export", reason="choose an archive to upload")
    return import_catalog(cat, upload, mode)
