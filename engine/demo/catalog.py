"""The demo catalog: a few drawn places and a set of poses at the three shot distances.

Only what is missing is added (by name), so re-running never duplicates records and never
overwrites a curator's edits. Once a seeding has completed, a marker in the catalog stops
later runs (e.g. every `bin/setup`) from bringing back records a curator deleted on purpose;
`refill=True` adds the missing demo records anyway. Italian texts go the same way: to demo
records that have none for Italian, never over a curator's.
"""

from __future__ import annotations

from functools import partial

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


_PIAZZA_IT = ("Una soleggiata piazza italiana lastricata in pietra, con una fontana e il suo obelisco, "
              "palazzi ocra e terracotta con persiane verdi e portici, e un campanile sotto il cielo "
              "azzurro.")

# What an Italian visitor reads, as (title, description); the names stay the keys in every
# language, and the English descriptions stay the prompt's.
ITALIAN_POIS = {
    "Piazza del Duomo": ("Piazza del Duomo", "La piazza della cattedrale di una cittadina italiana, "
                                             "con la sua fontana e i suoi palazzi."),
    "Lungomare": ("Lungomare", "La passeggiata sul mare, la spiaggia e il faro."),
    "Tempio di Nettuno": ("Tempio di Nettuno", "Un tempio greco del V secolo a.C. sul suo basamento "
                                               "a gradoni."),
    "Passo alpino": ("Passo alpino", "Un passo alpino tra prati e cime innevate."),
}
ITALIAN_POI_IMAGES = {
    ("Piazza del Duomo", "Fountain view"): ("Vista sulla fontana", _PIAZZA_IT),
    ("Piazza del Duomo", "Portrait view"): ("Vista verticale", _PIAZZA_IT),
    ("Lungomare", "Beach"): ("Spiaggia", "Un lungomare mediterraneo in un pomeriggio d'estate, con una "
                             "passerella di legno sulla sabbia dorata, ombrelloni a strisce, il mare "
                             "turchese, un faro su un promontorio verde e nuvole bianche."),
    ("Tempio di Nettuno", "Front steps"): ("La scalinata", "Un antico tempio dorico di pietra dorata su "
                                           "un basamento a gradoni, con colonnato e frontone, cipressi "
                                           "e pini a ombrello, un piazzale lastricato e un cielo limpido."),
    ("Passo alpino", "Meadow path"): ("Sentiero nel prato", "Un prato alpino fiorito e un sentiero "
                                      "sterrato verso cime rocciose innevate, un bosco scuro di abeti "
                                      "e un cielo azzurro intenso."),
}
ITALIAN_ACTIONS = {
    "standing": ("In piedi", "Posa in piedi e rilassata, con le braccia lungo i fianchi, rivolta "
                             "verso la fotocamera."),
    "waving": ("Saluto", "Un saluto alla fotocamera con una mano alzata accanto alla testa."),
    "pointing": ("Indicare", "Un braccio teso a indicare qualcosa di lato, per mostrare il panorama."),
    "sitting": ("Posa seduta", "Posa seduta su un muretto o una panchina, con le mani appoggiate "
                               "sulle ginocchia."),
    "arms_crossed": ("Braccia conserte", "Posa in piedi e sicura, con le braccia incrociate sul petto."),
    "selfie": ("Selfie", "Uno scatto a sé stessi, con lo smartphone tenuto a braccio teso davanti "
                         "al viso, sorridendo."),
    "hands_on_hips": ("Mani sui fianchi", "Posa in piedi e fiera, con le mani sui fianchi e i gomiti "
                                          "in fuori."),
    "arms_raised": ("Braccia alzate", "Festa a braccia alzate a V, esultando di gioia."),
}

SEEDED_KEY = "demo_seeded"


def build_demo_catalog(settings: Settings, catalog: Catalog | None = None,
                       refill: bool = False) -> dict:
    cat = catalog or Catalog.open(settings)
    added: list[str] = []
    if cat.get_meta(SEEDED_KEY) and not refill:
        return {"added": added, "problems": cat.validate(), "seeded_before": True}
    pois = set(cat.poi_names())
    # Added by name, so visitors see the demo's lists alphabetically until a curator orders them.
    for poi_name, (poi_desc, shots) in sorted(DEMO_POIS.items()):
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
    for action in sorted(poses.ACTIONS.values(), key=lambda a: a.name):
        if action.name not in actions:
            cat.add_action(action.name, action.description)
            added.append(f"action {action.name}")
        have = set(cat.shot_types(action.name))
        missing = [shot for shot in SHOT_TYPES if shot not in have]
        set_images_from_library(cat, action.name, action.name, missing)
        added += [f"action image {action.name}/{shot}" for shot in missing]
    added += _add_italian(cat)
    problems = cat.validate()
    if not problems:
        cat.set_meta(SEEDED_KEY, True)
    return {"added": added, "problems": problems, "seeded_before": False}


def _add_italian(cat: Catalog) -> list[str]:
    """Italian texts for the demo records that have none yet: a curator's own stay."""
    added = []

    def add(record, texts, update, label: str) -> None:
        if texts and "it" not in record.translations:
            update(translations={"it": {"title": texts[0], "description": texts[1]}})
            added.append(f"Italian texts of {label}")

    for poi in cat.list_pois():
        add(poi, ITALIAN_POIS.get(poi.name), partial(cat.update_poi, poi.name), f"poi {poi.name}")
    for img in cat.list_poi_images():
        add(img, ITALIAN_POI_IMAGES.get((img.poi, img.name)), partial(cat.update_poi_image, img.poi, img.name),
            f"poi image {img.poi}/{img.name}")
    for action in cat.list_actions():
        add(action, ITALIAN_ACTIONS.get(action.name), partial(cat.update_action, action.name),
            f"action {action.name}")
    return added
