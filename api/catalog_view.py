"""The catalog as a front-end draws its choice screens from it: places with their photos, the
poses a visitor may choose, and the accepted distances, ages and genders, each with its title
and description in the requested language and a thumbnail's URL. Read-only.

Places without photos and poses not ready at all three distances are left out, as the *Make a
picture* page leaves them out (`engine.pose_check.offerable_actions`). Thumbnails are the same
pictures the page shows (`engine.previews`), encoded once per catalog version and shared by
every client.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from typing import Callable

from PIL import Image

from engine import previews
from engine.catalog import SHOT_LABELS, Catalog, record_text
from engine.config import Settings, available_languages
from engine.pose_check import offerable_actions
from engine.poses import SHOT_TYPES
from engine.prompts import AGES, GENDERS

__all__ = ["catalog_answer", "Thumbnails", "catalog_version", "DEFAULT_SHOT"]

DEFAULT_SHOT = "MES"


def catalog_version(settings: Settings) -> int:
    path = settings.catalog_path
    return path.stat().st_mtime_ns if path.is_file() else 0


def catalog_answer(settings: Settings, lang: str, photo_url: Callable[[str, str], str],
                   pose_url: Callable[[str], str]) -> dict:
    cat = Catalog.open(settings)
    places = []
    for poi in cat.list_pois():
        photos = [{"name": i.name, "title": record_text(i, "title", lang),
                   "description": record_text(i, "description", lang), "width": i.width, "height": i.height,
                   "thumbnail_url": photo_url(poi.name, i.name)} for i in cat.list_poi_images(poi.name)]
        if photos:
            places.append({"name": poi.name, "title": record_text(poi, "title", lang),
                           "description": record_text(poi, "description", lang), "photos": photos})
    offered = set(offerable_actions(cat))
    poses = [{"name": a.name, "title": record_text(a, "title", lang),
              "description": record_text(a, "description", lang), "shot_types": cat.shot_types(a.name),
              "thumbnail_url": pose_url(a.name)} for a in cat.list_actions() if a.name in offered]
    return {"language": lang, "languages": list(available_languages()), "places": places, "poses": poses,
            "shot_types": [{"value": s, "label": SHOT_LABELS[s]} for s in SHOT_TYPES],
            "ages": [{"value": a, "label": a} for a in AGES],
            "genders": [{"value": g, "label": g} for g in GENDERS]}


def _encode(img: Image.Image, kind: str) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format=kind, **({"quality": 85} if kind == "JPEG" else {}))
    return buf.getvalue()


class Thumbnails:
    """Encoded thumbnails, by catalog version: a curator's edit changes the version, so a changed
    picture is drawn again. At most MAX_CACHED kept; the oldest drawn goes first."""

    MAX_CACHED = 512

    def __init__(self, settings: Settings):
        self.settings = settings
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _cached(self, key: tuple, draw: Callable[[], bytes]) -> bytes:
        key = (catalog_version(self.settings), *key)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        data = draw()
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > self.MAX_CACHED:
                self._cache.popitem(last=False)
        return data

    def photo(self, poi: str, image: str) -> bytes:
        """A place's photo as a JPEG thumbnail; NotFound names what is missing."""
        return self._cached(("photo", poi, image), lambda: _encode(
            previews.photo_thumbnail(Catalog.open(self.settings), poi, image), "JPEG"))

    def pose(self, action: str, shot: str | None) -> bytes:
        """A pose as a mannequin (PNG) at `shot`, or at its medium distance (else its first)."""
        cat = Catalog.open(self.settings)
        cat.get_action(action)  # NotFound for an unknown pose
        have = cat.shot_types(action)
        if shot is None:
            shot = DEFAULT_SHOT if DEFAULT_SHOT in have else (have[0] if have else DEFAULT_SHOT)
        return self._cached(("pose", action, shot), lambda: _encode(
            previews.pose_thumbnail(cat, action, shot), "PNG"))
