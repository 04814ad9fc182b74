"""Shared fixtures: every test runs on a temporary data root, never on the repo's files.

The demo models are built once per test session (they take a few seconds) and linked into
each test's data root; the demo catalog is built once and copied.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from tests.homes import fill_demo_home

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# The trainer's likeness validation paints the held-back face at every checkpoint: 20 steps
# each by default. On the demo models (which paint no face) the suite's trainings, some with a
# checkpoint every 2 or 3 steps, only need the validation to run, not to be good: 2 steps, for
# this process and every server, worker and trainer it starts. tests/test_likeness.py checks
# the default and the choice of checkpoint on real faces.
os.environ.setdefault("CARTOLINA_FACE_VALIDATION_STEPS", "2")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty data root, set as CARTOLINA_HOME for the test and its child processes."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("CARTOLINA_HOME", str(root))
    return root


@pytest.fixture
def settings(home):
    from engine.config import load_settings
    s = load_settings()
    s.ensure_dirs()
    return s


@pytest.fixture(scope="session")
def demo_models_root(tmp_path_factory) -> Path:
    from engine.demo.models import build_demo_models
    models = tmp_path_factory.mktemp("models")
    build_demo_models(models)
    return models


@pytest.fixture(scope="session")
def demo_catalog_root(tmp_path_factory) -> Path:
    from engine.config import load_settings
    from engine.demo.catalog import build_demo_catalog
    root = tmp_path_factory.mktemp("demo-catalog")
    s = load_settings({"CARTOLINA_HOME": str(root)})
    s.ensure_dirs()
    report = build_demo_catalog(s)
    assert report["problems"] == []
    return root


@pytest.fixture
def demo_home(home, demo_models_root, demo_catalog_root) -> Path:
    return fill_demo_home(home, demo_models_root, demo_catalog_root)


@pytest.fixture
def fresh_ui():
    """AppTests run the pages in this process, where Streamlit caches the settings: read them
    again from this test's environment, and leave none behind for the next test."""
    from ui.state import settings
    settings.clear()
    yield
    settings.clear()


@pytest.fixture(scope="session")
def faces(tmp_path_factory):
    """Five slightly different shots of one face, as a phone would upload them."""
    from skimage import data
    folder = tmp_path_factory.mktemp("faces")
    astronaut = Image.fromarray(data.astronaut())
    paths = []
    for i in range(5):
        crop = astronaut.crop((20 + 8 * i, 0 + 4 * i, 420 + 8 * i, 400 + 4 * i))
        path = folder / f"me-{i}.jpg"
        crop.save(path, quality=92)
        paths.append(path)
    return paths
