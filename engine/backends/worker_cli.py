"""`python -m engine worker`: a Celery worker that paints the pictures and runs the trainings
kiosks send through Redis (`CARTOLINA_BROKER_URL`), on this machine's data root
(`CARTOLINA_HOME`, shared with the kiosks). One pool process per `--concurrency` (one per GPU);
a worker serving `generate` loads the pipelines once per pool process, at start-up."""

from __future__ import annotations

import os

from engine.errors import InvalidInput


def register(sub) -> None:
    p = sub.add_parser("worker", help="paint pictures and train faces sent through Redis (Celery worker)",
                       description="Start a Celery worker for CARTOLINA_BROKER_URL. It serves the "
                                   "given queues until SIGTERM or Ctrl-C; a picture it was painting "
                                   "when it died goes back to the queue for another worker, and a "
                                   "training resumes from its last checkpoint on another worker.")
    p.add_argument("--queues", default="generate,train",
                   help="comma-separated: generate, train (default both; give a GPU to training "
                        "alone with --queues train)")
    p.add_argument("--concurrency", type=int, default=1, help="pool processes, one per GPU (default 1)")
    p.add_argument("--pool", choices=("prefork", "solo"), default="prefork",
                   help="prefork (default): a killed pool process's picture is re-queued at once")
    p.add_argument("--name", default="", help="the worker's node name (default cartolina-<pid>@<host>)")
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=_cmd_worker)


def _cmd_worker(args) -> int:
    from engine.backends.celery_app import QUEUES, QUEUES_ENV, celery_app
    from engine.config import load_settings
    settings = load_settings()
    if not settings.broker_url:
        raise InvalidInput("CARTOLINA_BROKER_URL", "", "redis://host:port/db",
                           reason="a worker needs the Redis that kiosks send pictures to")
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    if not queues or any(q not in QUEUES for q in queues):
        raise InvalidInput("queues", args.queues, QUEUES)
    if not 1 <= args.concurrency <= 64:
        raise InvalidInput("concurrency", args.concurrency, "an integer from 1 to 64")
    settings.ensure_dirs()
    os.environ[QUEUES_ENV] = ",".join(queues)  # read by the pool processes it forks
    app = celery_app(settings)
    app.worker_main(["worker", "--queues", ",".join(queues), "--concurrency", str(args.concurrency),
                     "--pool", args.pool, "--loglevel", args.loglevel, "--without-gossip",
                     "--without-mingle", "--hostname", args.name or f"cartolina-{os.getpid()}@%h"])
    return 0
