"""The README's first command, `bin/studio`, sets up and serves the studio on the demo content."""

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.server import free_port

REPO = Path(__file__).resolve().parent.parent


def test_bin_studio_sets_up_and_serves_the_demo(home):
    port = free_port()
    env = dict(os.environ, CARTOLINA_HOME=str(home))
    log = open(home / "studio.log", "w")
    proc = subprocess.Popen([str(REPO / "bin" / "studio"), "--server.port", str(port),
                             "--server.address", "127.0.0.1"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (home / "studio.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (home / "studio.log").read_text()
            time.sleep(0.5)
        # set-up built the demo models and seeded the demo catalog in the data root
        assert (home / "models" / "demo" / "sd-inpaint" / "model_index.json").is_file()
        assert (home / "catalog_db.json").is_file() and any((home / "assets" / "poi").iterdir())
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
