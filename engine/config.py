"""Settings, read once from the environment into one frozen dataclass.

Every path the engine touches is derived from a single data root (`CARTOLINA_HOME`), so the
tests can point the whole studio at a temporary folder and never touch the repo's files, and
an operator can keep the catalog, LoRAs and pictures on a separate disk.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.errors import InvalidInput

REPO_ROOT = Path(__file__).resolve().parent.parent

DEVICES = ("auto", "cpu", "cuda", "mps")
SWITCHES = ("auto", "on", "off")
DTYPES = ("auto", "float32", "float16", "bfloat16")
MODES = ("studio", "kiosk")

LOCALES_DIR = REPO_ROOT / "locales"

DEMO_INPAINT = "demo/sd-inpaint"
DEMO_CONTROLNET = "demo/controlnet-openpose"


@dataclass(frozen=True)
class Settings:
    home: Path = REPO_ROOT
    device: str = "auto"
    dtype: str = "auto"
    mode: str = "studio"
    # Model locations: a folder (absolute, or relative to models/), a single .safetensors
    # checkpoint, or a hub id (only used when allow_hub is on).
    inpaint_model: str = DEMO_INPAINT
    controlnet_model: str = DEMO_CONTROLNET
    allow_hub: bool = False
    # A single-file checkpoint's diffusers configs and tokenizer (a folder, weights not needed),
    # so it loads offline; empty: the folder `models fetch` writes (engine.model_store).
    inpaint_config: str = ""
    controlnet_config: str = ""
    # Small-GPU memory options.
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False
    # Speed (engine.precision, engine.speedups, docs/deployment.md): bf16 autocast on a CPU
    # (auto: where the CPU has native bf16), NHWC convolutions (auto: on CUDA), and the
    # torch.compile backend ("" off; CARTOLINA_COMPILE=1 is "inductor").
    cpu_bf16: str = "auto"
    channels_last: str = "auto"
    compile: str = ""
    # Fast mode: a few-step LCM scheduler (with an LCM-LoRA fused into the UNet when one is
    # found) and the tiny autoencoder; empty locations: the folders beside the inpainting model.
    fast: bool = False
    fast_steps: int = 6
    fast_lora: str = ""
    tiny_vae: str = ""
    # Upload and image limits.
    max_upload_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_image_side: int = 4096
    # Training.
    photos_min: int = 5
    photos_max: int = 5
    steps_per_photo: int = 300
    max_parallel_trainings: int = 1
    heartbeat_grace_s: float = 60.0
    # Likeness (engine.likeness, dlib's face model): two faces closer than face_threshold are
    # one person (dlib's own threshold): the photo check's "same person", and a painted face
    # past it has a low likeness; under face_close the likeness is high and the face pass stops
    # trying. face_tries: seeds the face pass may try, keeping the closest. face_validation:
    # photos held back from training, whose faces the trainer paints at each checkpoint to keep
    # the closest checkpoint (0: no validation, the last checkpoint is kept), in
    # face_validation_steps inpainting steps each.
    face_threshold: float = 0.6
    face_close: float = 0.45
    face_tries: int = 1
    face_validation: int = 1
    face_validation_steps: int = 20
    lora_cache_size: int = 4
    public_url: str = ""  # e.g. http://kiosk.local:8501 — base of links put in QR codes
    # Seconds between a page's reads of an active job's status. Each read costs the server a
    # script run and the browser a redraw; at 5 s, three tabs following a training left it
    # ×0.95 of its speed, at 2 s ×0.86 (docs/benchmarks.md).
    poll_s: int = 5
    language: str = "en"  # the visitor pages' default language (a catalog under locales/)
    idle_s: int = 120  # kiosk mode: an untouched screen goes back to a clean welcome page
    # Seconds between the supervisor's rounds (engine.supervisor): a dead trainer is settled and
    # the next job started within this long, with nobody watching the queue.
    supervise_s: int = 10
    # The curators' password; repr=False keeps it out of logs, tracebacks and cache keys.
    curator_password: str = field(default="", repr=False)
    retention_days: int = 30  # LoRAs, jobs and pictures older than this are deleted (engine.retention)
    # Pictures as Celery tasks on this Redis (engine.backends.celery_pictures); empty: the embedded line.
    # repr=False: a URL may carry Redis's password.
    broker_url: str = field(default="", repr=False)
    # Celery backend: seconds after which Redis gives a picture whose worker vanished to another
    # worker; longer than any picture (a picture is stopped 5 s before it). PACKAGES.md.
    visibility_timeout_s: int = 3600
    # The HTTP API (api/, docs/api.md). Its bearer token: a kiosk serves no API without one; in
    # studio mode, without one, only loopback clients are answered. repr=False, as for passwords.
    api_token: str = field(default="", repr=False)
    api_origins: tuple[str, ...] = ()  # origins a browser may call it from (CORS); none: no CORS
    api_rate_per_min: int = 300  # requests a minute per client address; past it 429
    extra: dict = field(default_factory=dict)

    # Folders under the data root -------------------------------------------------------
    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog_db.json"

    @property
    def assets_dir(self) -> Path:
        return self.home / "assets"

    @property
    def loras_dir(self) -> Path:
        return self.home / "loras"

    @property
    def outputs_dir(self) -> Path:
        return self.home / "outputs"

    @property
    def records_dir(self) -> Path:
        """How each picture was made, LoRA code included: never served, unlike outputs/."""
        return self.home / "records"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def demo_models_dir(self) -> Path:
        return self.models_dir / "demo"

    @property
    def uses_demo_models(self) -> bool:
        return self.inpaint_model == DEMO_INPAINT and self.controlnet_model == DEMO_CONTROLNET

    def resolve_model(self, location: str) -> str:
        """A folder or file under models/ (or absolute) as a path; anything else unchanged."""
        p = Path(location)
        if p.is_absolute():
            return str(p)
        local = self.models_dir / p
        if local.exists() or not self.allow_hub or location.startswith(("demo/", "./")):
            return str(local)
        return location

    def ensure_dirs(self) -> None:
        for d in (self.assets_dir, self.loras_dir, self.outputs_dir, self.records_dir, self.models_dir,
                  self.jobs_dir):
            d.mkdir(parents=True, exist_ok=True)

    def with_home(self, home: Path | str) -> "Settings":
        return replace(self, home=Path(home).resolve())


@functools.cache
def available_languages() -> tuple[str, ...]:
    """English (the source text) and every language with a compiled catalog, which set-up
    builds from `locales/<lang>/LC_MESSAGES/messages.po` (`pybabel compile`) before the
    server starts; read once per process, since every translated text asks."""
    compiled = sorted(p.parent.parent.name for p in LOCALES_DIR.glob("*/LC_MESSAGES/messages.mo"))
    return ("en", *(lang for lang in compiled if lang != "en"))


def _choice(env: dict, name: str, default: str, accepted: tuple[str, ...]) -> str:
    value = env.get(name, default).strip().lower()
    if value not in accepted:
        raise InvalidInput(name, value, accepted)
    return value


def _int(env: dict, name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(name, raw, f"an integer from {lo} to {hi}") from None
    if not lo <= value <= hi:
        raise InvalidInput(name, raw, f"an integer from {lo} to {hi}")
    return value


def _float(env: dict, name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(name, raw, f"a number from {lo:g} to {hi:g}") from None
    if not lo <= value <= hi:  # NaN fails the comparison too
        raise InvalidInput(name, raw, f"a number from {lo:g} to {hi:g}")
    return value


def _face_close(env: dict, threshold: float) -> float:
    """Close enough for a high likeness: strictly under the same-person threshold."""
    close = _float(env, "CARTOLINA_FACE_CLOSE", min(0.45, round(threshold - 0.05, 3)), 0.05, 1.0)
    if close >= threshold:
        raise InvalidInput("CARTOLINA_FACE_CLOSE", env.get("CARTOLINA_FACE_CLOSE"),
                           f"a number from 0.05 to under CARTOLINA_FACE_THRESHOLD ({threshold:g})",
                           reason="not under the same-person threshold")
    return close


def _bool(env: dict, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(name, raw, "1/0, true/false, yes/no, on/off")


def _compile_backend(env: dict, name: str = "CARTOLINA_COMPILE") -> str:
    """1/on → torch's default compiler (inductor), 0/off → none, or a backend by name (checked
    against torch's list when the models load: reading settings never imports torch)."""
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return ""
    if raw in ("1", "true", "yes", "on"):
        return "inductor"
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", raw):
        raise InvalidInput(name, raw, "1/0, on/off, or a torch.compile backend name (e.g. inductor)")
    return raw


