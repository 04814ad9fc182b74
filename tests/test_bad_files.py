"""Bad files never take the studio down: a damaged catalog, a damaged job, a folder given as a
photo. Each gets a message naming the file, what is wrong and what to do; none is silently taken
as empty, and none stops the rest (docs/reliability.md lists them all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from engine.catalog import Catalog
from engine.catalog_store import backup_path
from engine.errors import CatalogError, Conflict
from engine.training import jobs
from test_training_photos import face_photos
from tests.server import REPO

SMALL = jobs.TrainOptions(total_steps=2, resolution=64, rank=4, checkpoint_every=2, random_masks=1, seed=5)


def engine_cli(*args, home, timeout=240):
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, timeout=timeout,
                          env=dict(os.environ, CARTOLINA_HOME=str(home)), capture_output=True, text=True)


# --- the catalog file ----------------------------------------------------------------------------

BAD_CATALOGS = {
    "not UTF-8": (b'{"pois": {"1": {"name": "Caf\xe9"}}}', "is not UTF-8 text"),
    "empty": (b"", "is empty"),
    "blank": (b" \n\n", "is empty"),
    "null": (b"null", "holds `null`, not a catalog"),
    "a list": (b"[]", "holds a list ([]), not a catalog"),
    "a string": (b'"pois"', "holds text (\"pois\"), not a catalog"),
    "truncated": (b'{"pois": {"1": {"name": ', "is not valid JSON"),
    "a table that is a list": (b'{"pois": []}', "table 'pois' is [], not an object of records"),
    "a record that is a string": (b'{"pois": {"1": "Lungomare"}}', "pois record 1 is \"Lungomare\", not an object"),
    "a record without its name": (b'{"pois": {"1": {"description": "x"}}}', "pois record 1 has no 'name'"),
    "a width that is text": (b'{"poi_images": {"1": {"poi": "A", "name": "B", "file": "poi/x.png", '
                             b'"width": "wide"}}}', "poi_images record 1: 'width' must be an integer"),
    "translations that are text": (b'{"actions": {"1": {"name": "wave", "translations": {"it": "ciao"}}}}',
                                   "actions record 1: translations 'it' must map title/description to text"),
    "a keypoint that is text": (b'{"action_images": {"1": {"action": "a", "shot_type": "CLS", "pose_image": "p",'
                                b' "pose_mask": "m", "face_mask": "f", "keypoints": ["x"]}}}',
                                "action_images record 1: keypoint \"x\" is not null or [x, y]"),
}


@pytest.mark.parametrize("case", list(BAD_CATALOGS))
def test_a_catalog_file_that_is_not_a_catalog_is_refused_naming_the_file_and_the_way_back(case, tmp_path):
    raw, said = BAD_CATALOGS[case]
    path = tmp_path / "catalog_db.json"
    path.write_bytes(raw)
    cat = Catalog(path, tmp_path / "assets")
    for attempt in (cat.list_pois, lambda: cat.add_poi("Lungomare"), cat.summary):
        with pytest.raises(CatalogError) as err:
            attempt()
        assert str(path) in str(err.value) and said in str(err.value)
        assert "python -m engine catalog restore" in str(err.value)
    assert path.read_bytes() == raw  # never taken as empty, never overwritten


@pytest.mark.parametrize("case", ["empty", "null", "a record without its name"])
def test_demo_does_not_overwrite_a_damaged_catalog_and_says_why_without_a_traceback(case, home):
    raw, said = BAD_CATALOGS[case]
    (home / "catalog_db.json").write_bytes(raw)
    out = engine_cli("demo", "--no-models", home=home)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert said in out.stderr and "catalog restore" in out.stderr
    assert (home / "catalog_db.json").read_bytes() == raw


def test_each_edit_keeps_the_catalog_it_replaced_and_restore_puts_it_back(home):
    path = home / "catalog_db.json"
    cat = Catalog(path, home / "assets")
    cat.add_poi("Lungomare", "the seaside promenade")
    assert not backup_path(path).exists()  # nothing to keep before the first catalog
    cat.add_poi("Piazza")
    backup = json.loads(backup_path(path).read_text())["pois"]
    assert [(r["name"], r["description"]) for r in backup.values()] == [("Lungomare", "the seaside promenade")]
    path.write_bytes(b"\x00\x00\x00")  # a disk error, a bad hand edit
    with pytest.raises(CatalogError):
        cat.add_poi("Colosseo")  # an edit on a damaged catalog writes nothing, backup included
    assert backup_path(path).read_text().count("Lungomare") == 1
    out = engine_cli("catalog", "restore", home=home)
    assert out.returncode == 0, out.stderr
    assert Catalog(path, home / "assets").poi_names() == ["Lungomare"]  # as before the last edit
    kept = list(home.glob("catalog_db.json.replaced-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"\x00\x00\x00"  # the damaged one is kept too


def test_restore_without_a_usable_backup_says_so(home):
    out = engine_cli("catalog", "restore", home=home)
    assert out.returncode == 1 and "no backup to restore" in out.stderr and "Traceback" not in out.stderr
    backup_path(home / "catalog_db.json").write_text("null")
    out = engine_cli("catalog", "restore", "--json", home=home)
    assert out.returncode == 1 and "catalog_db.json.bak holds `null`" in out.stderr


def test_the_next_edit_removes_temp_files_a_killed_writer_left_but_not_a_live_writers(tmp_path):
    path = tmp_path / "catalog_db.json"
    cat = Catalog(path, tmp_path / "assets")
    cat.add_poi("Lungomare")
    left = [tmp_path / f".catalog_db.json.{i}abc.tmp" for i in range(3)]
    for p in left:
        p.write_text('{"pois": {"1": {"na')
        os.utime(p, (time.time() - 120, time.time() - 120))
    fresh = tmp_path / ".catalog_db.json.live.tmp"
    fresh.write_text("{")
    cat.add_poi("Piazza")
    assert not any(p.exists() for p in left) and fresh.exists()


# --- training jobs -------------------------------------------------------------------------------

def _queued(settings, n: int) -> list[str]:
    return [jobs.submit(face_photos(), settings, SMALL, start=False)["code"] for _ in range(n)]


def _spoil_status(job, change):
    st = json.loads((job / "status.json").read_text())
    (job / "status.json").write_text(json.dumps(change(st)))


BAD_JOB_FILES = {
    "status truncated": ("status.json", lambda job: (job / "status.json").write_text(
        (job / "status.json").read_text()[:30]), "is not valid JSON"),
    "status garbage": ("status.json", lambda job: (job / "status.json").write_bytes(b"\x89\xff\x00garbage"),
                       "cannot be read"),
    "status {}": ("status.json", lambda job: (job / "status.json").write_text("{}"), "has no 'code'"),
    "status []": ("status.json", lambda job: (job / "status.json").write_text("[]"), "holds list"),
    "status heartbeat_at as text": ("status.json", lambda job: _spoil_status(
        job, lambda st: dict(st, state="running", pid=os.getpid(), heartbeat_at="yesterday")),
        "'heartbeat_at' is \"yesterday\", the wrong type"),
    "status with an unknown state": ("status.json", lambda job: _spoil_status(
        job, lambda st: dict(st, state="paused")), "'state' is 'paused'"),
    "status missing": ("status.json", lambda job: (job / "status.json").unlink(), "is missing"),
    "spec truncated": ("spec.json", lambda job: (job / "spec.json").write_text('{"code": "'), "is not valid JSON"),
    "spec garbage": ("spec.json", lambda job: (job / "spec.json").write_bytes(b"\x89\xff\x00garbage"),
                     "cannot be read"),
    "spec {}": ("spec.json", lambda job: (job / "spec.json").write_text("{}"), "has no 'code'"),
    "spec []": ("spec.json", lambda job: (job / "spec.json").write_text("[]"), "holds list"),
    "spec submitted_ns as text": ("spec.json", lambda job: (job / "spec.json").write_text(json.dumps(
        dict(json.loads((job / "spec.json").read_text()), submitted_ns="soon"))), "'submitted_ns' is \"soon\""),
}


@pytest.mark.parametrize("case", list(BAD_JOB_FILES))
def test_a_job_with_a_damaged_file_is_listed_as_broken_and_the_queue_goes_on(case, settings, demo_home):
    name, spoil, said = BAD_JOB_FILES[case]
    broken, waiting = _queued(settings, 2)
    spoil(settings.jobs_dir / broken)
    (settings.jobs_dir / waiting / "cancel.request").touch()  # so the queue settles it without a trainer
    report = jobs.reconcile(settings)  # went past the broken job to the next one
    assert report["cancelled"] == [waiting] and report["started"] == []
    listed = {st["code"]: st for st in jobs.list_jobs(settings)}
    assert set(listed) == {broken, waiting} and listed[waiting]["state"] == "cancelled"
    shown = jobs.read_status(settings, broken)
    assert shown == listed[broken] and shown["state"] == "broken"
    assert str(settings.jobs_dir / broken / name) in shown["error"] and said in shown["error"]
    assert f"python -m engine forget {broken}" in shown["error"]
    with pytest.raises(Conflict, match="is broken"):
        jobs.cancel(settings, broken)


def test_a_bad_heartbeat_no_longer_stalls_the_queue_the_next_job_trains(settings, demo_home):
    broken, waiting = _queued(settings, 2)
    BAD_JOB_FILES["status heartbeat_at as text"][1](settings.jobs_dir / broken)
    assert jobs.reconcile(settings)["started"] == [waiting]
    done = jobs.wait(settings, waiting, timeout=240, poll_s=0.2)
    assert done["state"] == "succeeded", jobs.log_tail(settings.jobs_dir / waiting)
    assert jobs.read_status(settings, broken)["state"] == "broken"


def test_the_command_line_lists_a_broken_job_with_its_reason(settings, demo_home):
    broken, = _queued(settings, 1)
    (settings.jobs_dir / broken / "status.json").write_text("[]")
    out = engine_cli("jobs", home=demo_home)
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert f"{broken}  broken" in out.stdout and "status.json holds list" in out.stdout
    out = engine_cli("job", broken, "--json", home=demo_home)
    assert out.returncode == 0 and json.loads(out.stdout)["state"] == "broken"


@pytest.mark.parametrize("lang,said", [("en", "This training's files are damaged"),
                                       ("it", "I file di questo addestramento sono danneggiati")])
def test_your_face_shows_a_broken_training_plainly_and_stops_following_it(settings, demo_home, fresh_ui,
                                                                          lang, said):
    from streamlit.testing.v1 import AppTest
    from ui.state import SESSION_DEFAULTS
    broken, = _queued(settings, 1)
    (settings.jobs_dir / broken / "status.json").write_text("{}")
    at = AppTest.from_file(str(REPO / "app_pages" / "train.py"), default_timeout=60)
    for key, value in SESSION_DEFAULTS.items():
        at.session_state[key] = value
    at.query_params.update(lang=lang, code=broken)
    at.run()
    shown = "\n".join(e.value for e in at.error)
    assert not at.exception and said in shown
    assert "status.json" not in shown and str(demo_home) not in shown  # no server path on a kiosk
    assert not [b for b in at.button if (b.key or "").startswith("cancel")]


# --- photos ----------------------------------------------------------------------------------

def test_a_folder_given_as_a_photo_is_that_photos_error_not_a_traceback(demo_home, tmp_path):
    paths = []
    for i, data in enumerate(face_photos()):
        paths.append(tmp_path / f"face{i}.png")
        paths[-1].write_bytes(data)
    paths[2] = tmp_path / "holiday"
    paths[2].mkdir()
    out = engine_cli("train", *map(str, paths), home=demo_home)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "photo 3: a folder, not an image file" in out.stderr
    assert not any((demo_home / "jobs").iterdir()) or \
        [p.name for p in (demo_home / "jobs").iterdir()] == [".queue.lock"]


def test_a_folder_given_as_the_catalog_archive_is_named_not_a_traceback(demo_home, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    before = (demo_home / "catalog_db.json").read_bytes()
    out = engine_cli("catalog", "export", str(folder), home=demo_home)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"error: FILE: a folder, not a file (got '{folder}')" in out.stderr
    out = engine_cli("catalog", "import", str(folder), "--merge", home=demo_home)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "archive: not a zip file" in out.stderr and "Is a directory" in out.stderr
    assert list(folder.iterdir()) == [] and list(tmp_path.glob(".exports.*")) == []
    assert (demo_home / "catalog_db.json").read_bytes() == before
