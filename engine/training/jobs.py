"""The training job protocol: folders and status files instead of a daemon.

A visitor's training outlives the browser tab that asked for it, and may outlive the app
itself, so nothing about a job lives in memory. Each job is a folder under `jobs/<code>/`::

    spec.json       what to train (written once by `submit`, never changed)
    photos/         the checked face crops (deleted when the job ends)
    status.json     where it stands (atomic replace; see "Who writes status.json")
    log.txt         the trainer's output, appended across attempts
    loss.csv        the loss curve, `step,loss` lines appended by the trainer (at most ~500)
    checkpoint-N/   resumable trainer state (the latest 2; deleted when the job ends)
    cancel.request  present once somebody asked to cancel

Status fields: `state` (queued, running, succeeded, failed, cancelled), `step`,
`total_steps`, `loss`, `eta_s`, `pid`, `heartbeat_at`, `error`, plus `code`, `attempt`,
`submitted_at`, `started_at`, `finished_at`, `updated_at` (times are Unix seconds) and, on
read only, `queue_position` (1 = next to start) for queued jobs. A finished state never changes.

A job whose `spec.json` or `status.json` cannot be read, is not JSON or has a field of the
wrong type is listed in state `broken` (never written, only read), with `error` naming the
file and what is wrong. Nobody touches it (`forget` or `retention` deletes it), and the
queue goes on around it: one bad file must not stall every visitor's training.

Who writes status.json. The trainer writes it for as long as it lives: its first write
(`running`) and its last (`succeeded`, `failed`, `cancelled`) are made under the queue lock,
its progress and heartbeats in between without it. Before a trainer exists and after it is
provably dead, the supervisor writes instead, always under the queue lock: `submit` writes
`queued`; starting a trainer writes `running` with the child's pid (so the slot is taken
before the child has even imported torch, and the child's own first write, which waits
for the lock, always comes after); `cancel` of a queued job writes `cancelled`; and
`reconcile` writes `failed`/`cancelled`/`queued` (to resume) only after the trainer's process
is gone: a dead or zombie pid, or a stale heartbeat whose process group it first kills.
So the two writers never overlap.

There is no scheduler process. Whoever touches the queue (`submit`, a trainer finishing,
`status`, `list_jobs`, `wait`, the command line) calls `reconcile()`, which under the lock
settles dead trainers and starts queued jobs, oldest first, while fewer than
`settings.max_parallel_trainings` run. A trainer calls it as it exits, so the next job
starts without anybody clicking, and every server's supervisor (`engine.supervisor`) calls it
every `CARTOLINA_SUPERVISE_S` seconds, so a trainer that dies with nobody watching is
settled too.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterator, Sequence

from engine import codes
from engine.config import REPO_ROOT, Settings
from engine.diskfull import disk_full_guard, is_disk_full
from engine.errors import Conflict, InvalidInput, JobError, ModelError, NotFound
from engine.prompts import DEFAULT_TRIGGER  # the face pass and the trainer must agree

__all__ = ["STATES", "FINISHED", "BROKEN", "ENDED", "TrainOptions", "submit", "cancel", "reconcile",
           "spawn_trainer", "start_trainer", "kill_hung", "trainers_start_here", "settle_dead", "finish", "MAX_ATTEMPTS",
           "status", "read_status", "list_jobs", "wait", "job_dir", "queue_lock", "log_tail",
           "heartbeat_interval", "StatusWriter", "write_status", "cleanup_job", "pid_alive",
           "latest_checkpoint", "checkpoints", "cancel_requested", "LossLog", "loss_history"]

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
BROKEN = "broken"
# Nothing will change a job in these states by itself: a page stops following it.
ENDED = FINISHED | {BROKEN}

SPEC, STATUS, LOG, CANCEL_REQUEST, PHOTOS = "spec.json", "status.json", "log.txt", "cancel.request", "photos"
LOSSES = "loss.csv"
# A page redraws the whole curve at every poll: a run of any length keeps about this many points.
MAX_LOSS_POINTS = 500
LOCK_NAME = ".queue.lock"
LOCK_TIMEOUT_S = 60.0
# A trainer that dies with a checkpoint is restarted at most this many times in all; a crash
# that repeats (out of memory at the same step) must end as `failed`, not loop forever.
MAX_ATTEMPTS = 3
CANCEL_GRACE_S = 10.0
TAIL_LINES = 20


# --- options (the spec's training part) ----------------------------------------------------------

@dataclass(frozen=True)
class TrainOptions:
    """Everything the trainer needs besides the photos; stored in spec.json.

    Defaults follow the seed (300 steps per photo) and common SD-1.5 face LoRA practice.
    """

    total_steps: int = 1500
    rank: int = 16
    alpha: float | None = None          # None → rank (scale 1)
    learning_rate: float = 1e-4
    trigger_words: str = DEFAULT_TRIGGER
    caption: str = "a photo of {trigger}"
    resolution: int = 512
    seed: int | None = None             # None → a random seed, stored in the spec
    batch_size: int = 1
    checkpoint_every: int = 250
    checkpoints_keep: int = 2
    random_masks: int = 3               # random-rectangle masks per photo, besides the face masks
    min_snr_gamma: float = 5.0
    mixed_precision: str = "auto"       # auto (fp16/bf16 on CUDA), no, fp16, bf16
    gradient_checkpointing: str = "auto"  # auto (on CUDA cards under 8 GiB), on, off
    max_grad_norm: float = 1.0

    RANGES = {"total_steps": (1, 1_000_000), "rank": (1, 256), "learning_rate": (1e-7, 1.0),
              "resolution": (64, 2048), "batch_size": (1, 64), "checkpoint_every": (1, 1_000_000),
              "checkpoints_keep": (1, 100), "random_masks": (0, 32), "min_snr_gamma": (0.0, 100.0),
              "seed": (0, 2**32 - 1), "alpha": (0.001, 4096.0), "max_grad_norm": (0.0, 1e6)}
    CHOICES = {"mixed_precision": ("auto", "no", "fp16", "bf16"),
               "gradient_checkpointing": ("auto", "on", "off")}

    def checked(self) -> "TrainOptions":
        """Validated copy (raises InvalidInput naming the field); never silently clamps."""
        for name, (lo, hi) in self.RANGES.items():
            value = getattr(self, name)
            if value is None and name in ("seed", "alpha"):
                continue
            kind = float if isinstance(lo, float) else int
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    (kind is int and not isinstance(value, int)) or not lo <= value <= hi:
                raise InvalidInput(name, value, f"{'a number' if kind is float else 'an integer'} "
                                                f"from {lo:g} to {hi:g}")
        for name, accepted in self.CHOICES.items():
            if getattr(self, name) not in accepted:
                raise InvalidInput(name, getattr(self, name), accepted)
        if self.resolution % 8:
            raise InvalidInput("resolution", self.resolution, "a multiple of 8 from 64 to 2048")
        words = self.trigger_words.strip() if isinstance(self.trigger_words, str) else ""
        if not words or len(words) > 100:
            raise InvalidInput("trigger_words", self.trigger_words, "1 to 100 characters")
        if not isinstance(self.caption, str) or "{trigger}" not in self.caption:
            raise InvalidInput("caption", self.caption, "text containing {trigger}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainOptions":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInput(unknown[0], data[unknown[0]], sorted(names), reason="unknown option")
        return cls(**data)


# --- small file helpers --------------------------------------------------------------------------

def job_dir(settings: Settings, code: str) -> Path:
    return settings.jobs_dir / codes.check_code(code, "code")


def _write_json(path: Path, data: dict) -> None:
    _write_text(path, json.dumps(data, indent=1, sort_keys=True, default=str))


def _write_text(path: Path, text: str) -> None:
    """temp file beside it + fsync + os.replace: readers see the old or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_status(job: Path, status: dict) -> dict:
    status = dict(status, updated_at=time.time())
    status.pop("queue_position", None)
    _write_json(Path(job) / STATUS, status)
    return status


