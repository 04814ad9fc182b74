"""The README's first command, `bin/studio`, sets up and serves the studio on the demo content,
and the server it starts watches no files (a kiosk tab stays open all day)."""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server import REPO, bin_studio, browser_page


def inotify_watches(pid: int) -> int:
    """How many inotify watches the process holds (a watchdog observer holds one per folder)."""
    count = 0
    for fd in (Path("/proc") / str(pid) / "fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd) == "anon_inode:inotify":
                fdinfo = (Path("/proc") / str(pid) / "fdinfo" / fd.name).read_text()
                count += 1 + fdinfo.count("inotify wd:")
    return count


def open_welcome_page(base: str) -> None:
    """A browser session on the welcome page: the moment Streamlit sets up a session's watchers."""
    with browser_page() as page:
        page.goto(base)
        page.get_by_text("Put yourself in the picture").wait_for()


@pytest.mark.browser
def test_bin_studio_sets_up_and_serves_the_demo_watching_no_files(home):
    with bin_studio(home) as (base, pid, log):
        # set-up built the demo models and seeded the demo catalog in the data root
        assert (home / "models" / "demo" / "sd-inpaint" / "model_index.json").is_file()
        assert (home / "catalog_db.json").is_file() and any((home / "assets" / "poi").iterdir())
        # the options in effect in that server, as serve.py reads them at start-up
        assert "file watcher: none; run on save: off" in log.read_text(), log.read_text()
        open_welcome_page(base)
        assert inotify_watches(pid) == 0
    assert "Inotify" not in log.read_text()


@pytest.mark.browser
def test_live_reload_is_one_variable_and_polls_instead_of_watching_folders(home):
    with bin_studio(home, {"CARTOLINA_LIVE_RELOAD": "1"}) as (base, pid, log):
        assert "file watcher: poll; run on save: on" in log.read_text(), log.read_text()
        open_welcome_page(base)
        assert inotify_watches(pid) == 0  # no recursive watch of the repository, .venv included


def test_live_reload_rejects_a_bad_value_before_setting_anything_up(home):
    out = subprocess.run([str(REPO / "bin" / "studio")], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ, CARTOLINA_HOME=str(home), CARTOLINA_LIVE_RELOAD="yes"),
                         timeout=30)
    assert out.returncode == 2
    assert "CARTOLINA_LIVE_RELOAD='yes'" in out.stderr and "0 (off" in out.stderr and "1 (live" in out.stderr
    assert not any(home.iterdir())


# Which files Streamlit's own watcher would follow with live reload on, asked of Streamlit in
# a fresh process with the project's config file and bin/studio's live-reload flags, after
# importing what a server that made a picture and ran a training has imported.
WATCHED_FILES = """
import json, sys
from streamlit import config
config.get_config_options(force_reparse=True, options_from_flags={
    "server.fileWatcherType": "poll", "server.runOnSave": True})
from streamlit.runtime.pages_manager import PagesManager
from streamlit.watcher.local_sources_watcher import LocalSourcesWatcher
import torch, diffusers, transformers, peft  # noqa: F401
import engine.generate, engine.models, engine.training.jobs, ui.state  # noqa: F401
watcher = LocalSourcesWatcher(PagesManager("Home.py"))
watcher.update_watched_modules()
print(json.dumps(sorted(watcher._watched_modules)))
watcher.close()
"""


def test_live_reload_follows_the_projects_sources_only(tmp_path):
    data_root = tmp_path / "home"
    out = subprocess.run([sys.executable, "-c", WATCHED_FILES], cwd=REPO, capture_output=True,
                         text=True, timeout=300, check=True,
                         env=dict(os.environ, CARTOLINA_HOME=str(data_root)))
    watched = [Path(p) for p in json.loads(out.stdout.splitlines()[-1])]
    assert REPO / "Home.py" in watched and REPO / "engine" / "generate.py" in watched
    never = [REPO / ".venv", REPO / "models", REPO / "assets", REPO / "loras", REPO / "outputs",
             REPO / "jobs", data_root, Path(sys.prefix)]
    bad = [p for p in watched if any(p.is_relative_to(folder) for folder in never)]
    assert bad == []
    assert all(p.is_relative_to(REPO) for p in watched)


def test_the_docker_image_serves_with_the_same_server_config():
    """The image copies the repository (config file included) and starts streamlit in it, so
    the kiosk container watches no files either; it cannot be built here (no Docker engine)."""
    import fnmatch
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert not any(fnmatch.fnmatch(".streamlit/config.toml", pat) or fnmatch.fnmatch(".streamlit", pat)
                   for pat in ignored)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "COPY . ." in dockerfile and "WORKDIR /app" in dockerfile
    assert "serve.py" in dockerfile and "fileWatcherType" not in dockerfile and "runOnSave" not in dockerfile
