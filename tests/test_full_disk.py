"""A full disk: every write of the studio ends with "the disk is full" and leaves nothing
half-written — the old file intact, no temp file, no photo or picture without its record.

The disk is a real one: a small tmpfs mounted for the test and filled to the last byte. Where
mounting is not permitted the tests skip, saying so (`pytest -rs` lists the reason)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest
from PIL import Image

from engine import generate as gen
from engine.catalog import Catalog
from engine.config import load_settings
from engine.errors import DiskFull
from engine.training import jobs
from test_training_photos import face_photos
from tests.homes import fill_demo_home
from tests.server import REPO

GENERATE = {"poi_name": "Piazza del Duomo", "poi_image": "Fountain view", "action_name": "waving",
            "action_shot_type": "MES", "age": "adult", "gender": "woman", "seed": 7, "steps": 2}


@pytest.fixture
def disk(tmp_path):
    """A 16 MB tmpfs of our own, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("a full disk needs a tmpfs, and there is no `mount` command here")
    if done.returncode:
        pytest.skip(f"a full disk needs a tmpfs, and mounting one is not permitted here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        _unmount(mount)


def _unmount(mount, timeout: float = 30) -> None:
    """Unmount once nothing holds a file there: a process that has just ended (a trainer after
    its final status) can keep the disk busy for a moment. Past `timeout`, detach it lazily:
    the kernel frees it when the last holder is gone, and the test's verdict stands."""
    deadline = time.monotonic() + timeout
    while subprocess.run(["umount", str(mount)], capture_output=True, timeout=30).returncode:
        if time.monotonic() > deadline:
            subprocess.run(["umount", "--lazy", str(mount)], check=True, timeout=30)
            return
        time.sleep(0.2)


def fill(disk) -> None:
    """Write until the disk refuses a single byte."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 1 << 12, 1):
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    assert shutil.disk_usage(disk).free == 0


def files(root) -> dict[str, bytes]:
    """Every file under the data root with its content; not the filler, nor the empty lock
    files that a running studio has anyway."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != "filler" and not p.name.endswith(".lock")}


@pytest.fixture
def disk_home(disk, demo_models_root, demo_catalog_root, monkeypatch):
    """The demo studio on that disk, room still left."""
    home = disk / "home"
    home.mkdir()
    fill_demo_home(home, demo_models_root, demo_catalog_root)
    monkeypatch.setenv("CARTOLINA_HOME", str(home))
    settings = load_settings()
    settings.ensure_dirs()
    return home, settings


@pytest.fixture
def full_home(disk, disk_home):
    """The demo studio on a disk with no byte left."""
    home, settings = disk_home
    Catalog.open(settings).list_pois()  # the catalog's lock file exists, as on any running studio
    fill(disk)
    return home, settings


def _action_images(cat):
    imgs = cat.load_action_images(cat.get_action_image("waving", "CLS"))
    return imgs["pose"], imgs["pose_mask"], imgs["face_mask"]


CATALOG_EDITS = {
    "add a POI": lambda cat: cat.add_poi("Colosseo", "the amphitheatre"),
    "change a POI's texts": lambda cat: cat.update_poi("Lungomare", "new words",
                                                       translations={"it": {"title": "Il lungomare"}}),
    "delete a POI": lambda cat: cat.delete_poi("Lungomare"),
    "add a POI photo": lambda cat: cat.add_poi_image("Lungomare", "Sunset", Image.new("RGB", (640, 480), "orange")),
    "change a POI photo's texts": lambda cat: cat.update_poi_image("Lungomare", "Beach", "new words"),
    "delete a POI photo": lambda cat: cat.delete_poi_image("Lungomare", "Beach"),
    "add an action": lambda cat: cat.add_action("jumping", "jumping with joy"),
    "change an action's texts": lambda cat: cat.update_action("waving", "new words"),
    "delete an action": lambda cat: cat.delete_action("waving"),
    "replace an action's images": lambda cat: cat.set_action_image("waving", "CLS", *_action_images(cat)),
    "place an action": lambda cat: cat.update_placement("waving", "CLS", {"x": 0.4, "bottom": 0.9, "height": 0.5}),
    "delete an action's images": lambda cat: cat.delete_action_image("waving", "CLS"),
}


@pytest.mark.parametrize("edit", list(CATALOG_EDITS))
def test_every_catalog_edit_on_a_full_disk_says_so_and_changes_nothing(edit, full_home):
    home, settings = full_home
    cat = Catalog.open(settings)
    before = files(home)
    with pytest.raises(DiskFull) as err:
        CATALOG_EDITS[edit](cat)
    assert str(err.value).startswith("the disk is full") and str(home) in str(err.value)
    assert files(home) == before  # catalog and backup as they were, no temp file, no stray asset
    assert cat.validate() == []


def test_a_picture_on_a_full_disk_says_so_and_leaves_no_file(full_home):
    home, settings = full_home
    before = files(home)
    with pytest.raises(DiskFull, match="^the disk is full"):
        gen.generate(GENERATE, settings)
    assert files(home) == before


def test_a_training_on_a_full_disk_says_so_and_leaves_no_photo(full_home):
    home, settings = full_home
    before = files(home)
    with pytest.raises(DiskFull, match="^the disk is full"):
        jobs.submit(face_photos(), settings, jobs.TrainOptions(total_steps=2, resolution=64), start=False)
    assert files(home) == before
    assert [p.name for p in settings.jobs_dir.iterdir() if p.name != ".queue.lock"] == []


def _trainers_of(job) -> list[psutil.Process]:
    """The live trainers of `job` (a zombie holds no file of the disk open)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if str(job) in (proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def _until_no_trainer_of(job, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _trainers_of(job):
        assert time.monotonic() < deadline, f"a trainer of {job} still runs"
        time.sleep(0.1)


@pytest.mark.timeout(300)
def test_a_queued_training_stays_queued_on_a_full_disk_and_trains_once_there_is_room(disk, disk_home):
    home, settings = disk_home
    code = jobs.submit(face_photos(), settings, jobs.TrainOptions(
        total_steps=2, resolution=64, rank=4, checkpoint_every=2, random_masks=1, seed=5), start=False)["code"]
    job = settings.jobs_dir / code
    queued = (job / "status.json").read_bytes()
    fill(disk)
    try:
        out = subprocess.run([sys.executable, "-m", "engine", "jobs"], cwd=REPO, capture_output=True, text=True,
                             env=dict(os.environ, CARTOLINA_HOME=str(home)), timeout=120)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert out.stderr.startswith(f"error: the disk is full: could not write {settings.jobs_dir} ")
        with pytest.raises(DiskFull, match="^the disk is full"):
            jobs.reconcile(settings)  # as the supervisor's round does
        assert (job / "status.json").read_bytes() == queued  # not failed: the disk is not the job's fault
        assert _trainers_of(job) == []  # and no trainer runs that the job does not record

        (disk / "filler").unlink()
        assert jobs.reconcile(settings)["started"] == [code]
        done = jobs.wait(settings, code, timeout=240, poll_s=0.2)
        assert (done["state"], done["attempt"]) == ("succeeded", 1), jobs.log_tail(job)
        _until_no_trainer_of(job)  # it ends on its own after its final status
    finally:
        for trainer in _trainers_of(job):  # a failed test's, before the disk is unmounted
            jobs._kill_group(trainer.pid, signal.SIGKILL)
        _until_no_trainer_of(job)


def test_demo_on_a_full_disk_says_so_without_a_traceback_and_leaves_no_half_model(disk):
    home = disk / "home"
    home.mkdir()
    fill(disk)
    out = subprocess.run([sys.executable, "-m", "engine", "demo"], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ, CARTOLINA_HOME=str(home)), timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error: the disk is full" in out.stderr and "python -m engine retention" in out.stderr
    assert [p.name for p in (home / "models" / "demo").iterdir() if p.name != ".build.lock"] == []
    assert not (home / "catalog_db.json").exists()