def _raw_status(job: Path) -> dict | None:
    return _read_json(Path(job) / STATUS)


@contextmanager
def queue_lock(settings: Settings) -> Iterator[None]:
    from filelock import FileLock, Timeout
    settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.jobs_dir / LOCK_NAME))
    try:
        lock.acquire(timeout=LOCK_TIMEOUT_S)
    except Timeout:
        raise JobError(f"the job queue lock {settings.jobs_dir / LOCK_NAME} is held for more "
                       f"than {LOCK_TIMEOUT_S:.0f} s") from None
    try:
        yield
    finally:
        lock.release()


def log_tail(job: Path, lines: int = TAIL_LINES) -> str:
    try:
        with open(Path(job) / LOG, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _log(job: Path, message: str) -> None:
    """Supervisor notes go into the same log the trainer writes, so one file tells the story."""
    with suppress(OSError), open(Path(job) / LOG, "a", encoding="utf-8") as fh:
        fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [supervisor] {message}\n")


def checkpoints(job: Path) -> list[tuple[int, Path]]:
    found = []
    for p in Path(job).glob("checkpoint-*"):
        tail = p.name.split("-", 1)[1]
        if p.is_dir() and tail.isdigit() and (p / "state.json").is_file():
            found.append((int(tail), p))
    return sorted(found)


def latest_checkpoint(job: Path) -> tuple[int, Path] | None:
    found = checkpoints(job)
    return found[-1] if found else None


def cancel_requested(job: Path) -> bool:
    return (Path(job) / CANCEL_REQUEST).exists()


def _read_losses(path: Path) -> list[tuple[int, float]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    points = {}
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # being appended right now: whole on the next read
        step, _sep, loss = line.partition(",")
        with suppress(ValueError):
            points[int(step)] = float(loss)
    return sorted(points.items())


def loss_history(settings: Settings, code: str) -> list[tuple[int, float]]:
    """The loss curve so far as (step, loss), oldest first; empty before the first point."""
    return _read_losses(job_dir(settings, code) / LOSSES)


def cleanup_job(job: Path) -> None:
    """What a finished job keeps: spec, status, log and loss curve. The photos (a stranger's face) and
    the checkpoints go, as the seed's launch.bash removed its inputs and outputs."""
    job = Path(job)
    shutil.rmtree(job / PHOTOS, ignore_errors=True)
    for p in list(job.glob("checkpoint-*")) + list(job.glob(".checkpoint-*")) + list(job.glob("cache*")):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with suppress(OSError):
                p.unlink()
    with suppress(OSError):
        (job / CANCEL_REQUEST).unlink()


def heartbeat_interval(grace_s: float) -> float:
    """Well below the grace, so one late beat never looks like death."""
    return max(0.2, min(10.0, grace_s / 6.0))


# --- processes -----------------------------------------------------------------------------------

def _proc(pid):
    import psutil
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def pid_alive(pid, started_at: float | None = None) -> bool:
    """Alive and not a zombie, and (when known) the same process, not a recycled pid."""
    p = _proc(pid)
    if p is None:
        return False
    if started_at:
        with suppress(Exception):
            if abs(p.create_time() - float(started_at)) > 2.0:
                return False
    return True


def _pid_started(pid: int) -> float | None:
    p = _proc(pid)
    try:
        return p.create_time() if p else None
    except Exception:
        return None


def _kill_group(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(pid, sig)
    with suppress(ProcessLookupError, PermissionError, OSError):
        os.kill(pid, sig)


def _wait_dead(pid: int, started_at: float | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, started_at):
            return True
        time.sleep(0.05)
    return not pid_alive(pid, started_at)


def _trainer_env(settings: Settings) -> dict:
    env = dict(os.environ)
    env.update({
        "CARTOLINA_HOME": str(settings.home),
        "CARTOLINA_HEARTBEAT_GRACE_S": str(int(max(1, round(settings.heartbeat_grace_s)))),
        "CARTOLINA_MAX_PARALLEL_TRAININGS": str(settings.max_parallel_trainings),
        "CARTOLINA_DEVICE": settings.device,
        "CARTOLINA_DTYPE": settings.dtype,
        "CARTOLINA_CPU_BF16": settings.cpu_bf16,
        "CARTOLINA_CHANNELS_LAST": settings.channels_last,
        "CARTOLINA_COMPILE": settings.compile or "0",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])),
    })
    env.setdefault("HF_HUB_OFFLINE", "0" if settings.allow_hub else "1")
    return env


