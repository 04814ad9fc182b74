"""Data roots for tests."""

from __future__ import annotations

import shutil
from pathlib import Path


def fill_demo_home(home: Path, models_root: Path, catalog_root: Path) -> Path:
    """Give a data root the demo models (linked) and a private copy of the demo catalog."""
    (home / "models").mkdir(exist_ok=True)
    (home / "models" / "demo").symlink_to(models_root / "demo")
    shutil.copy2(catalog_root / "catalog_db.json", home / "catalog_db.json")
    shutil.copytree(catalog_root / "assets", home / "assets", dirs_exist_ok=True)
    for d in ("loras", "outputs", "jobs"):
        (home / d).mkdir(exist_ok=True)
    return home
