"""Privacy and retention: the served picture keeps the visitor's LoRA code to itself, face
photos never outlive their job, `forget` and `retention` delete exactly what they should, and a
visitor can delete their data from the privacy page, in their language."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine.config import load_settings
from engine.errors import InvalidInput
from engine.forget import forget
from engine.generate import read_output_meta, read_record, save_output
from engine.retention import sweep
from engine.training import jobs
from test_training_photos import face_photos
from tests.server import REPO

DAY = 86_400
SMALL = jobs.TrainOptions(total_steps=2, resolution=64, rank=4, checkpoint_every=2, random_masks=1, seed=5)


def engine_cli(*args, home, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, timeout=timeout,
                          env=dict(os.environ, CARTOLINA_HOME=str(home), **(env or {})),
                          capture_output=True, text=True)


def picture(settings, lora: str | None = None) -> str:
    """A picture saved as the generator saves one, asked for with `lora`."""
    meta = {"request": {"poi_name": "Lungomare", "selected_lora": lora}, "prompt": "a woman waving",
            "negative_prompt": "", "steps": 2, "guidance": 7.5, "seed": 7, "face_pass": lora is not None,
            "models": {"inpaint": "demo/sd-inpaint", "lora": lora}}
    return save_output(settings, Image.new("RGB", (64, 48), "teal"), meta)[0]


def lora(settings, code: str):
    folder = settings.loras_dir / code
    folder.mkdir(parents=True)
    (folder / "pytorch_lora_weights.safetensors").write_bytes(b"weights")
    (folder / "meta.json").write_text(json.dumps({"code": code}))
    return folder


def age(path, days: float) -> None:
    """Make a file, or a folder and what is in it, `days` old."""
    when = time.time() - days * DAY
    for p in ([*path.iterdir()] if path.is_dir() else []) + [path]:
        os.utime(p, (when, when))


def everything(home) -> set[str]:
    return {str(p.relative_to(home)) for p in home.rglob("*")
            if p.is_file() and not p.is_symlink() and "models" not in p.parts and not p.name.endswith(".lock")}


# --- what a served picture carries ---------------------------------------------------------------

def test_the_served_png_has_no_lora_code_and_the_private_record_has_it(settings):
    code = picture(settings, lora="04718263")
    with Image.open(settings.outputs_dir / f"{code}.png") as img:
        assert "04718263" not in json.dumps(img.text)
    public = read_output_meta(settings.outputs_dir / f"{code}.png")
    assert "selected_lora" not in public["request"] and "lora" not in public["models"]
    assert public["request"]["poi_name"] == "Lungomare" and public["face_pass"] is True
    record = read_record(settings, code)
    assert record["request"]["selected_lora"] == record["models"]["lora"] == "04718263"
    assert (settings.records_dir / f"{code}.json").is_file()
    assert settings.records_dir.parent == settings.outputs_dir.parent  # beside outputs/, not in it


# --- face photos never outlive their job ---------------------------------------------------------

def test_photos_a_killed_submit_left_half_built_go_at_the_next_reconcile(settings, demo_home):
    stage = settings.jobs_dir / ".new-04718263-x1y2z3"
    (stage / "photos").mkdir(parents=True)
    (stage / "photos" / "photo_0.png").write_bytes(face_photos()[0])
    done = jobs.submit(face_photos(), settings, SMALL, start=False)  # a submit that finished
    report = jobs.reconcile(settings)
    assert report["discarded"] == [stage.name] and not stage.exists()
    assert (settings.jobs_dir / done["code"] / "photos").is_dir()  # a whole job keeps its photos


# --- forget --------------------------------------------------------------------------------------

def test_forget_deletes_the_lora_its_job_and_every_picture_made_with_it_and_nothing_else(settings, demo_home):
    code = jobs.submit(face_photos(), settings, SMALL, start=False)["code"]  # still waiting
    lora(settings, code)
    mine = sorted([picture(settings, code), picture(settings, code)])
    others = [picture(settings, "11111111"), picture(settings)]
    other_job = jobs.submit(face_photos(), settings, SMALL, start=False)["code"]
    out = engine_cli("forget", code, "--json", home=demo_home)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"code": code, "job": True, "lora": True, "pictures": mine}
    assert not (settings.jobs_dir / code).exists() and not (settings.loras_dir / code).exists()
    for gone in mine:
        assert not (settings.outputs_dir / f"{gone}.png").exists()
        assert not (settings.records_dir / f"{gone}.json").exists()
    for kept in others:
        assert (settings.outputs_dir / f"{kept}.png").exists() and read_record(settings, kept)
    # the other visitor's job goes on: cancelling this one freed the slot, so it started
    assert jobs.cancel(settings, other_job)["state"] == "cancelled"
    again = engine_cli("forget", code, home=demo_home)
    assert again.returncode == 2 and "nothing is kept under code" in again.stderr


def test_forget_deletes_a_lora_a_killed_trainer_left_half_saved(settings):
    """`save_lora` builds loras/.tmp-<code>-*/ and renames it: killed in between, the weights
    and the face reference stay there, under the visitor's code all the same."""
    half = settings.loras_dir / ".tmp-04718263-x1y2z3"
    half.mkdir(parents=True)
    (half / "pytorch_lora_weights.safetensors").write_bytes(b"weights")
    other = lora(settings, "11111111")
    assert forget(settings, "04718263") == {"code": "04718263", "job": False, "lora": True, "pictures": []}
    assert not half.exists() and other.is_dir()