def spawn_trainer(settings: Settings, job: Path, *, die_with_parent: bool = False) -> subprocess.Popen:
    """Start the trainer on `job`: own session and process group, output to the job's log.

    `die_with_parent`: the trainer gets SIGTERM when the process that started it dies (Linux
    `PR_SET_PDEATHSIG`). A Celery worker's task starts it so: if the worker is killed, its
    trainer stops too (saving a checkpoint), and the re-delivered task resumes the job on
    another worker instead of racing a trainer nobody watches.
    """
    with open(job / LOG, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "engine.training.train_lora", "--job", str(job)],
            cwd=str(REPO_ROOT), env=_trainer_env(settings), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            preexec_fn=_term_with_parent if die_with_parent else None)


def _term_with_parent() -> None:
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start_trainer(settings: Settings, job: Path, st: dict, *, die_with_parent: bool = False,
                  by: str = "", **extra) -> subprocess.Popen:
    """Start the trainer of a queued job and write `running` with its pid and the next attempt
    (the caller holds the queue lock, so the trainer's own first write comes after)."""
    proc = spawn_trainer(settings, job, die_with_parent=die_with_parent)
    now = _now()
    attempt = int(st.get("attempt") or 0) + 1
    try:
        write_status(job, dict(st, state="running", pid=proc.pid, pid_started_at=_pid_started(proc.pid),
                               heartbeat_at=now, started_at=st.get("started_at") or now, attempt=attempt,
                               **extra))
    except BaseException:  # a full disk: no trainer runs that its job does not record
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    _log(job, f"trainer started{by}, pid {proc.pid}, attempt {attempt}")
    return proc


