"""The places (POIs) and their photos, in the catalog editor."""

from __future__ import annotations

import streamlit as st

from engine.catalog import DESCRIPTION_MAX, NAME_MAX, POI, Catalog
from engine.catalog_edit import poi_deletion, poi_image_deletion
from engine.errors import InvalidInput
from ui.catalog_forms import (UPLOAD_TYPES, change_button, manage_row, pick, prompt_preview, record_key,
                              run_change, select_record, translation_fields, value)


def places(cat: Catalog) -> None:
    with st.expander("Add a place"):
        with st.form("add_poi", clear_on_submit=True):
            st.text_input("Name of the place", max_chars=NAME_MAX, key="new_poi_name")
            st.text_area("Description", max_chars=DESCRIPTION_MAX, key="new_poi_description")
            st.form_submit_button("Add place", on_click=run_change, args=(
                lambda: pick("edit_poi", cat.add_poi(value("new_poi_name"), value("new_poi_description"))),
                lambda rec: f"Added the place {rec.name}."))
    pois = cat.list_pois()
    if not pois:
        st.info("No places yet.")
        return
    names = [p.name for p in pois]
    poi = select_record("Place", pois, "edit_poi")
    key = record_key("poi", poi.name, poi.version)
    st.text_area("Description", value=poi.description, max_chars=DESCRIPTION_MAX, key=f"{key}:description")
    texts = translation_fields(poi, key)
    change_button("Save texts", lambda: cat.update_poi(poi.name, value(f"{key}:description"), translations=texts(),
                                                       expected_version=poi.version), "Saved.", key=f"{key}:save")
    manage_row(key=key, what="place", name=poi.name, names=names,
               rename=lambda new: pick("edit_poi", cat.rename_poi(poi.name, new, expected_version=poi.version)),
               reorder=cat.reorder_pois, goes=poi_deletion(cat, poi.name),
               delete=lambda: cat.delete_poi(poi.name, expected_version=poi.version))
    st.subheader("Photos")
    photos(cat, poi)


def photos(cat: Catalog, poi: POI) -> None:
    """The photos of one place: all at a glance, a form to add one, and one photo to edit. The
    add form comes before the editing one, so its file field is the page's first."""
    recs = cat.list_poi_images(poi.name)
    columns = st.columns(4)
    for i, rec in enumerate(recs):
        columns[i % 4].image(str(cat.asset_path(rec.file)), caption=f"{rec.name} · {rec.width}×{rec.height}")
    with st.form("add_photo", clear_on_submit=True):
        st.markdown("**Add a photo**")
        st.text_input("Photo name", max_chars=NAME_MAX, key="new_photo_name")
        st.text_area("Photo description", max_chars=DESCRIPTION_MAX, key="new_photo_description")
        st.file_uploader("Photo (JPEG, PNG or WebP)", type=UPLOAD_TYPES, key="new_photo_file")
        st.form_submit_button("Add photo", on_click=run_change, args=(
            lambda: pick("edit_photo", cat.add_poi_image(poi.name, value("new_photo_name"), _upload("new_photo_file"),
                                                         value("new_photo_description"))),
            lambda rec: f"Added the photo {rec.name}."))
    if not recs:
        return
    names = [r.name for r in recs]
    rec = select_record("Photo to edit", recs, "edit_photo")
    key = record_key(f"photo:{poi.name}", rec.name, rec.version)
    left, right = st.columns([2, 3])
    left.image(str(cat.asset_path(rec.file)), caption=f"{rec.name} · {rec.width}×{rec.height}")
    with right:
        described = st.text_area("Photo description (goes into the prompt)", value=rec.description,
                                 max_chars=DESCRIPTION_MAX, key=f"{key}:description")
        prompt_preview(cat, poi_description=described)
        texts = translation_fields(rec, key)
        change_button("Save", lambda: cat.update_poi_image(poi.name, rec.name, value(f"{key}:description"),
                                                           translations=texts(), expected_version=rec.version),
                      "Saved.", key=f"{key}:save")
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    c1.file_uploader("A new picture for this photo (keeps its name, texts and place)", type=UPLOAD_TYPES,
                     key=f"{key}:replacement")
    with c2:
        change_button("Replace picture", lambda: cat.replace_poi_image(
            poi.name, rec.name, _upload(f"{key}:replacement"), expected_version=rec.version),
            f"Replaced the picture of {rec.name}.", key=f"{key}:replace")
    manage_row(key=key, what="photo", name=rec.name, names=names,
               rename=lambda new: pick("edit_photo", cat.rename_poi_image(poi.name, rec.name, new,
                                                                         expected_version=rec.version)),
               reorder=lambda order: cat.reorder_poi_images(poi.name, order),
               goes=poi_image_deletion(poi.name, rec.name),
               delete=lambda: cat.delete_poi_image(poi.name, rec.name, expected_version=rec.version))


def _upload(key: str) -> bytes:
    upload = value(key)
    if upload is None:
        raise InvalidInput("poi_image file", None, "a JPEG, PNG or WebP file", reason="choose a photo file to upload")
    return upload.getvalue()
