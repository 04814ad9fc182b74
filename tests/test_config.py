"""Settings come from the environment, in one place, with clear errors."""

import pytest

from engine.config import REPO_ROOT, load_settings
from engine.errors import InvalidInput


def test_defaults_put_everything_under_the_repo_root():
    s = load_settings({})
    assert s.home == REPO_ROOT
    assert s.catalog_path == REPO_ROOT / "catalog_db.json"
    assert (s.device, s.mode, s.steps_per_photo, s.photos_min) == ("auto", "studio", 300, 5)
    assert s.uses_demo_models


def test_data_root_moves_every_folder(tmp_path):
    s = load_settings({"CARTOLINA_HOME": str(tmp_path)})
    for p in (s.catalog_path, s.assets_dir, s.loras_dir, s.outputs_dir, s.models_dir, s.jobs_dir):
        assert tmp_path in p.parents


@pytest.mark.parametrize("var,value,accepted", [
    ("CARTOLINA_DEVICE", "tpu", "auto, cpu, cuda, mps"),
    ("CARTOLINA_MODE", "museum", "studio, kiosk"),
    ("CARTOLINA_DTYPE", "int8", "auto, float32, float16, bfloat16"),
    ("CARTOLINA_STEPS_PER_PHOTO", "many", "an integer from 1 to 100000"),
    ("CARTOLINA_CPU_OFFLOAD", "maybe", "1/0, true/false, yes/no, on/off"),
    ("CARTOLINA_POLL_S", "0", "an integer from 1 to 60"),
])
def test_bad_settings_name_the_variable_and_accepted_values(var, value, accepted):
    with pytest.raises(InvalidInput) as err:
        load_settings({var: value})
    assert err.value.field == var and err.value.accepted == accepted


def test_model_locations_resolve_under_models_unless_absolute(tmp_path):
    s = load_settings({"CARTOLINA_HOME": str(tmp_path), "CARTOLINA_INPAINT_MODEL": "/opt/sd"})
    assert s.resolve_model(s.inpaint_model) == "/opt/sd"
    assert s.resolve_model("demo/sd-inpaint") == str(tmp_path / "models" / "demo" / "sd-inpaint")
    # hub ids are only passed through when the hub is allowed
    assert s.resolve_model("org/model") == str(tmp_path / "models" / "org" / "model")
    online = load_settings({"CARTOLINA_HOME": str(tmp_path), "CARTOLINA_ALLOW_HUB": "1"})
    assert online.resolve_model("org/model") == "org/model"