def test_forget_of_a_picture_code_deletes_that_picture(settings):
    keep, gone = picture(settings), picture(settings)
    assert forget(settings, gone) == {"code": gone, "job": False, "lora": False, "pictures": [gone]}
    assert everything(settings.home) == {f"outputs/{keep}.png", f"records/{keep}.json"}


def test_forget_of_a_training_that_runs_stops_its_trainer_before_deleting(settings, demo_home):
    code = jobs.submit(face_photos(), settings, jobs.TrainOptions(
        total_steps=100_000, resolution=64, rank=4, random_masks=1, seed=5))["code"]
    deadline = time.monotonic() + 180
    while (st := jobs.read_status(settings, code))["state"] != "running" or not st["step"]:
        assert time.monotonic() < deadline and st["state"] in ("queued", "running"), st
        time.sleep(0.1)
    trainer = psutil.Process(st["pid"])
    try:
        report = forget(settings, code)
        assert report["job"] is True and not (settings.jobs_dir / code).exists()
        assert not trainer.is_running() or trainer.status() == psutil.STATUS_ZOMBIE
        assert not (settings.loras_dir / code).exists()
    finally:
        if trainer.is_running():
            os.killpg(trainer.pid, 9)


def test_forget_refuses_a_malformed_code_naming_the_field(settings):
    with pytest.raises(InvalidInput) as err:
        forget(settings, "1234-678")
    assert err.value.field == "code"


# --- retention -----------------------------------------------------------------------------------

@pytest.fixture
def season(demo_home, monkeypatch):
    """A data root after a season with a 10-day retention: things 11 days old and 1 day old."""
    monkeypatch.setenv("CARTOLINA_RETENTION_DAYS", "10")
    settings = load_settings()
    made = {}

    def finished_job(days):
        code = jobs.submit(face_photos(), settings, SMALL, start=False)["code"]
        st = jobs.read_status(settings, code)
        jobs.write_status(settings.jobs_dir / code, dict(st, state="succeeded", finished_at=time.time() - days * DAY))
        jobs.cleanup_job(settings.jobs_dir / code)
        return code

    made["old job"], made["new job"] = finished_job(11), finished_job(1)
    made["old waiting job"] = jobs.submit(face_photos(), settings, SMALL, start=False)["code"]
    age(settings.jobs_dir / made["old waiting job"], 11)
    made["old broken job"] = jobs.submit(face_photos(), settings, SMALL, start=False)["code"]
    (settings.jobs_dir / made["old broken job"] / "status.json").write_text("[]")
    age(settings.jobs_dir / made["old broken job"], 11)
    for name, days in (("old lora", 11), ("new lora", 1)):
        made[name] = f"{days:08d}"
        age(lora(settings, made[name]), days)
    age(lora(settings, made["old waiting job"]), 11)  # a resumed trainer's: kept with its job
    for name, days in (("old half-saved lora", 1), ("new half-saved lora", 0)):  # a trainer killed mid-save
        made[name] = settings.loras_dir / f".tmp-{made['old lora']}-{name[:3]}"
        made[name].mkdir()
        (made[name] / "pytorch_lora_weights.safetensors").write_bytes(b"weights")
        age(made[name], days)
    for name, days in (("old picture", 11), ("new picture", 1), ("old record alone", 11)):
        made[name] = picture(settings, made["old lora"])
        age(settings.outputs_dir / f"{made[name]}.png", days)
        age(settings.records_dir / f"{made[name]}.json", days)
    (settings.outputs_dir / f"{made['old record alone']}.png").unlink()
    made["old temp"] = settings.outputs_dir / ".12345678.png.abc.tmp"
    made["new temp"] = settings.outputs_dir / ".12345678.png.def.tmp"
    made["old temp"].write_bytes(b"half a png")
    made["new temp"].write_bytes(b"a png being written")
    age(made["old temp"], 1)
    return settings, made


