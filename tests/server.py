"""Start a real Streamlit server for a test, on a free port, and stop it afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, base: str, log_path: Path, timeout: float) -> None:
    """Until the server answers its health check; its log in the error if it dies or stalls."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log_path.read_text()}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not become healthy in {timeout:.0f} s:\n{log_path.read_text()}")
        time.sleep(0.3)


@contextlib.contextmanager
def streamlit_server(home: Path, entry: str = "serve.py", env: dict | None = None,
                     timeout: float = 180):
    port = free_port()
    full_env = dict(os.environ, CARTOLINA_HOME=str(home), HF_HUB_OFFLINE="1",
                    TRANSFORMERS_OFFLINE="1", **(env or {}))
    log_path = home / f"streamlit-{port}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", entry, "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],  # file watching: .streamlit/config.toml, as served
        cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, base, log_path, timeout)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def bin_studio(home: Path, env: dict | None = None, args: tuple[str, ...] = (), timeout: float = 300):
    """The studio started exactly as the README starts it, `bin/studio` (set-up included), on
    a data root of its own; yields (base URL, server pid, log path). bin/studio execs streamlit,
    so the pid is the server's."""
    port = free_port()
    log_path = home / f"studio-{port}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([str(REPO / "bin" / "studio"), "--server.port", str(port),
                             "--server.address", "127.0.0.1", *args],
                            cwd=REPO, env=dict(os.environ, CARTOLINA_HOME=str(home), **(env or {})),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, base, log_path, timeout)
        yield base, proc.pid, log_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


@contextlib.contextmanager
def chromium():
    """Debian's headless Chromium, for tests that open several visitors (contexts) at once."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_visitor(browser, width: int = 1280, height: int = 900):
    """A page in a context of its own: its own cookies, so its own Streamlit session."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(60_000)  # a condition's limit, not a wait: a busy CI is slow
    return page


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 900):
    """One visitor's page; when the test fails inside, what the page showed goes into the
    failure (its text) and test-artifacts/ (a screenshot), so a CI failure explains itself."""
    with chromium() as browser:
        page = new_visitor(browser, width, height)
        try:
            yield page
        except Exception as exc:
            _describe_failure(page, exc)
            raise


def _describe_failure(page, exc: Exception) -> None:
    with contextlib.suppress(Exception):
        shot = screenshot(page, f"failed-{os.environ.get('PYTEST_CURRENT_TEST', 'test').split(' ')[0].split('::')[-1]}")
        exc.add_note(f"screenshot: {shot}")
    with contextlib.suppress(Exception):
        text = page.inner_text("body", timeout=5000)
        exc.add_note(f"the page at {page.url} showed:\n{text[:3000]}")


# Streamlit marks its app while a script run is under way; a test waits for this before it
# works a form, as a person waits for the page to stop changing.
RUN_ENDED = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def settled(page, shown: str):
    """Until `shown` (text only the newest run draws) is on the page and that run has ended."""
    page.get_by_text(shown).first.wait_for()
    page.locator(RUN_ENDED).wait_for()
    return page


ARTIFACTS = Path(os.environ.get("CARTOLINA_TEST_ARTIFACTS", REPO / "test-artifacts"))


def screenshot(page, name: str) -> Path:
    """Keep what the visitor saw as a test artifact (test-artifacts/, or
    CARTOLINA_TEST_ARTIFACTS), full page, for a person to look at after the run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