def kill_hung(pid: int, started_at: float | None) -> bool:
    """SIGKILL to a trainer alive but silent; True once it is provably gone."""
    _kill_group(pid, signal.SIGKILL)
    return _wait_dead(pid, started_at, 10.0)


def trainers_start_here(settings: Settings) -> bool:
    """With a broker (`CARTOLINA_BROKER_URL`), Celery workers start and watch the trainers,
    perhaps on other machines, where a pid means nothing: then `reconcile` only tidies files,
    and a cancel is a request the worker acts on."""
    return not settings.broker_url


# --- reading -------------------------------------------------------------------------------------

def _job_dirs(settings: Settings) -> list[Path]:
    if not settings.jobs_dir.is_dir():
        return []
    return [p for p in settings.jobs_dir.iterdir() if p.is_dir() and codes.is_code(p.name)]


_OPTIONAL_NUMBER = (int, float, type(None))
_OPTIONAL_INT = (int, type(None))
# The fields the queue itself reads, with their types; a job whose files break these is broken.
_SPEC_FIELDS = {"code": str, "submitted_ns": int, "base_model": str, "photos": list, "options": dict}
_STATUS_FIELDS = {"code": str, "state": str, "step": _OPTIONAL_INT, "total_steps": _OPTIONAL_INT,
                  "attempt": _OPTIONAL_INT, "pid": _OPTIONAL_INT, "loss": _OPTIONAL_NUMBER,
                  "eta_s": _OPTIONAL_NUMBER, "pid_started_at": _OPTIONAL_NUMBER,
                  "heartbeat_at": _OPTIONAL_NUMBER, "submitted_at": _OPTIONAL_NUMBER,
                  "started_at": _OPTIONAL_NUMBER, "finished_at": _OPTIONAL_NUMBER,
                  "error": (str, type(None))}
_REQUIRED = {SPEC: ("code", "submitted_ns"), STATUS: ("code", "state")}


