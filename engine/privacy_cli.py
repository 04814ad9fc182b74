"""`python -m engine forget|retention`: deleting visitors' data from a shell.

`forget CODE` is what the staff run when a visitor asks (the privacy page offers the same);
`retention` is what the supervisor runs daily, and `--dry-run` shows what it would delete.
"""

from __future__ import annotations

import argparse
from datetime import datetime

__all__ = ["register"]


def _settings():
    from engine.config import load_settings
    return load_settings()


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: days must be 0 or more")
    return value


def _cmd_forget(args) -> int:
    from engine.cli import EXIT_OK, emit
    from engine.forget import forget
    report = forget(_settings(), args.code)
    gone = (["its LoRA"] if report["lora"] else []) + (["its training job"] if report["job"] else [])
    gone.append(f"{len(report['pictures'])} picture(s)" + (
        f" ({', '.join(report['pictures'])})" if report["pictures"] else ""))
    emit(args, report, f"forgot {report['code']}: deleted " + ", ".join(gone))
    return EXIT_OK


def _cmd_retention(args) -> int:
    from engine.cli import EXIT_OK, emit
    from engine.retention import sweep
    report = sweep(_settings(), days=args.days, dry_run=args.dry_run)

    def text() -> str:
        verb = "would delete" if report["dry_run"] else "deleted"
        since = datetime.fromtimestamp(report["cutoff"]).strftime("%Y-%m-%d %H:%M")
        lines = [f"retention {report['days']} days: {verb} what was made before {since}"]
        for kind in ("loras", "jobs", "pictures", "temp_files"):
            names = report[kind]
            lines.append(f"  {kind.replace('_', ' ')}: {len(names)}" + (f" ({', '.join(names)})" if names else ""))
        if report["kept_active"]:
            lines.append(f"  kept, still queued or running: {', '.join(report['kept_active'])}")
        return "\n".join(lines)

    emit(args, report, text)
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("forget", help="delete a visitor's LoRA, its training job and its pictures",
                       description="Delete everything kept under CODE: with a LoRA's code, the LoRA, "
                                   "its training job (cancelled first if it still runs) and every "
                                   "picture made with it; with a picture's code, that picture. "
                                   "Exits 2 when nothing is kept under CODE.")
    p.add_argument("code", metavar="CODE", help="the 8-digit code")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_forget)

    p = sub.add_parser("retention", help="delete LoRAs, jobs and pictures older than the retention period",
                       description="Delete LoRAs, finished training jobs and pictures made more than "
                                   "N days ago (default CARTOLINA_RETENTION_DAYS, 30). Queued and "
                                   "running jobs are never deleted.")
    p.add_argument("--days", type=_days, metavar="N", help="the retention period in days for this run")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_retention)
