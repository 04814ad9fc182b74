"""Real models on disk: which ones, where `models fetch` puts them, and what loads them offline.

The studio never reaches a model hub at run time. `python -m engine models fetch` is the one
explicit online step: it copies a hub repository into `models/<repo id>/`, so the same string
works as `CARTOLINA_INPAINT_MODEL` afterwards (`Settings.resolve_model` finds the folder
first). Only what a pipeline loads comes down: configs, the tokenizer, and one set of
`.safetensors` weights per component, fp16 where the repository has it (half the download; the
pipeline casts to `CARTOLINA_DTYPE` anyway). Never pickles (`.bin`, `.ckpt`), the safety
checker (the studio does not run it) or the repository's extra single-file checkpoints.

A single-file checkpoint holds weights only: diffusers needs the diffusers-format configs and
the tokenizer beside it, and would fetch them from a hub. Here they come from
`CARTOLINA_INPAINT_CONFIG` / `CARTOLINA_CONTROLNET_CONFIG`, or else from the folder `models
fetch` writes (`--configs-only` brings just those, about 2 MB).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from engine.config import Settings
from engine.errors import InvalidInput, ModelError

# The SD-1.5 inpainting weights RunwayML published, kept by the `stable-diffusion-v1-5`
# organisation since RunwayML's own repository was taken down (CreativeML OpenRAIL-M, which
# allows commercial use); and lllyasviel's ControlNet 1.1 openpose for SD 1.5 (OpenRAIL).
DEFAULT_INPAINT_ID = "stable-diffusion-v1-5/stable-diffusion-inpainting"
DEFAULT_CONTROLNET_ID = "lllyasviel/control_v11p_sd15_openpose"


@dataclass(frozen=True)
class Role:
    """One of the two models the studio loads, with every name an operator meets for it."""

    name: str
    variable: str
    config_variable: str
    default_id: str
    marker: str  # the file that makes a folder a diffusers config for this role

    def location(self, settings: Settings) -> str:
        return getattr(settings, f"{self.name}_model")

    def configured_config(self, settings: Settings) -> str:
        return getattr(settings, f"{self.name}_config")


INPAINT = Role("inpaint", "CARTOLINA_INPAINT_MODEL", "CARTOLINA_INPAINT_CONFIG", DEFAULT_INPAINT_ID,
               "model_index.json")
CONTROLNET = Role("controlnet", "CARTOLINA_CONTROLNET_MODEL", "CARTOLINA_CONTROLNET_CONFIG",
                  DEFAULT_CONTROLNET_ID, "config.json")
ROLES = (INPAINT, CONTROLNET)

FP16 = "fp16"
# diffusers' and transformers' weight names, plain or fp16, whole or sharded.
_WEIGHTS = re.compile(r"(?:diffusion_pytorch_model|model)(?P<fp16>\.fp16)?(?:-\d{5}-of-\d{5})?\.safetensors")
# Configs, and the tokenizer's vocab.json/merges.txt; a .txt at the root is a licence or notes.
_CONFIG_SUFFIXES = (".json", ".txt")
UNUSED_COMPONENTS = {"safety_checker"}  # the studio passes safety_checker=None


# --- loading offline -------------------------------------------------------------------------

def weights_variant(folder: str | Path) -> str | None:
    """The variant to ask diffusers for: fp16 when the folder holds fp16 files (what `models
    fetch` brings), since diffusers finds them only when asked, and falls back to the plain
    files for a component that has no fp16 ones."""
    folder = Path(folder)
    return FP16 if folder.is_dir() and any(folder.rglob(f"*.{FP16}.safetensors")) else None


def single_file_config(settings: Settings, role: Role) -> Path:
    """The local diffusers folder whose configs shape a single-file checkpoint of this role."""
    configured = role.configured_config(settings)
    if configured:
        folder = Path(configured) if Path(configured).is_absolute() else settings.models_dir / configured
        if not (folder / role.marker).is_file():
            raise ModelError(f"{role.config_variable}: {configured!r} has no {role.marker} at {folder}; "
                             "accepted: a folder in diffusers layout (configs and tokenizer; weights "
                             "not needed), absolute or under models/")
        return folder
    folder = settings.models_dir / role.default_id
    if (folder / role.marker).is_file():
        return folder
    raise ModelError(f"{role.variable}: {role.location(settings)!r} is a single-file checkpoint, "
                     "which needs its diffusers configs to load offline; run `python -m engine models "
                     f"fetch --configs-only` once on a machine that is online (about 2 MB into {folder}), "
                     f"or set {role.config_variable} to a diffusers folder of the same architecture")


# --- fetching --------------------------------------------------------------------------------

def fetch_folder(settings: Settings, repo_id: str) -> Path:
    return settings.models_dir / repo_id


def select_files(filenames: list[str], configs_only: bool = False) -> list[str]:
    """What a pipeline loads from a repository listing: configs and tokenizer files of the
    root and each component folder, plus one set of safetensors weights per folder."""
    chosen, weights = [], {}
    for name in filenames:
        parts = name.split("/")
        if len(parts) > 2 or parts[0] in UNUSED_COMPONENTS:
            continue
        folder, base = ("", parts[0]) if len(parts) == 1 else parts
        if base.endswith(_CONFIG_SUFFIXES if folder else ".json"):
            chosen.append(name)
        elif (m := _WEIGHTS.fullmatch(base)) and not configs_only:
            weights.setdefault(folder, {}).setdefault(bool(m["fp16"]), []).append(name)
    for by_kind in weights.values():
        chosen += by_kind.get(True) or by_kind[False]
    return sorted(chosen)


@contextlib.contextmanager
def _online() -> Iterator[None]:
    """huggingface_hub reads HF_HUB_OFFLINE once, at import, into a constant that every
    request checks; the studio sets it for the whole process so nothing else goes online.
    Fetch is the operator's explicit online command, so it lifts the flag for its own calls."""
    from huggingface_hub import constants
    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def fetch(settings: Settings, role: Role, repo_id: str, configs_only: bool = False) -> dict:
    """Download (or finish downloading) one repository into models/<repo_id>/.

    huggingface_hub keeps partial files under the folder's `.cache/` and resumes them, and
    skips files already complete, so running fetch again after an interruption is the fix.
    """
    from engine.diskfull import disk_full_guard
    from httpx2 import TransportError
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError)

    endpoint = os.environ.get("HF_ENDPOINT") or None  # read now: the library read it at import
    target = fetch_folder(settings, repo_id)
    with _online():
        try:
            info = HfApi(endpoint=endpoint).model_info(repo_id)
            files = select_files([s.rfilename for s in info.siblings or []], configs_only)
            _check_listing(role, repo_id, files, configs_only)
            with disk_full_guard(target):
                snapshot_download(repo_id, revision=info.sha, local_dir=target, allow_patterns=files,
                                  endpoint=endpoint, max_workers=4)
        except GatedRepoError as exc:
            raise ModelError(f"{repo_id}: the hub wants a token for this model; accept its licence "
                             "on the hub, then set HF_TOKEN and run fetch again") from exc
        except RepositoryNotFoundError as exc:
            raise InvalidInput(f"--{role.name}", repo_id, reason="no such model on the hub") from exc
        except HfHubHTTPError as exc:
            raise ModelError(f"the model hub failed to serve {repo_id} ({_reason(exc)}); run fetch "
                             "again later: it resumes where it stopped") from exc
        except (LocalEntryNotFoundError, TransportError) as exc:
            raise ModelError(f"cannot reach the model hub ({endpoint or 'huggingface.co'}) to fetch "
                             f"{repo_id}: {_reason(exc)}; run fetch on a machine that is online (it "
                             "resumes where it stopped), or copy its models/ folder here") from exc
    size = sum((target / f).stat().st_size for f in files)
    return {"role": role.name, "repo_id": repo_id, "commit": info.sha, "folder": str(target),
            "files": files, "bytes": size, "configs_only": configs_only}


def _check_listing(role: Role, repo_id: str, files: list[str], configs_only: bool) -> None:
    """A wrong id is the operator's to fix: say so before downloading anything."""
    if role.marker not in files:
        kind = "pipeline" if role is INPAINT else "model"
        raise InvalidInput(f"--{role.name}", repo_id,
                           reason=f"not a diffusers {kind} repository (no {role.marker})")
    if not configs_only and not any(_WEIGHTS.fullmatch(f.rsplit("/", 1)[-1]) for f in files):
        raise InvalidInput(f"--{role.name}", repo_id, reason="no .safetensors weights in diffusers layout "
                           "(the studio never loads pickled .bin/.ckpt files from a hub)")


def _reason(exc: BaseException) -> str:
    """The innermost message, on one line: the operator needs 'Name or service not known',
    not three layers of wrapping."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