def _file_problem(path: Path, fields_: dict) -> tuple[dict | None, str | None]:
    """(the file's object, None), or (None, what is wrong with it, in words)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"{path} is missing"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path} cannot be read ({exc})"
    except ValueError:
        return None, f"{path} is not valid JSON (truncated or garbage)"
    if not isinstance(data, dict):
        return None, f"{path} holds {type(data).__name__} {json.dumps(data)[:40]}, not an object"
    for name in _REQUIRED[path.name]:
        if name not in data:
            return None, f"{path} has no {name!r}"
    for name, kind in fields_.items():
        value = data.get(name)
        if name in data and (not isinstance(value, kind) or isinstance(value, bool)):
            return None, f"{path}: {name!r} is {json.dumps(value)[:40]}, the wrong type"
    if data["code"] != path.parent.name:
        return None, f"{path}: 'code' is {data['code']!r}, not the folder's {path.parent.name}"
    if path.name == STATUS and data["state"] not in STATES:
        return None, f"{path}: 'state' is {data['state']!r}, not one of {', '.join(STATES)}"
    return data, None


def _read_job(job: Path) -> tuple[dict | None, dict | None, str | None]:
    """(spec, status, None) of a sound job; (None, None, what is wrong) of a broken one."""
    spec, problem = _file_problem(job / SPEC, _SPEC_FIELDS)
    if problem:
        return None, None, problem
    st, problem = _file_problem(job / STATUS, _STATUS_FIELDS)
    return (spec, st, None) if not problem else (None, None, problem)


def _broken_status(job: Path, problem: str) -> dict:
    blank = dict.fromkeys(_STATUS_FIELDS)
    return dict(blank, code=job.name, state=BROKEN,
                error=f"{problem}. The job is left as it is; delete it with "
                      f"`python -m engine forget {job.name}`")


def _load_all(settings: Settings) -> list[tuple[Path, dict | None, dict]]:
    """(folder, spec, status) of every job in submission order; a broken job comes as
    (folder, None, its `broken` status), in the order its folder was made."""
    out = []
    for job in _job_dirs(settings):
        spec, st, problem = _read_job(job)
        if problem:
            with suppress(OSError):
                out.append((job, None, _broken_status(job, problem), job.stat().st_mtime_ns))
            continue
        out.append((job, spec, st, spec["submitted_ns"]))
    out.sort(key=lambda t: (t[3], t[0].name))
    return [t[:3] for t in out]


def _with_positions(rows: list[tuple[Path, dict, dict]]) -> list[dict]:
    result, position = [], 0
    for _job, _spec, st in rows:
        st = dict(st)
        if st.get("state") == "queued":
            position += 1
            st["queue_position"] = position
        else:
            st["queue_position"] = None
        result.append(st)
    return result


def read_status(settings: Settings, code: str) -> dict:
    """The job's status as last written, with `queue_position`; no side effects."""
    code = codes.check_code(code, "code")
    job = settings.jobs_dir / code
    if not job.is_dir():
        raise NotFound(f"code: no training job {code}")
    for st in _with_positions(_load_all(settings)):
        if st.get("code") == code:
            return st
    raise NotFound(f"code: no training job {code}")


def status(settings: Settings, code: str) -> dict:
    """What the UI and the command line call: settle the queue, then read."""
    reconcile(settings)
    return read_status(settings, code)


def list_jobs(settings: Settings, *, settle: bool = True) -> list[dict]:
    if settle:
        reconcile(settings)
    return _with_positions(_load_all(settings))


# --- submit --------------------------------------------------------------------------------------

def _now() -> float:
    return time.time()


