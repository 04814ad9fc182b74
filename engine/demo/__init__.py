"""Demo content the project builds itself: tiny models and a small believable catalog.

Build machines have no route to a model hub, so every flow must run end to end on content
the project can make from nothing. `python -m engine demo` builds it, idempotently.
"""

from __future__ import annotations

from engine.config import Settings
from engine.diskfull import disk_full_guard


def build_demo(settings: Settings, *, models: bool = True, catalog: bool = True,
               force: bool = False, refill: bool = False, size: str = "demo") -> dict:
    with disk_full_guard(settings.home):
        return _build_demo(settings, models, catalog, force, refill, size)


def _build_demo(settings: Settings, models: bool, catalog: bool, force: bool, refill: bool,
                size: str) -> dict:
    settings.ensure_dirs()
    report: dict = {}
    if models:
        from engine.demo.models import build_demo_models
        built = build_demo_models(settings.models_dir, force=force, size=size)
        report["models"] = {k: v if isinstance(v, bool) else str(v) for k, v in built.items()}
    if catalog:
        from engine.demo.catalog import build_demo_catalog
        report["catalog"] = build_demo_catalog(settings, refill=refill)
    return report