def _secret(env: dict, name: str) -> str:
    """NAME, or the contents of the file NAME_FILE points to: the form Docker and compose
    secrets take (a file under /run/secrets/), so the value never sits in an environment
    that `docker inspect` shows. Errors name the variable, never the value."""
    path = env.get(f"{name}_FILE")
    if not path:
        return env.get(name) or ""
    if env.get(name):
        raise InvalidInput(f"{name}_FILE", path, reason=f"set together with {name}",
                           accepted=f"only one of {name} and {name}_FILE")
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{name}_FILE", path, reason=f"cannot read it ({type(exc).__name__})",
                           accepted="a readable UTF-8 file holding the secret") from None


BROKER_SCHEMES = ("redis://", "rediss://")


def _broker_url(env: dict, name: str = "CARTOLINA_BROKER_URL") -> str:
    """A Redis URL, or empty. The error names the variable and shows only the scheme, never a
    password the URL may carry."""
    raw = (env.get(name) or "").strip()
    if raw and not (raw.lower().startswith(BROKER_SCHEMES) and len(raw) > len(raw.split("://")[0]) + 3):
        shown = raw.split("://")[0] + "://…" if "://" in raw else "(not a URL)"
        raise InvalidInput(name, shown, "redis://host:port/db or rediss://host:port/db",
                           reason="not a Redis URL")
    return raw