def submit(photos: Sequence, settings: Settings, options: TrainOptions | None = None, *,
           rules=None, start: bool = True) -> dict:
    """Check the photos, create the job, start it or queue it; returns its status at once.

    Bad photos raise `PhotoCheckFailed` (one reason per photo) and create nothing.
    """
    from engine.training.photos import PhotoRules, check_photos

    if options is None:
        options = TrainOptions(total_steps=settings.steps_per_photo * max(1, len(photos)))
    options = options.checked()
    rules = rules or PhotoRules.from_settings(settings, resolution=options.resolution)
    checked = check_photos(photos, rules)
    base = settings.resolve_model(settings.inpaint_model)
    if not Path(base).exists():
        raise ModelError(f"CARTOLINA_INPAINT_MODEL: {settings.inpaint_model!r} not found at {base}; "
                         "run `python -m engine demo` for the demo models")
    if options.seed is None:
        import secrets
        options = TrainOptions(**dict(options.to_dict(), seed=secrets.randbelow(2**31)))

    settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    with disk_full_guard(settings.jobs_dir), queue_lock(settings):
        code = codes.new_code(lambda c: (settings.jobs_dir / c).exists() or
                                        (settings.loras_dir / c).exists())
        # Built in a hidden folder and renamed: a job appears whole or not at all.
        stage = Path(tempfile.mkdtemp(prefix=f".new-{code}-", dir=settings.jobs_dir))
        try:
            (stage / PHOTOS).mkdir()
            entries = []
            for i, photo in enumerate(checked):
                name = f"{PHOTOS}/photo_{i}.png"
                photo.image.save(stage / name, format="PNG")
                entries.append(photo.to_spec(name))
            now = _now()
            spec = {"code": code, "submitted_at": now, "submitted_ns": time.time_ns(),
                    "base_model": str(Path(base).resolve()), "base_model_name": settings.inpaint_model,
                    "photos": entries, "options": options.to_dict()}
            _write_json(stage / SPEC, spec)
            write_status(stage, {"code": code, "state": "queued", "step": 0,
                                 "total_steps": options.total_steps, "loss": None, "eta_s": None,
                                 "pid": None, "pid_started_at": None, "heartbeat_at": None,
                                 "error": None, "attempt": 0, "submitted_at": now,
                                 "started_at": None, "finished_at": None})
            (stage / LOG).touch()
            os.replace(stage, settings.jobs_dir / code)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        _log(settings.jobs_dir / code, f"job {code} submitted: {len(checked)} photos, "
                                       f"{options.total_steps} steps, rank {options.rank}")
    if start:
        reconcile(settings)
    return read_status(settings, code)


# --- reconcile -----------------------------------------------------------------------------------

def finish(job: Path, st: dict, state: str, error: str | None) -> dict:
    st = dict(st, state=state, error=error, eta_s=None, finished_at=_now(), pid=None)
    write_status(job, st)
    cleanup_job(job)
    return st


def settle_dead(settings: Settings, job: Path, st: dict, why: str) -> str:
    """A trainer is gone without a final word: cancel, resume, or fail. Returns the new state."""
    if cancel_requested(job):
        _log(job, f"{why}; the job was being cancelled")
        finish(job, st, "cancelled", "cancelled")
        return "cancelled"
    ckpt = latest_checkpoint(job)
    attempt = int(st.get("attempt") or 1)
    if ckpt and attempt < MAX_ATTEMPTS:
        _log(job, f"{why}; will resume from {ckpt[1].name} (attempt {attempt + 1} of {MAX_ATTEMPTS})")
        write_status(job, dict(st, state="queued", pid=None, pid_started_at=None, eta_s=None,
                               step=ckpt[0], error=f"resuming after: {why}"))
        return "queued"
    reason = why if not ckpt else f"{why} (attempt {attempt} of {MAX_ATTEMPTS})"
    if not ckpt:
        reason += "; no checkpoint to resume from"
    _log(job, f"{reason}; the job has failed")
    tail = log_tail(job)
    finish(job, st, "failed", reason + ("\n--- end of log.txt ---\n" + tail if tail else ""))
    return "failed"


