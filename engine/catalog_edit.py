"""Curator operations that combine several catalog steps (kept out of the page)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from engine import poses
from engine.catalog import SHOT_LABELS, ActionImage, Catalog
from engine.prompts import Prompts, build_prompts


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


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def poi_deletion(cat: Catalog, name: str) -> str:
    """What deleting a POI takes with it, said before the curator confirms."""
    photos = cat.list_poi_images(name)
    if not photos:
        return f"Deletes the place {name} (it has no photos)."
    return (f"Deletes the place {name} and its {_count(len(photos), 'photo', 'photos')}: "
            f"{', '.join(p.name for p in photos)}.")


def poi_image_deletion(poi: str, name: str) -> str:
    return f"Deletes the photo {name} of {poi}, its picture and texts."


def action_deletion(cat: Catalog, name: str) -> str:
    shots = cat.shot_types(name)
    if not shots:
        return f"Deletes the pose {name} (it has no images yet)."
    return (f"Deletes the pose {name} and its pose image and masks at "
            f"{_count(len(shots), 'distance', 'distances')} "
            f"({', '.join(SHOT_LABELS[s] for s in shots)}).")


def sample_prompt(cat: Catalog, *, poi_description: str | None = None, action_description: str | None = None,
                  shot_type: str = "MES", tokenizer=None) -> Prompts:
    """The body pass's prompt for a sample visitor (an adult woman, no details), so a curator
    reads what a description becomes, cuts included. The half not given is the first photo's
    or pose's in the catalog."""
    if poi_description is None:
        photos = cat.list_poi_images()
        poi_description = photos[0].description if photos else ""
    if action_description is None:
        actions = cat.list_actions()
        action_description = actions[0].description if actions else ""
    return build_prompts(poi_description=poi_description, action_description=action_description,
                         shot_type=shot_type, age="adult", gender="woman", tokenizer=tokenizer)


def prompt_tokenizer(model: str | Path):
    """The tokenizer of the inpainting model at `model` (`Settings.resolve_model`) when that is
    a local folder (a few small files, no weights), so the preview cuts where CLIP will; None
    (words counted instead) for anything else."""
    folder = Path(model) / "tokenizer"
    if not folder.is_dir():
        return None
    from transformers import CLIPTokenizer
    try:
        return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError):
        return None