API_TOKEN_MIN = 16
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def _api_token(env: dict, name: str = "CARTOLINA_API_TOKEN") -> str:
    """The API's bearer token (or a file holding it, NAME_FILE), long enough not to be guessed;
    an error names the variable and the length, never the value."""
    token = _secret(env, name).strip()
    if token and (len(token) < API_TOKEN_MIN or any(c.isspace() or not c.isprintable() for c in token)):
        raise InvalidInput(name, f"({len(token)} characters, not shown)",
                           f"at least {API_TOKEN_MIN} printable characters without spaces "
                           "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')",
                           reason="too weak a token")
    return token


def _origins(env: dict, name: str = "CARTOLINA_API_ORIGINS") -> tuple[str, ...]:
    """Comma-separated origins (scheme://host[:port], no path, no wildcard)."""
    origins = []
    for part in (env.get(name) or "").split(","):
        origin = part.strip().rstrip("/")
        if not origin:
            continue
        if not _ORIGIN.match(origin):
            raise InvalidInput(name, origin, "origins such as https://museum.example or "
                                             "http://localhost:3000, separated by commas",
                               reason="not an origin")
        origins.append(origin)
    return tuple(dict.fromkeys(origins))


def load_settings(env: dict | None = None) -> Settings:
    """Build settings from an environment mapping (default: `os.environ`)."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("CARTOLINA_HOME") or REPO_ROOT).expanduser().resolve()
    photos_min = _int(env, "CARTOLINA_PHOTOS_MIN", 5, 1, 50)
    photos_max = _int(env, "CARTOLINA_PHOTOS_MAX", max(5, photos_min), photos_min, 50)
    face_threshold = _float(env, "CARTOLINA_FACE_THRESHOLD", 0.6, 0.2, 1.2)
    return Settings(
        home=home,
        device=_choice(env, "CARTOLINA_DEVICE", "auto", DEVICES),
        dtype=_choice(env, "CARTOLINA_DTYPE", "auto", DTYPES),
        mode=_choice(env, "CARTOLINA_MODE", "studio", MODES),
        inpaint_model=env.get("CARTOLINA_INPAINT_MODEL") or DEMO_INPAINT,
        controlnet_model=env.get("CARTOLINA_CONTROLNET_MODEL") or DEMO_CONTROLNET,
        allow_hub=_bool(env, "CARTOLINA_ALLOW_HUB", False),
        inpaint_config=env.get("CARTOLINA_INPAINT_CONFIG") or "",
        controlnet_config=env.get("CARTOLINA_CONTROLNET_CONFIG") or "",
        attention_slicing=_bool(env, "CARTOLINA_ATTENTION_SLICING", False),
        vae_tiling=_bool(env, "CARTOLINA_VAE_TILING", False),
        cpu_offload=_bool(env, "CARTOLINA_CPU_OFFLOAD", False),
        cpu_bf16=_choice(env, "CARTOLINA_CPU_BF16", "auto", SWITCHES),
        channels_last=_choice(env, "CARTOLINA_CHANNELS_LAST", "auto", SWITCHES),
        compile=_compile_backend(env),
        fast=_bool(env, "CARTOLINA_FAST", False),
        fast_steps=_int(env, "CARTOLINA_FAST_STEPS", 6, 1, 50),
        fast_lora=env.get("CARTOLINA_FAST_LORA") or "",
        tiny_vae=env.get("CARTOLINA_TINY_VAE") or "",
        max_upload_bytes=_int(env, "CARTOLINA_MAX_UPLOAD_MB", 25, 1, 500) * 1024 * 1024,
        max_image_pixels=_int(env, "CARTOLINA_MAX_IMAGE_PIXELS", 40_000_000, 10_000, 400_000_000),
        max_image_side=_int(env, "CARTOLINA_MAX_IMAGE_SIDE", 4096, 64, 20000),
        photos_min=photos_min,
        photos_max=photos_max,
        steps_per_photo=_int(env, "CARTOLINA_STEPS_PER_PHOTO", 300, 1, 100_000),
        max_parallel_trainings=_int(env, "CARTOLINA_MAX_PARALLEL_TRAININGS", 1, 1, 16),
        heartbeat_grace_s=float(_int(env, "CARTOLINA_HEARTBEAT_GRACE_S", 60, 1, 3600)),
        face_threshold=face_threshold,
        face_close=_face_close(env, face_threshold),
        face_tries=_int(env, "CARTOLINA_FACE_TRIES", 1, 1, 10),
        face_validation=_int(env, "CARTOLINA_FACE_VALIDATION", 1, 0, 10),
        face_validation_steps=_int(env, "CARTOLINA_FACE_VALIDATION_STEPS", 20, 1, 100),
        lora_cache_size=_int(env, "CARTOLINA_LORA_CACHE_SIZE", 4, 1, 64),
        public_url=(env.get("CARTOLINA_PUBLIC_URL") or "").rstrip("/"),
        poll_s=_int(env, "CARTOLINA_POLL_S", 5, 1, 60),
        language=_choice(env, "CARTOLINA_LANGUAGE", "en", available_languages()),
        idle_s=_int(env, "CARTOLINA_IDLE_S", 120, 2, 86_400),
        supervise_s=_int(env, "CARTOLINA_SUPERVISE_S", 10, 1, 3600),
        curator_password=_secret(env, "CARTOLINA_CURATOR_PASSWORD"),
        retention_days=_int(env, "CARTOLINA_RETENTION_DAYS", 30, 1, 3650),
        broker_url=_broker_url(env),
        visibility_timeout_s=_int(env, "CARTOLINA_VISIBILITY_TIMEOUT_S", 3600, 30, 7 * 86_400),
        api_token=_api_token(env),
        api_origins=_origins(env),
        api_rate_per_min=_int(env, "CARTOLINA_API_RATE_PER_MIN", 300, 1, 100_000),
    )