def reconcile(settings: Settings) -> dict:
    """Settle dead or stale trainers and start queued jobs while slots are free.

    Returns what it did: {"resumed": [...], "failed": [...], "cancelled": [...], "started": [...],
    "discarded": [...]} (the last: half-built jobs of a killed `submit`, photos and all).
    Safe to call from any process at any time; everything happens under the queue lock.
    """
    report = {"resumed": [], "failed": [], "cancelled": [], "started": [], "discarded": []}
    if not settings.jobs_dir.is_dir():
        return report
    grace = float(settings.heartbeat_grace_s)
    # A full disk stops the round as DiskFull; a job that could not start stays queued.
    with disk_full_guard(settings.jobs_dir), queue_lock(settings):
        # `submit` builds a job in `.new-*` holding this lock: any found now is a leftover.
        for stage in settings.jobs_dir.glob(".new-*"):
            shutil.rmtree(stage, ignore_errors=True)
            report["discarded"].append(stage.name)
        rows = _load_all(settings)
        for job, _spec, st in rows:
            if st.get("state") in FINISHED and ((job / PHOTOS).exists() or checkpoints(job)):
                cleanup_job(job)  # a trainer died while cleaning up
        if not trainers_start_here(settings):
            return report
        running = 0
        for job, _spec, st in rows:
            if st.get("state") != "running":
                continue
            pid, started = st.get("pid"), st.get("pid_started_at")
            beat = st.get("heartbeat_at") or st.get("started_at") or 0
            age = _now() - float(beat)
            alive = pid_alive(pid, started)
            if alive and age <= grace:
                running += 1
                continue
            if alive:
                why = f"no heartbeat from trainer pid {pid} for {age:.0f} s (grace {grace:.0f} s)"
                if not kill_hung(pid, started):
                    running += 1  # cannot prove it dead: leave it, try again next time
                    _log(job, f"{why}; it survives SIGKILL, leaving it for now")
                    continue
            else:
                why = f"trainer pid {pid} ended without a final status"
            new = settle_dead(settings, job, st, why)
            report[{"queued": "resumed"}.get(new, new)].append(job.name)
        for job, _spec, _st in _load_all(settings):
            st = _read_job(job)[1]
            if running >= settings.max_parallel_trainings:
                break
            if not st or st.get("state") != "queued":
                continue
            if cancel_requested(job):
                finish(job, st, "cancelled", "cancelled while queued")
                report["cancelled"].append(job.name)
                continue
            try:
                proc = start_trainer(settings, job, st)
            except OSError as exc:
                if is_disk_full(exc):
                    raise  # not the job's fault: it starts once there is room
                finish(job, st, "failed", f"cannot start the trainer: {exc}")
                report["failed"].append(job.name)
                continue
            # Not waited for: a daemon thread reaps it if it ends while this process lives (no
            # zombie); if this process ends first, init adopts it.
            threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
            report["started"].append(job.name)
            running += 1
    return report


# --- cancel and wait -----------------------------------------------------------------------------

def cancel(settings: Settings, code: str, grace_s: float = CANCEL_GRACE_S) -> dict:
    """Cancel a queued or running job; returns its final status.

    A running trainer gets SIGTERM on its process group and writes `cancelled` itself; after
    `grace_s` the group gets SIGKILL and the supervisor writes it. Either way the slot is
    freed and the next queued job starts.
    """
    code = codes.check_code(code, "code")
    job = settings.jobs_dir / code
    with queue_lock(settings):
        if not job.is_dir():
            raise NotFound(f"code: no training job {code}")
        _spec, st, problem = _read_job(job)
        if problem:
            raise Conflict(f"code: job {code} is broken ({problem}); it cannot be cancelled, "
                           f"only deleted with `python -m engine forget {code}`")
        if st.get("state") in FINISHED:
            raise Conflict(f"code: job {code} has already {st['state']}; a finished job cannot change")
        (job / CANCEL_REQUEST).touch()
        if st.get("state") == "queued":
            _log(job, "cancelled while queued")
            finish(job, st, "cancelled", "cancelled while queued")
            pid = started = None
        elif not trainers_start_here(settings):
            _log(job, "cancel requested: the worker running the trainer stops it")
            pid = started = None
        else:
            pid, started = st.get("pid"), st.get("pid_started_at")
            _log(job, f"cancel requested: SIGTERM to the process group of pid {pid}")
            if pid_alive(pid, started):
                _kill_group(pid, signal.SIGTERM)
    if not trainers_start_here(settings):
        # The trainer is a worker's child, perhaps on another machine: the worker sees the
        # request at its next look and stops it, which writes `cancelled`. Wait for that.
        deadline = time.monotonic() + grace_s + 2 * float(settings.heartbeat_grace_s)
        while time.monotonic() < deadline and (_raw_status(job) or {}).get("state") not in FINISHED:
            time.sleep(0.1)
        return read_status(settings, code)
    if pid:
        # The trainer writes `cancelled`, cleans up, starts the next job and exits: wait for
        # the exit, not just the status, so "cancelled" also means "the process is gone".
        _wait_dead(pid, started, grace_s)
        if pid_alive(pid, started):
            _log(job, f"trainer pid {pid} still alive {grace_s:.0f} s after SIGTERM: SIGKILL")
            _kill_group(pid, signal.SIGKILL)
            _wait_dead(pid, started, 10.0)
        with queue_lock(settings):
            st = _raw_status(job) or {}
            if st.get("state") not in FINISHED:
                finish(job, st, "cancelled", "cancelled")
    reconcile(settings)
    return read_status(settings, code)


