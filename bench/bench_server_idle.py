"""What an open browser tab costs the server, and what it takes from a training beside it.

    .venv/bin/python bench/bench_server_idle.py [--window 20] [--steps 150] [--before-steps 40]

A kiosk screen stays connected all day. This starts the studio exactly as the README does
(`bin/studio`, on a temporary data root that set-up fills with the demo content), once per
configuration, side by side in one run:

- **kiosk**: the shipped configuration (`.streamlit/config.toml`: no file watcher, no run on save);
- **live reload**: `CARTOLINA_LIVE_RELOAD=1 bin/studio`, the developers' mode (polling);
- **watchdog (before)**: `bin/studio --server.fileWatcherType auto`, what the server did
  before (watchdog watching the repository recursively).

For each it measures the server process's CPU time (user + system, psutil) over `--window`
seconds, given per minute: with no tab, then 1 and 3 headless-Chromium tabs on each page,
then a training run with 0, 1 and 3 tabs on *Your face* following it: the server's CPU
while it runs, and the training's speed (steps/s in its loop, read from status.json, and the
wall time from submit to done). The ratio to the run with no tab is the share of speed that
kiosk screens leave to the training.

Needs the dev dependencies (playwright, scikit-image) and Debian's chromium: `bin/setup --dev`.
Prints a markdown table; `--json FILE` also writes the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.bench_train import face_photos  # noqa: E402
from tests.server import CHROMIUM, CHROMIUM_ARGS, bin_studio  # noqa: E402

# page path -> a text that shows the page has finished drawing
PAGES = {
    "welcome": ("/", "Put yourself in the picture"),
    "your face": ("/train", "Follow a training"),
    "make a picture": ("/scene", "Make my picture"),
    "gallery": ("/gallery", "Find your picture by its 8-digit code"),
    "catalog": ("/catalog", "Beach ·"),
}

TRAINING_TABS = (0, 1, 3)  # tabs on "Your face" following the training

CONFIGS = {
    "kiosk": ({}, []),
    "live reload": ({"CARTOLINA_LIVE_RELOAD": "1"}, []),
    "watchdog (before)": ({}, ["--server.fileWatcherType", "auto"]),
}


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def browser_cpu_s(server: psutil.Process) -> dict[int, float]:
    """CPU time of this script's other descendants: Playwright's driver and Chromium."""
    out = {}
    for child in psutil.Process().children(recursive=True):
        if child.pid == server.pid or server.pid in {p.pid for p in child.parents()}:
            continue
        with contextlib.suppress(psutil.Error):
            out[child.pid] = cpu_s(child)
    return out


class CpuWindow:
    """Server and browser CPU seconds per minute between start() and stop()."""

    def __init__(self, server: psutil.Process):
        self.server = server

    def start(self) -> "CpuWindow":
        self.c0, self.b0, self.t0 = cpu_s(self.server), browser_cpu_s(self.server), time.monotonic()
        return self

    def stop(self) -> dict:
        minutes = (time.monotonic() - self.t0) / 60
        b1 = browser_cpu_s(self.server)
        browser = sum(b1[pid] - self.b0.get(pid, 0.0) for pid in b1)
        return {"server": (cpu_s(self.server) - self.c0) / minutes, "browser": browser / minutes}


def cpu_per_minute(proc: psutil.Process, window: float) -> dict:
    time.sleep(2)  # let the last script run and its messages settle
    w = CpuWindow(proc).start()
    time.sleep(window)
    return w.stop()


def open_tabs(browser, base: str, page: str, n: int) -> list:
    path, ready = PAGES[page]
    tabs = []
    for _ in range(n):
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.set_default_timeout(120_000)
        tab.goto(base + path)
        tab.get_by_text(ready).first.wait_for()
        tabs.append(tab)
    return tabs


def follow_in(tab, code: str) -> None:
    """Type the code on "Your face", as a visitor does, and wait for its status to show."""
    field = tab.get_by_label("Your 8-digit code")
    field.fill(code)
    field.press("Enter")
    tab.get_by_text("Cancel this training").or_(tab.get_by_text("Your face is ready")).first.wait_for()


def submit_training(home: Path, photos: list[Path], steps: int) -> str:
    out = subprocess.run([sys.executable, "-m", "engine", "train", *map(str, photos), "--steps",
                          str(steps), "--seed", "1", "--json"],
                         cwd=REPO, env=dict(os.environ, CARTOLINA_HOME=str(home)),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["code"]


def follow_training(home: Path, code: str, steps: int, t_submit: float) -> dict:
    """Polls status.json; steps/s is measured between the first status past 10 % of the steps
    (read after the tabs follow the training) and the last one, so start-up and latent
    caching are left out."""
    status_file = home / "jobs" / code / "status.json"
    first = last = None
    while True:
        with contextlib.suppress(OSError, ValueError):
            st = json.loads(status_file.read_text())
            now = time.monotonic()
            if st["state"] == "running" and st.get("step") and st["step"] >= steps // 10:
                first = first or (now, st["step"])
                last = (now, st["step"])
            if st["state"] in ("succeeded", "failed", "cancelled"):
                if st["state"] != "succeeded":
                    raise RuntimeError(f"training {code} {st['state']}: {st.get('error')}")
                if first is None or last[0] - first[0] < 2:
                    raise RuntimeError(f"training {code} ended before its speed could be read: "
                                       "raise --steps")
                return {"wall_s": now - t_submit,
                        "steps_per_s": (last[1] - first[1]) / max(last[0] - first[0], 1e-9)}
        time.sleep(0.1)


def training_run(home: Path, photos: list[Path], steps: int, proc: psutil.Process,
                 browser=None, base: str = "", tabs: int = 0) -> dict:
    opened = open_tabs(browser, base, "your face", tabs)
    t_submit = time.monotonic()
    code = submit_training(home, photos, steps)
    for tab in opened:
        follow_in(tab, code)
    w = CpuWindow(proc).start()
    result = follow_training(home, code, steps, t_submit)
    result["cpu_per_min"] = w.stop()
    for tab in opened:
        tab.close()
    return result


def measure(name: str, home: Path, photos: list[Path], args) -> dict:
    from playwright.sync_api import sync_playwright
    env, extra = CONFIGS[name]
    before = name.endswith("(before)")
    pages = ["welcome"] if before else list(PAGES)
    steps = args.before_steps if before else args.steps
    rows: dict = {"idle": {}, "training": {}}
    with bin_studio(home, env, tuple(extra)) as (base, pid, _log), sync_playwright() as pw:
        proc = psutil.Process(pid)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        rows["idle"]["no tab"] = cpu_per_minute(proc, args.window)
        for page in pages:
            for n in (1, 3):
                tabs = open_tabs(browser, base, page, n)
                rows["idle"][f"{n} × {page}"] = cpu_per_minute(proc, args.window)
                for tab in tabs:
                    tab.close()
                print(f"  {name}: {n} × {page}: {rows['idle'][f'{n} × {page}']}", flush=True)
        runs: dict[int, list] = {n: [] for n in TRAINING_TABS}
        for _ in range(args.rounds):  # interleaved, so a slow spell of the machine hits all
            for n in TRAINING_TABS:
                runs[n].append(training_run(home, photos, steps, proc, browser, base, n))
        for n, rs in runs.items():
            rows["training"][n] = {
                "steps_per_s": statistics.median(r["steps_per_s"] for r in rs),
                "wall_s": statistics.median(r["wall_s"] for r in rs),
                "server_cpu_per_min": statistics.median(r["cpu_per_min"]["server"] for r in rs),
                "browser_cpu_per_min": statistics.median(r["cpu_per_min"]["browser"] for r in rs),
                "runs": rs}
        browser.close()
    return rows


def report(results: dict, args) -> None:
    names = list(results)
    print(f"\nCPU seconds per minute, server / browser ({args.window:.0f} s windows; during a "
          "training: its whole run, medians)\n")
    print("| tabs open | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for row in results[names[0]]["idle"]:
        cells = [f"{results[n]['idle'][row]['server']:.2f} / {results[n]['idle'][row]['browser']:.2f}"
                 if row in results[n]["idle"] else "–" for n in names]
        print(f"| {row} | " + " | ".join(cells) + " |")
    for t in TRAINING_TABS:
        cells = [f"{results[n]['training'][t]['server_cpu_per_min']:.2f} / "
                 f"{results[n]['training'][t]['browser_cpu_per_min']:.2f}" for n in names]
        print(f"| {t} × your face, following a running training | " + " | ".join(cells) + " |")
    print(f"\nTraining speed (medians of {args.rounds} interleaved runs): steps/s in the loop, wall "
          "time from submit to done, and steps/s against the same configuration with no tab\n")
    print("| configuration | steps | " + " | ".join(f"{t} tabs following it" for t in TRAINING_TABS) + " |")
    print("| --- | --- |" + " --- |" * len(TRAINING_TABS))
    for n in names:
        runs = results[n]["training"]
        steps = args.before_steps if n.endswith("(before)") else args.steps
        print(f"| {n} | {steps} | " + " | ".join(
            f"{runs[t]['steps_per_s']:.2f} steps/s, {runs[t]['wall_s']:.1f} s, "
            f"**×{runs[t]['steps_per_s'] / runs[0]['steps_per_s']:.2f}**" for t in TRAINING_TABS) + " |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--window", type=float, default=20.0, help="seconds per CPU window")
    ap.add_argument("--steps", type=int, default=150, help="training steps (kiosk, live reload)")
    ap.add_argument("--before-steps", type=int, default=40,
                    help="training steps with the old watcher (it is about 10× slower)")
    ap.add_argument("--rounds", type=int, default=3, help="training runs per tab count (medians)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="cartolina-bench-idle-") as tmp:
        home, photos = Path(tmp) / "home", []
        home.mkdir()
        for i, data in enumerate(face_photos()):
            photos.append(Path(tmp) / f"me-{i}.png")
            photos[-1].write_bytes(data)
        for name in args.configs.split(","):
            print(f"measuring {name} …", flush=True)
            results[name] = measure(name, home, photos, args)

    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