def test_retention_deletes_what_is_older_than_the_period_and_never_an_active_job(season):
    settings, made = season
    before = everything(settings.home)
    dry = sweep(settings, dry_run=True)
    assert everything(settings.home) == before  # a dry run deletes nothing
    report = sweep(settings)
    assert dry == dict(report, dry_run=True, cutoff=dry["cutoff"])
    assert report["days"] == 10 and report["dry_run"] is False
    assert sorted(report["jobs"]) == sorted([made["old job"], made["old broken job"]])
    assert report["kept_active"] == [made["old waiting job"]]
    assert report["loras"] == [made["old lora"]]
    assert report["pictures"] == sorted([made["old picture"], made["old record alone"]])
    assert report["temp_files"] == [str(made["old temp"]), str(made["old half-saved lora"])]
    left = everything(settings.home)
    for code in (made["old job"], made["old broken job"]):
        assert not (settings.jobs_dir / code).exists()
    assert {made["new job"], made["old waiting job"]} <= {p.name for p in settings.jobs_dir.iterdir()}
    assert {p.name for p in settings.loras_dir.iterdir()} == {made["new lora"], made["old waiting job"],
                                                              made["new half-saved lora"].name}
    assert {p for p in left if p.startswith(("outputs/", "records/"))} == {
        f"outputs/{made['new picture']}.png", f"records/{made['new picture']}.json",
        f"outputs/{made['new temp'].name}"}
    assert jobs.read_status(settings, made["old waiting job"])["state"] == "queued"


def test_retention_from_the_command_line_dry_run_and_days(season):
    settings, made = season
    before = everything(settings.home)
    out = engine_cli("retention", "--days", "0", "--dry-run", "--json", home=settings.home)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["days"] == 0 and report["dry_run"] is True and everything(settings.home) == before
    assert made["new picture"] in report["pictures"] and made["old waiting job"] not in report["jobs"]
    out = engine_cli("retention", "--dry-run", home=settings.home)
    assert out.returncode == 0 and out.stdout.startswith("retention 10 days: would delete")
    assert f"kept, still queued or running: {made['old waiting job']}" in out.stdout
    out = engine_cli("retention", "--days", "-1", home=settings.home)
    assert out.returncode == 2 and "days must be 0 or more" in out.stderr


@pytest.mark.parametrize("value", ["0", "abc", "4000"])
def test_the_retention_period_is_a_setting_with_accepted_values(value):
    assert load_settings({}).retention_days == 30
    assert load_settings({"CARTOLINA_RETENTION_DAYS": "7"}).retention_days == 7
    with pytest.raises(InvalidInput) as err:
        load_settings({"CARTOLINA_RETENTION_DAYS": value})
    assert err.value.field == "CARTOLINA_RETENTION_DAYS" and err.value.accepted == "an integer from 1 to 3650"


# --- the privacy page ----------------------------------------------------------------------------

PAGE = {
    "en": {"days": "for\n  12 days", "delete": "Delete my data", "sure": "I understand that this cannot be undone",
           "confirm": "Tick the box to confirm, then press the button again.",
           "done": "Done: everything kept under code {code} has been deleted.",
           "none": "Nothing is kept under code {code}.", "bad": "A code is 8 digits, e.g. 04718263."},
    "it": {"days": "di 8 cifre per 12 giorni", "delete": "Cancella i miei dati",
           "sure": "Ho capito che non si potrà tornare indietro",
           "confirm": "Spunta la casella per confermare, poi premi di nuovo il pulsante.",
           "done": "Fatto: tutto ciò che era conservato con il codice {code} è stato cancellato.",
           "none": "Non è conservato nulla con il codice {code}.",
           "bad": "Un codice è di 8 cifre, per esempio 04718263."},
}


def _page(lang: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app_pages" / "privacy.py"), default_timeout=60)
    at.query_params["lang"] = lang
    return at.run()


def _ask(at: AppTest, code: str, sure: bool) -> AppTest:
    at.text_input[0].input(code)
    if sure:
        at.checkbox[0].check()
    return at.button[0].click().run()


@pytest.mark.parametrize("lang", list(PAGE))
def test_a_visitor_deletes_their_data_from_the_privacy_page(settings, fresh_ui, monkeypatch, lang):
    monkeypatch.setenv("CARTOLINA_RETENTION_DAYS", "12")
    said = PAGE[lang]
    mine, other = picture(load_settings()), picture(load_settings())
    at = _page(lang)
    assert said["days"] in at.markdown[0].value
    assert at.get("subheader")[0].value == said["delete"] and at.checkbox[0].label == said["sure"]
    at = _ask(at, mine, sure=False)
    assert [w.value for w in at.warning] == [said["confirm"]]
    assert (settings.outputs_dir / f"{mine}.png").exists()
    at = _ask(at, mine, sure=True)
    assert [s.value for s in at.success] == [said["done"].format(code=mine)] and not at.exception
    assert not (settings.outputs_dir / f"{mine}.png").exists() and (settings.outputs_dir / f"{other}.png").exists()
    at = _ask(at, mine, sure=True)
    assert [w.value for w in at.warning] == [said["none"].format(code=mine)]
    at = _ask(at, "47-18", sure=True)
    assert [e.value for e in at.error] == [said["bad"]]
