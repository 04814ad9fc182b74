"""`python -m engine models fetch|info`: from demo models to real ones, and a check before opening.

`fetch` is the only command of the studio that goes online, and only because the operator
ran it; `info` answers "will it load, and will it fit?" without painting a picture, so it is
the thing to run after changing a model variable or moving to a new GPU.
"""

from __future__ import annotations

import argparse
import re

from engine.model_store import CONTROLNET, DEFAULT_CONTROLNET_ID, DEFAULT_INPAINT_ID, INPAINT

__all__ = ["register"]

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def _repo_id(text: str) -> str:
    """A hub id doubles as the folder under models/, so it must be exactly owner/name."""
    if not _REPO_ID.fullmatch(text) or ".." in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a hub model id (owner/name)")
    return text


def _settings():
    from engine.config import load_settings
    settings = load_settings()
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _cmd_fetch(args) -> int:
    from engine.cli import emit
    from engine.model_info import human_bytes
    from engine.model_store import fetch
    settings = _settings()
    reports = [fetch(settings, role, repo_id, configs_only=args.configs_only)
               for role, repo_id in ((INPAINT, args.inpaint), (CONTROLNET, args.controlnet))]
    variable = "config_variable" if args.configs_only else "variable"
    environment = {getattr(role, variable): r["repo_id"] for role, r in zip((INPAINT, CONTROLNET), reports)}

    def text():
        lines = [f"{r['folder']}: {len(r['files'])} files, {human_bytes(r['bytes'])} "
                 f"(commit {r['commit'][:7]}{', configs only' if r['configs_only'] else ''})" for r in reports]
        lines.append("Single-file checkpoints now load offline with these configs; to be explicit, set:"
                     if args.configs_only else "To use them, set (for bin/studio, or in the container):")
        lines += [f"  {name}={value}" for name, value in environment.items()]
        lines.append("and check with: python -m engine models info")
        return "\n".join(lines)

    emit(args, {"fetched": reports, "environment": environment}, text)
    return 0


def _cmd_info(args) -> int:
    from engine.cli import emit
    from engine.model_info import human_bytes, inspect
    report = inspect(_settings(), load=args.load)

    def text():
        extras = "".join([f", {report['autocast']} autocast" if report["autocast"] else "",
                          f", compiled ({report['compile']})" if report["compile"] else "",
                          ", fast mode" if report["fast"] else ""])
        lines = [f"device {report['device']}, dtype {report['dtype']}{extras}"]
        for name, m in report["models"].items():
            lines.append(f"{name}: {m['variable']}={m['configured']}")
            if m["where"]:
                variant = f" ({m['variant']} weights)" if m["variant"] else ""
                lines.append(f"  {m['source']} {m['where']}{variant}")
            if m["config"]:
                lines.append(f"  configs from {m['config']}")
            if m["parameters"] is not None:
                lines.append(f"  loads: yes; {m['parameters']:,} parameters (stored as "
                             f"{', '.join(m['stored_dtypes'])}), {human_bytes(m['weights_bytes'])} in "
                             f"{report['dtype']}")
            lines += [f"  {m['note']}"] if m.get("note") else []
            lines += [f"  loads: no: {p}" for p in m["problems"]]
        if report["weights_bytes"] is not None:
            lines.append(f"memory: about {human_bytes(report['weights_bytes'])} of weights on "
                         f"{report['device']}, plus working memory for the picture being painted")
        if "load" in report:
            load = report["load"]
            lines.append(f"loaded for real in {load['seconds']} s" if load["ok"] else
                         f"loading for real failed: {load['error']}")
        return "\n".join(lines)

    emit(args, report, text)
    return 0 if report["ok"] else 1


def register(sub) -> None:
    p = sub.add_parser("models", help="fetch real models, or check the configured ones",
                       description="`fetch` downloads Stable Diffusion 1.5 inpainting and ControlNet "
                                   "openpose into models/ (the one online step); `info` checks what "
                                   "is configured without painting a picture.")
    actions = p.add_subparsers(dest="models_command", metavar="ACTION", parser_class=type(p))
    actions.required = True

    f = actions.add_parser("fetch", help="download the models into models/<id> (resumable)",
                           description="Download configs, tokenizer and one set of .safetensors weights "
                                       "(fp16 where the repository has them) into models/<id>. Run it "
                                       "again after an interruption: it resumes. Goes online even when "
                                       "HF_HUB_OFFLINE is set (HF_ENDPOINT picks a mirror, HF_TOKEN a token).")
    f.add_argument("--inpaint", type=_repo_id, default=DEFAULT_INPAINT_ID, metavar="ID",
                   help=f"SD-1.5 inpainting pipeline (default {DEFAULT_INPAINT_ID})")
    f.add_argument("--controlnet", type=_repo_id, default=DEFAULT_CONTROLNET_ID, metavar="ID",
                   help=f"ControlNet openpose for SD 1.5 (default {DEFAULT_CONTROLNET_ID})")
    f.add_argument("--configs-only", action="store_true",
                   help="only configs and tokenizer (about 2 MB): what single-file checkpoints need")
    f.add_argument("--json", action="store_true", help="print JSON")
    f.set_defaults(func=_cmd_fetch)

    i = actions.add_parser("info", help="what is configured, whether it loads, what memory it takes",
                           description="Check the configured models from their configs and safetensors "
                                       "headers (no tensor loaded); exit 1 if one will not load.")
    i.add_argument("--load", action="store_true", help="also load the pipelines for real (no picture)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_cmd_info)
