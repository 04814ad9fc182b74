"""What a visitor chooses by looking at: thumbnails of the places and poses, and the live
preview of the chosen pose on the chosen photo before anything is generated.

A visitor who may not read the pose's name still recognises a figure waving; and seeing where
the person will stand, and how big, before a two-minute wait saves a wasted picture.
"""

from __future__ import annotations

from PIL import Image, ImageOps

from engine.catalog import Catalog
from engine.catalog_edit import placement_preview

SILHOUETTE = (196, 204, 218)
FACE = (150, 160, 180)
PAPER = (246, 247, 250)


def photo_thumbnail(cat: Catalog, poi: str, image: str, size: int = 360) -> Image.Image:
    """A POI photo scaled to fit `size` (its proportions kept)."""
    photo = cat.open_asset(cat.get_poi_image(poi, image).file)
    photo.thumbnail((size, size), Image.LANCZOS)
    return photo


def pose_thumbnail(cat: Catalog, action: str, shot_type: str, size: int = 200) -> Image.Image:
    """The pose as a mannequin: the person's area as a pale silhouette, the face darker, the
    skeleton on top, cropped to the figure so every pose fills its tile the same way."""
    images = cat.load_action_images(cat.get_action_image(action, shot_type))
    body, face = images["pose_mask"].convert("L"), images["face_mask"].convert("L")
    canvas = Image.new("RGB", body.size, PAPER)
    canvas.paste(SILHOUETTE, mask=body)
    canvas.paste(FACE, mask=face)
    skeleton = images["pose"].convert("RGB")
    canvas.paste(skeleton, mask=skeleton.convert("L").point(lambda v: 255 if v > 0 else 0))
    box = body.getbbox() or (0, 0, *body.size)
    pad = max(4, (box[3] - box[1]) // 20)
    crop = canvas.crop((max(0, box[0] - pad), max(0, box[1] - pad),
                        min(body.width, box[2] + pad), min(body.height, box[3] + pad)))
    return ImageOps.pad(crop, (size, size), color=PAPER)


def scene_preview(cat: Catalog, poi: str, image: str, action: str, shot_type: str,
                  size: int = 720) -> Image.Image:
    """The chosen photo with the person's area (blue), the face (red) and the skeleton where
    the picture will paint them, at the chosen distance."""
    preview = placement_preview(cat, action, shot_type, poi, image, None)
    preview.thumbnail((size, size), Image.LANCZOS)
    return preview
