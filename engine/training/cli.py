"""`python -m engine train|jobs|job|cancel`: the training queue from a shell.

`train` checks the photos and queues the job, printing its code at once (like the kiosk);
`--wait` follows it to the end. Bad photos exit with 2 and one line per photo to retake.
The trainings run on this machine, or on Celery workers when CARTOLINA_BROKER_URL is set.
Every command settles the queue first (see `jobs.reconcile`), so running `jobs` after a
crash or a reboot is enough to resume or fail what was left behind.
"""

from __future__ import annotations

import argparse
import sys
import time

from engine.backends import training_backend
from engine.training import jobs

__all__ = ["register"]


def _settings():
    from engine.config import load_settings
    s = load_settings()
    s.ensure_dirs()
    return s


# `train`'s options by their names in TrainOptions (and spec.json).
_OPTION_FLAGS = {"steps": "total_steps", "rank": "rank", "lr": "learning_rate",
                 "checkpoint_every": "checkpoint_every", "resolution": "resolution", "seed": "seed"}


def _in_range(name: str):
    """An argparse type checking the value against TrainOptions.RANGES, so a bad flag exits 2
    naming the option and its range before any photo is read."""
    lo, hi = jobs.TrainOptions.RANGES[name]
    kind = float if isinstance(lo, float) else int
    accepted = (f"a number from {lo:g} to {hi:g}" if kind is float else f"an integer from {lo} to {hi}")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:  # NaN fails the comparison too
            raise argparse.ArgumentTypeError(f"{name} must be {accepted} (got {text!r})")
        return value

    return parse


def _line(st: dict) -> str:
    state = st["state"]
    text = f"{st['code']}  {state:<9}  step {st.get('step') or 0}/{st.get('total_steps')}"
    if state == "queued" and st.get("queue_position"):
        text += f"  (place {st['queue_position']} in the queue)"
    if state == "running":
        if st.get("loss") is not None:
            text += f"  loss {st['loss']:.4f}"
        if st.get("eta_s") is not None:
            text += f"  about {_duration(st['eta_s'])} left"
    if st.get("error") and state in ("failed", "cancelled", jobs.BROKEN):
        text += f"\n  {st['error'].splitlines()[0]}"
    return text


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _cmd_train(args) -> int:
    from engine.cli import EXIT_FAILED, EXIT_OK, emit
    settings = _settings()
    n = len(args.photos)
    fields = {"total_steps": settings.steps_per_photo * n}
    fields.update({name: getattr(args, flag) for flag, name in _OPTION_FLAGS.items()
                   if getattr(args, flag) is not None})
    if args.trigger is not None:
        fields["trigger_words"] = args.trigger
    trainings = training_backend(settings)
    st = trainings.submit(args.photos, jobs.TrainOptions(**fields))
    if not args.wait:
        emit(args, st, lambda: f"code {st['code']}\nstate {st['state']}" +
             (f" (place {st['queue_position']} in the queue)" if st.get("queue_position") else ""))
        return EXIT_OK
    if not args.json:
        print(f"code {st['code']}", flush=True)
    started = time.monotonic()

    def progress(now: dict) -> None:
        if not args.json:
            print(f"  {_line(now)}", file=sys.stderr, flush=True)

    final = trainings.wait(st["code"], on_status=progress)
    final["elapsed_s"] = round(time.monotonic() - started, 1)
    emit(args, final, lambda: f"state {final['state']}" +
         (f"\nLoRA in {settings.loras_dir / final['code']}" if final["state"] == "succeeded" else "") +
         (f"\n{final['error']}" if final.get("error") and final["state"] != "succeeded" else ""))
    return EXIT_OK if final["state"] == "succeeded" else EXIT_FAILED


def _cmd_jobs(args) -> int:
    from engine.cli import EXIT_OK, emit
    listed = training_backend(_settings()).list()
    emit(args, listed, lambda: "\n".join(_line(st) for st in listed) or "no training jobs")
    return EXIT_OK


def _cmd_job(args) -> int:
    from engine.cli import EXIT_OK, emit
    st = training_backend(_settings()).status(args.code)
    emit(args, st, lambda: _line(st))
    return EXIT_OK


def _cmd_cancel(args) -> int:
    from engine.cli import EXIT_OK, emit
    st = training_backend(_settings()).cancel(args.code)
    emit(args, st, lambda: _line(st))
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("train", help="train a face LoRA from photos; prints its 8-digit code",
                       description="Check the photos (one face each, sharp, large enough), queue a "
                                   "LoRA training and print its code and state at once. Bad photos "
                                   "exit with 2 and the reason for each photo.")
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="the face photos (5 by default)")
    p.add_argument("--steps", type=_in_range("total_steps"), metavar="N",
                   help="total training steps (default: 300 per photo, 1500 for five)")
    p.add_argument("--rank", type=_in_range("rank"), metavar="R", help="LoRA rank, 1 to 256 (default 16)")
    p.add_argument("--lr", type=_in_range("learning_rate"), metavar="X",
                   help="learning rate, 1e-7 to 1 (default 1e-4)")
    p.add_argument("--checkpoint-every", type=_in_range("checkpoint_every"), metavar="N",
                   help="save a resumable checkpoint every N steps (default 250); a trainer killed "
                        "before the first one fails its job, so keep N well below --steps")
    p.add_argument("--resolution", type=_in_range("resolution"), metavar="PX",
                   help="side of the face crops, a multiple of 8 from 64 to 2048 (default 512)")
    p.add_argument("--trigger", metavar="WORDS", help='trigger words (default "sks person")')
    p.add_argument("--seed", type=_in_range("seed"), metavar="N", help="random seed (default: random)")
    p.add_argument("--wait", action="store_true", help="follow the training and print the final state")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("jobs", help="list training jobs (and settle crashed ones)",
                       description="List every training job, oldest first, with its state. Dead or "
                                   "stale trainers are resumed or failed, queued jobs started.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_jobs)

    p = sub.add_parser("job", help="show one training job's status",
                       description="The status fields of one job: state, step, total_steps, loss, "
                                   "eta_s, pid, heartbeat_at, error, queue_position.")
    p.add_argument("code", metavar="CODE", help="the 8-digit code")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_job)

    p = sub.add_parser("cancel", help="cancel a queued or running training job",
                       description="Cancel a job: a queued one at once, a running one by ending its "
                                   "trainer's process group. The next queued job then starts.")
    p.add_argument("code", metavar="CODE", help="the 8-digit code")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_cancel)
