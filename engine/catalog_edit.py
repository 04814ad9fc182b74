"""Curator operations that combine several catalog steps (kept out of the page)."""

from __future__ import annotations

from PIL import Image

from engine import poses
from engine.catalog import ActionImage, Catalog


def set_images_from_library(cat: Catalog, name: str, template: str,
                            shots=poses.SHOT_TYPES) -> list[ActionImage]:
    """Draw an action's pose image and masks for `shots` from one of the built-in poses,
    keeping the keypoints so the skeleton can be redrawn at any POI's resolution."""
    base = poses.get_action(template)
    made = []
    for shot in shots:
        built = poses.build_action_images(base, shot)
        kps = [None if p is None else [round(float(p[0]), 2), round(float(p[1]), 2)] for p in built["keypoints"]]
        made.append(cat.set_action_image(name, shot, built["pose"], built["pose_mask"], built["face_mask"],
                                         keypoints=kps))
    return made


def add_action_from_library(cat: Catalog, name: str, description: str, template: str) -> list[ActionImage]:
    """A new action whose three shot distances are drawn from one of the built-in poses."""
    cat.add_action(name, description or poses.get_action(template).description)
    return set_images_from_library(cat, name, template)


def placement_preview(cat: Catalog, action: str, shot_type: str, poi: str, poi_image: str,
                      placement: dict | None) -> Image.Image:
    """The POI photo with the action placed as `placement` (None: the stored or default one)."""
    rec = cat.get_action_image(action, shot_type)
    poi_rec = cat.get_poi_image(poi, poi_image)
    photo = cat.open_asset(poi_rec.file)
    images = cat.load_action_images(rec)
    chosen = placement if placement is not None else rec.placement
    where = poses.placement_from_dict(chosen, poses.DEFAULT_PLACEMENT[rec.shot_type])
    return poses.preview_on_poi(photo, poses.compose_on_poi(photo.size, images, where))
