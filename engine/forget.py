"""Forgetting a visitor on request: their LoRA, its training job and every picture made with it.

A visitor holds one code for their face (the LoRA's, which is also its job's) and one per
picture. Given the LoRA's code, `forget` cancels the training if it still runs (so no trainer
writes the LoRA after it is deleted), deletes the job folder, the LoRA folder, and every
picture whose private record (`records/<code>.json`, see `engine.generate.save_output`) asked
for that LoRA. Given a picture's code, it deletes that picture. A deletion that fails is an
error, never skipped in silence: the visitor was promised their data is gone.
"""

from __future__ import annotations

import json
import shutil
from contextlib import suppress
from pathlib import Path

from engine import codes
from engine.config import Settings
from engine.errors import CartolinaError, Conflict, NotFound

__all__ = ["forget", "pictures_with_lora", "delete_picture", "remove", "LORA_STAGE"]

# The folder a trainer builds a LoRA in before renaming it to loras/<code>/
# (`engine.training.train_lora.save_lora`); a trainer killed mid-save leaves it behind.
LORA_STAGE = ".tmp-"


def remove(path: Path) -> None:
    """Delete a file or a folder; gone already is fine, anything else is an error."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise CartolinaError(f"could not delete {path}: {exc.strerror or exc}; check the data "
                             "root's permissions and run the command again") from None


def delete_picture(settings: Settings, code: str) -> None:
    """The public PNG first: once it is gone nobody can fetch it, whatever happens next."""
    remove(settings.outputs_dir / f"{code}.png")
    remove(settings.records_dir / f"{code}.json")


def _record_lora(path: Path) -> str | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    request = record.get("request") if isinstance(record, dict) else None
    return request.get("selected_lora") if isinstance(request, dict) else None


def pictures_with_lora(settings: Settings, lora: str) -> list[str]:
    """Codes of the pictures whose request named `lora` (face pass made or not: the visitor
    asked for their face, so the picture is theirs)."""
    if not settings.records_dir.is_dir():
        return []
    return sorted(p.stem for p in settings.records_dir.glob("*.json")
                  if codes.is_code(p.stem) and _record_lora(p) == lora)


def _forget_job(settings: Settings, code: str) -> bool:
    from engine.training import jobs
    job = settings.jobs_dir / code
    if not job.is_dir():
        return False
    if jobs.read_status(settings, code)["state"] in ("queued", "running"):
        with suppress(Conflict):  # it ended meanwhile
            jobs.cancel(settings, code)  # returns once the trainer is gone
    with jobs.queue_lock(settings):
        remove(job)
    return True


def forget(settings: Settings, code: str) -> dict:
    """Delete everything kept under `code`; NotFound when there is nothing.

    Returns {"code", "job": bool, "lora": bool, "pictures": [codes]}.
    """
    code = codes.check_code(code, "code")
    report = {"code": code, "job": _forget_job(settings, code), "lora": False, "pictures": []}
    lora = settings.loras_dir / code
    # and a half-saved one a killed trainer left: weights and the face reference all the same
    for folder in [lora, *settings.loras_dir.glob(f"{LORA_STAGE}{code}-*")]:
        if folder.exists():
            remove(folder)
            report["lora"] = True
    pictures = set(pictures_with_lora(settings, code))
    if (settings.outputs_dir / f"{code}.png").exists() or (settings.records_dir / f"{code}.json").exists():
        pictures.add(code)
    for picture in sorted(pictures):
        delete_picture(settings, picture)
    report["pictures"] = sorted(pictures)
    if not (report["job"] or report["lora"] or pictures):
        raise NotFound(f"code: nothing is kept under code {code} (no LoRA, training job or picture)")
    return report
