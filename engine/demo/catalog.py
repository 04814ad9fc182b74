"""The demo catalog: a few drawn places and a set of poses at the three shot distances.

Only what is missing is added (by name), so re-running never duplicates records and never
overwrites a curator's edits. Once a seeding has completed, a marker in the catalog stops
later runs (e.g. every `bin/setup`) from bringing back records a curator deleted on purpose;
`refill=True` adds the missing demo records anyway.
"""

from __future__ import annotations

from engine import poses
from engine.catalog import SHOT_TYPES, Catalog
from engine.catalog_edit import set_images_from_library
from engine.config import Settings
from engine.demo.scenes import SCENES, draw_scene

# POI name → (description, [(image name, scene kind, seed, size)])
DEMO_POIS = {
    "Piazza del Duomo": ("The cathedral square of an Italian town, with its fountain and palazzi.",
                         [("Fountain view", "piazza", 1, (768, 512)),
                          ("Portrait view", "piazza", 2, (512, 768))]),
    "Lungomare": ("The seaside promenade, beach and lighthouse.",
                  [("Beach", "seaside", 1, (768, 512))]),
    "Tempio di Nettuno": ("A Greek temple of the 5th century BC on its stepped base.",
                          [("Front steps", "monument", 1, (768, 512))]),
    "Passo alpino": ("An alpine pass with meadows and snowy peaks.",
                     [("Meadow path", "mountain", 1, (768, 512))]),
}


SEEDED_KEY = "demo_seeded"


def build_demo_catalog(settings: Settings, catalog: Catalog | None = None,
                       refill: bool = False) -> dict:
    cat = catalog or Catalog.open(settings)
    added: list[str] = []
    if cat.get_meta(SEEDED_KEY) and not refill:
        return {"added": added, "problems": cat.validate(), "seeded_before": True}
    pois = set(cat.poi_names())
    for poi_name, (poi_desc, shots) in DEMO_POIS.items():
        kinds = [s[1] for s in shots]
        if any(k not in SCENES for k in kinds):
            continue
        if poi_name not in pois:
            cat.add_poi(poi_name, poi_desc)
            added.append(f"poi {poi_name}")
        have = {i.name for i in cat.list_poi_images(poi_name)}
        for img_name, kind, seed, size in shots:
            if img_name in have:
                continue
            cat.add_poi_image(poi_name, img_name, draw_scene(kind, size, seed=seed),
                              SCENES[kind].description)
            added.append(f"poi image {poi_name}/{img_name}")
    actions = set(cat.action_names())
    for action in poses.ACTIONS.values():
        if action.name not in actions:
            cat.add_action(action.name, action.description)
            added.append(f"action {action.name}")
        have = set(cat.shot_types(action.name))
        missing = [shot for shot in SHOT_TYPES if shot not in have]
        set_images_from_library(cat, action.name, action.name, missing)
        added += [f"action image {action.name}/{shot}" for shot in missing]
    problems = cat.validate()
    if not problems:
        cat.set_meta(SEEDED_KEY, True)
    return {"added": added, "problems": problems, "seeded_before": False}