def wait(settings: Settings, code: str, timeout: float | None = None,
         on_status: Callable[[dict], None] | None = None, poll_s: float = 0.5) -> dict:
    """Block until the job finishes (or `timeout` passes), settling the queue as it goes,
    so a stale trainer is noticed even when no app is running."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last_reconcile = 0.0
    last = None
    while True:
        if time.monotonic() - last_reconcile >= max(poll_s, 2.0):
            reconcile(settings)
            last_reconcile = time.monotonic()
        st = read_status(settings, code)
        key = (st.get("state"), st.get("step"), st.get("queue_position"), st.get("attempt"))
        if on_status and key != last:
            on_status(st)
        last = key
        if st.get("state") in ENDED:
            return st
        if deadline is not None and time.monotonic() > deadline:
            raise JobError(f"job {code} still {st.get('state')} after {timeout:.0f} s")
        time.sleep(poll_s)


# --- the trainer's side --------------------------------------------------------------------------

class LossLog:
    """The trainer's loss curve, for the page's chart. One `step,loss` line per `stride` steps
    (their mean: one step's loss is mostly the noise of its random timestep), so any run keeps
    at most MAX_LOSS_POINTS lines. Each line is one `write` on an append-only file, and a reader
    skips a last line that has no newline yet, so nobody reads a torn line."""

    def __init__(self, job: Path, total_steps: int, resumed_at: int = 0):
        self.path = Path(job) / LOSSES
        self.stride = max(1, math.ceil(total_steps / MAX_LOSS_POINTS))
        self.total_steps = total_steps
        self._window: list[float] = []
        # A killed attempt may have logged steps past the checkpoint it resumes from; they are
        # trained again, so they go (one atomic rewrite: a reader sees the old file or this one).
        kept = [(s, v) for s, v in _read_losses(self.path) if s <= resumed_at]
        _write_text(self.path, "step,loss\n" + "".join(f"{s},{v!r}\n" for s, v in kept))

    def add(self, step: int, loss: float) -> None:
        self._window.append(loss)
        if step % self.stride and step != self.total_steps:
            return
        line = f"{step},{sum(self._window) / len(self._window)!r}\n".encode()
        self._window.clear()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


class StatusWriter:
    """The trainer's pen: progress updates plus a heartbeat thread, one lock between them."""

    def __init__(self, job: Path, status: dict, interval_s: float, min_write_s: float = 0.5):
        self.job = Path(job)
        self.status = dict(status)
        self.interval_s = interval_s
        self.min_write_s = min_write_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_write = 0.0
        self._thread: threading.Thread | None = None

    def update(self, force: bool = False, **changes) -> None:
        with self._lock:
            self.status.update(changes)
            now = time.monotonic()
            if force or now - self._last_write >= self.min_write_s:
                self._write_locked()

    def _write_locked(self) -> None:
        self.status["heartbeat_at"] = time.time()
        self.status = write_status(self.job, self.status)
        self._last_write = time.monotonic()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                if self._stop.is_set():
                    return
                with suppress(OSError):
                    self._write_locked()

    def start(self) -> "StatusWriter":
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
