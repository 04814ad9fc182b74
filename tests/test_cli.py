"""`python -m engine`: demo and catalog commands, --help everywhere, exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run(*args, env=None, home=None):
    full_env = dict(os.environ, **(env or {}))
    if home is not None:
        full_env["CARTOLINA_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=300)


def test_demo_builds_everything_then_is_idempotent(home):
    first = run("demo", "--json", home=home)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["models"]["built"] is True
    assert report["catalog"]["problems"] == [] and len(report["catalog"]["added"]) >= 3 + 6 + 18
    assert (home / "models" / "demo" / "sd-inpaint" / "model_index.json").is_file()
    before = (home / "catalog_db.json").read_bytes()
    second = run("demo", "--json", home=home)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["models"]["built"] is False and again["catalog"]["added"] == []
    assert (home / "catalog_db.json").read_bytes() == before


def test_catalog_json_has_the_promised_shape(demo_home):
    out = run("catalog", "--json", home=demo_home)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert len(data["pois"]) >= 3 and len(data["actions"]) >= 6
    for poi in data["pois"]:
        assert {"name", "description", "images"} <= poi.keys() and poi["images"]
        for img in poi["images"]:
            assert {"name", "description", "width", "height"} <= img.keys()
    for action in data["actions"]:
        assert {"name", "description", "shot_types"} <= action.keys()
        assert action["shot_types"] == ["CLS", "MES", "FUS"]


def test_catalog_validate_passes_on_the_demo_catalog(demo_home):
    out = run("catalog", "--validate", "--json", home=demo_home)
    assert out.returncode == 0 and json.loads(out.stdout)["problems"] == []


@pytest.mark.parametrize("command", [[], ["demo"], ["catalog"], ["generate"], ["pick"], ["train"], ["jobs"], ["job"], ["cancel"],
                                     ["forget"], ["retention"]])
def test_every_command_has_help(command):
    out = run(*command, "--help")
    assert out.returncode == 0 and "usage:" in out.stdout


def test_unknown_option_exits_2():
    out = run("catalog", "--colour")
    assert out.returncode == 2 and "unrecognized arguments" in out.stderr


def test_bad_setting_exits_2_naming_the_variable(home):
    out = run("catalog", env={"CARTOLINA_MODE": "museum"}, home=home)
    assert out.returncode == 2
    assert "CARTOLINA_MODE" in out.stderr and "studio, kiosk" in out.stderr


GEN = ["generate", "--poi", "Lungomare", "--poi-image", "Beach", "--action", "standing",
       "--shot", "FUS", "--age", "young", "--gender", "man", "--details", "a straw hat",
       "--seed", "3", "--steps", "2"]


def test_generate_json_prints_the_promised_fields(demo_home):
    out = run(*GEN, "--json", home=demo_home)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"code", "path", "action_name", "face_pass", "prompt", "seed", "timings_s"} <= data.keys()
    assert Path(data["path"]) == demo_home / "outputs" / f"{data['code']}.png"
    assert Path(data["path"]).is_file() and data["face_pass"] is False and data["seed"] == 3
    assert "wearing a straw hat" in data["prompt"] and data["timings_s"]["body"] > 0


def test_generate_bad_input_exits_2_naming_the_field(demo_home):
    out = run(*[("teen" if a == "young" else a) for a in GEN], home=demo_home)
    assert out.returncode == 2 and "age" in out.stderr and "young, adult, old" in out.stderr
    assert list((demo_home / "outputs").glob("*.png")) == []


def test_pick_json_ranks_every_action(demo_home):
    out = run("pick", "taking a photo of myself", "--json", home=demo_home)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert data["ranking"][0]["action_name"] == "selfie" and len(data["ranking"]) >= 6
