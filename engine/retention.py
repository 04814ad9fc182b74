"""Retention: what the studio holds of its visitors is deleted after `CARTOLINA_RETENTION_DAYS`.

A kiosk runs for a season and most visitors never come back to ask for deletion, so faces
(LoRAs), their training jobs and the pictures go by age on their own. `sweep` is what the
supervisor calls once a day and what `python -m engine retention` runs; `dry_run` lists what
would go. Age counts from when a thing was made: a finished job from its end, a LoRA and a
picture from their files. A queued or running job is never deleted, whatever its age, nor
the LoRA its trainer is writing. Temp files a killed writer left beside pictures and records
go too, once they are an hour old, and so does a LoRA a trainer killed while saving it left
half-built (`loras/.tmp-<code>-*`: weights and the visitor's face reference).
"""

from __future__ import annotations

import time
from pathlib import Path

from engine import codes
from engine.config import Settings
from engine.errors import InvalidInput
from engine.forget import LORA_STAGE, delete_picture, remove

__all__ = ["sweep"]

DAY_S = 86_400
TEMP_GRACE_S = 3_600


def _mtime(path: Path) -> float:
    """When a file, or a folder and what is directly in it, last changed; gone meanwhile
    counts as new (somebody else deleted it)."""
    try:
        times = [path.stat().st_mtime]
        if path.is_dir():
            times += [p.stat().st_mtime for p in path.iterdir()]
    except OSError:
        return float("inf")
    return max(times)


def _coded(folder: Path, suffix: str = "") -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.name.endswith(suffix) and codes.is_code(p.name[:len(p.name) - len(suffix)]))


def _jobs_by_age(settings: Settings, cutoff: float) -> tuple[list[str], list[str], set[str]]:
    """(old jobs to delete, old jobs kept because they still run or wait, every active code)."""
    from engine.training import jobs
    old, kept, active = [], [], set()
    for st in jobs.list_jobs(settings, settle=False):
        running = st["state"] in ("queued", "running")
        if running:
            active.add(st["code"])
        ended = st.get("finished_at") if st["state"] in jobs.FINISHED else None
        if (ended or _mtime(settings.jobs_dir / st["code"])) < cutoff:
            (kept if running else old).append(st["code"])
    return old, kept, active


def sweep(settings: Settings, days: int | None = None, dry_run: bool = False) -> dict:
    """Delete LoRAs, training jobs and pictures older than `days` (default: the setting).

    Returns {"days", "cutoff" (Unix time), "dry_run", "jobs", "loras", "pictures", "temp_files",
    "kept_active"}: codes (file names for temp files) deleted, or that would be in a dry run.
    """
    from engine.training import jobs
    days = settings.retention_days if days is None else days
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise InvalidInput("days", days, "a whole number of days, 0 or more")
    now = time.time()
    cutoff = now - days * DAY_S
    report = {"days": days, "cutoff": cutoff, "dry_run": dry_run, "jobs": [], "loras": [],
              "pictures": [], "temp_files": [], "kept_active": []}
    with jobs.queue_lock(settings):  # no job starts or ends while its age is judged
        report["jobs"], report["kept_active"], active = _jobs_by_age(settings, cutoff)
        if not dry_run:
            for code in report["jobs"]:
                remove(settings.jobs_dir / code)
    for lora in _coded(settings.loras_dir):
        if lora.name not in active and _mtime(lora) < cutoff:
            report["loras"].append(lora.name)
            if not dry_run:
                remove(lora)
    pictures = {p.name[:-4] for p in _coded(settings.outputs_dir, ".png") if _mtime(p) < cutoff}
    # a record whose picture is gone (deleted by hand) is still a visitor's LoRA code
    pictures |= {p.stem for p in _coded(settings.records_dir, ".json")
                 if _mtime(p) < cutoff and not (settings.outputs_dir / f"{p.stem}.png").exists()}
    report["pictures"] = sorted(pictures)
    for folder, pattern in ((settings.outputs_dir, ".*.tmp"), (settings.records_dir, ".*.tmp"),
                            (settings.loras_dir, f"{LORA_STAGE}*")):
        if folder.is_dir():
            report["temp_files"] += sorted(str(p) for p in folder.glob(pattern)
                                           if _mtime(p) < now - TEMP_GRACE_S)
    if not dry_run:
        for code in report["pictures"]:
            delete_picture(settings, code)
        for tmp in report["temp_files"]:
            remove(Path(tmp))
    return report
