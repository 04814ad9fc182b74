"""Pictures on Celery with Redis against the embedded line, on the demo models, in one run.

    .venv/bin/python bench/bench_celery.py [--pictures 6] [--steps 4] [--rounds 3] [--repeats 7]

(a) throughput: the same N pictures submitted at once to one worker and to two (two
    `python -m engine worker` processes, as a site with two GPUs runs them); pictures per
    minute, and the ratio. On a CPU a worker's "device" is its torch threads, so this is
    timed twice: with one thread per worker (each worker has a core of its own, as each
    GPU worker has its GPU) and with torch's default of one thread per core in every
    process (what `python -m engine worker` gets here unless OMP_NUM_THREADS says
    otherwise). Every worker stays up; a round only tells the others to stop taking
    pictures (Celery's remote control), so no round pays for loading pipelines, and the
    four set-ups run in turn, round after round, so that noise from other work on the
    machine hits each alike.
(b) the broker's round trip: one picture submitted and waited for through the Celery
    backend (a worker in another process, Redis between) and through the embedded line
    (engine.backends.embedded_pictures.PictureQueue, in this process), the same request on
    one thread each side, in turn; the medians, and the median of the pairs' ratios and
    differences (each pair ran back to back: the figure least moved by other work).

It starts its own redis-server and workers (tests/celery_parts.py) on a temporary data root
and removes them all at the end. Timing lives here, never in tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
CORES = os.cpu_count() or 1
# This process's embedded line paints on one thread, as the worker it is compared with does;
# read by torch when it is first imported, below.
os.environ["OMP_NUM_THREADS"] = "1"

QUEUE = "generate"
THREADS = {"a": CORES, "b": CORES, "c": 1, "d": 1}  # each worker's torch threads
SETS = {(1, 1): {"c"}, (1, 2): {"c", "d"}, (CORES, 1): {"a"}, (CORES, 2): {"a", "b"}}  # (threads, workers)


def make_home(root: Path) -> Path:
    """A data root as the tests make one: demo models, the demo catalog."""
    from engine.config import load_settings
    from engine.demo.catalog import build_demo_catalog
    from engine.demo.models import build_demo_models
    from tests.homes import fill_demo_home

    models, catalog, home = root / "models", root / "catalog", root / "home"
    for d in (models, catalog, home):
        d.mkdir()
    build_demo_models(models)
    settings = load_settings({"CARTOLINA_HOME": str(catalog)})
    settings.ensure_dirs()
    problems = build_demo_catalog(settings)["problems"]
    assert problems == [], problems
    return fill_demo_home(home, models, catalog)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def all_painted(line, codes: list[str], timeout: float = 600) -> None:
    for code in codes:
        done = line.wait(code, timeout=timeout)
        if done.state != "succeeded":
            raise RuntimeError(f"picture {code} {done.state}: {done.error}")


def throughput(line, request: dict, pictures: int) -> float:
    """Pictures per minute: N submitted at once, until the last one is saved."""
    started = time.perf_counter()
    codes = [line.submit(dict(request, seed=i)) for i in range(pictures)]
    all_painted(line, codes)
    return pictures * 60 / (time.perf_counter() - started)


def one_picture(line, request: dict) -> float:
    started = time.perf_counter()
    all_painted(line, [line.submit(request)])
    return time.perf_counter() - started


def only(app, names: set[str]) -> None:
    """Let exactly these workers take pictures."""
    for name in THREADS:
        change = app.control.add_consumer if name in names else app.control.cancel_consumer
        if not change(QUEUE, destination=[f"{name}@test"], reply=True, timeout=10):
            raise RuntimeError(f"worker {name} did not answer")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pictures", type=int, default=6, help="pictures submitted at once in (a)")
    p.add_argument("--steps", type=int, default=4, help="inference steps of each picture")
    p.add_argument("--rounds", type=int, default=3, help="rounds of (a), each running the four set-ups")
    p.add_argument("--repeats", type=int, default=7, help="pictures of (b), each way")
    args = p.parse_args(argv)
    if shutil.which("redis-server") is None:
        sys.exit("Debian's redis-server is needed (bin/setup --dev installs it)")

    from engine.backends.celery_pictures import CeleryPictures
    from engine.backends.embedded_pictures import PictureQueue
    from engine.config import load_settings
    from tests.celery_parts import RedisServer, Workers
    from tests.lines import REQUEST

    request = dict(REQUEST, steps=args.steps)
    load_before, began = load(), time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-celery-"))
    server = workers = None
    try:
        home = make_home(tmp)
        server = RedisServer(tmp)
        server.start()
        workers = Workers(home, server.url)
        for name, threads in THREADS.items():
            os.environ["OMP_NUM_THREADS"] = str(threads)  # the worker inherits it
            workers.start(name, "--queues", QUEUE)
        os.environ["OMP_NUM_THREADS"] = "1"
        celery = CeleryPictures(load_settings({"CARTOLINA_HOME": str(home), "CARTOLINA_BROKER_URL": server.url}))
        embedded = PictureQueue(load_settings({"CARTOLINA_HOME": str(home)}))

        # warm-up: every worker and this process paint before anything is timed
        for names in ({"a", "b"}, {"c", "d"}):
            only(celery.app, names)
            all_painted(celery, [celery.submit(dict(request, seed=i)) for i in range(4)])
        all_painted(embedded, [embedded.submit(request)])

        # (a) the four set-ups in turn, round after round
        rates: dict[tuple, list[float]] = {key: [] for key in SETS}
        for r in range(args.rounds):
            for key, names in SETS.items():
                only(celery.app, names)
                rates[key].append(throughput(celery, request, args.pictures))
            print(f"round {r + 1}, pictures/min: " +
                  ", ".join(f"{w} worker(s) × {t} thread(s) {v[-1]:.1f}" for (t, w), v in rates.items()), flush=True)

        # (b) one picture through Redis and a one-thread worker, or through this process's line
        only(celery.app, {"c"})
        via_celery, via_embedded = [], []
        for _ in range(args.repeats):
            via_celery.append(one_picture(celery, request))
            via_embedded.append(one_picture(embedded, request))
        print("celery:  ", " ".join(f"{t:.2f}" for t in via_celery))
        print("embedded:", " ".join(f"{t:.2f}" for t in via_embedded), flush=True)
    finally:
        if workers is not None:
            workers.stop_all()
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    med = statistics.median
    import celery as celery_pkg
    import torch
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    print()
    print(f"{CORES} cores, torch {torch.__version__}, celery {celery_pkg.__version__}, redis-server "
          f"{redis_version.removeprefix('v=')}; demo models, {args.steps} steps a picture; load average "
          f"(1/5/15 min) before {load_before}, after {load()}; {time.perf_counter() - began:.0f} s in all")
    print()
    print(f"| (a) {args.pictures} pictures at once, pictures per minute, median of {args.rounds} rounds "
          "| 1 worker | 2 workers | 2 / 1 |")
    print("| --- | ---: | ---: | ---: |")
    for threads in sorted({t for t, _ in SETS}):
        one, two = med(rates[(threads, 1)]), med(rates[(threads, 2)])
        what = "1 thread per worker (a core each)" if threads == 1 else \
            f"{threads} threads per worker (torch's default here: one per core)"
        print(f"| {what} | {one:.1f} | {two:.1f} | {two / one:.2f}× |")
    mc, me = med(via_celery), med(via_embedded)
    print()
    print(f"| (b) one picture, submit → done, {args.repeats} pairs, 1 thread | embedded line | Celery + Redis "
          "| Celery / embedded | added |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| medians | {me:.2f} s | {mc:.2f} s | {mc / me:.2f}× | {mc - me:+.2f} s |")
    print(f"| median of the pairs | | | {med(c / e for c, e in zip(via_celery, via_embedded)):.2f}× "
          f"| {med(c - e for c, e in zip(via_celery, via_embedded)):+.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
