"""`python -m engine`: the studio's command line, for operators and scripts.

Every command has `--help`; `--json` prints one JSON document on stdout for scripts. Bad
input exits with code 2 and a message naming the field on stderr (argparse's own convention),
any other failure with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

from engine.errors import CartolinaError, Conflict, InvalidInput, NotFound

# Modules that add their own subcommands with `register(subparsers)`.
_COMMAND_MODULES: list[str] = ["engine.training.cli", "engine.privacy_cli", "engine.supervisor", "engine.models_cli",
                              "engine.backends.worker_cli"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as `field: message` with exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _settings():
    from engine.config import load_settings
    return load_settings()


def emit(args, data, text: str | Callable[[], str]) -> None:
    """Print JSON for scripts or readable text for people."""
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        print(text() if callable(text) else text)


# --- demo ------------------------------------------------------------------------------------

def _cmd_demo(args) -> int:
    from engine.demo import build_demo
    settings = _settings()
    report = build_demo(settings, models=not args.no_models, catalog=not args.no_catalog,
                        force=args.force, refill=args.refill, size=args.size)

    def text():
        lines = []
        if "models" in report:
            m = report["models"]
            lines.append(f"{args.size} models: {'built' if m.get('built') else 'up to date'} "
                         f"in {settings.models_dir / args.size}")
        if "catalog" in report:
            added = report["catalog"]["added"]
            lines.append(f"demo catalog: {len(added)} records added" if added else
                         "demo catalog: up to date (--refill restores removed demo records)")
            lines += [f"  problem: {p}" for p in report["catalog"]["problems"]]
        return "\n".join(lines)

    emit(args, report, text)
    return EXIT_FAILED if report.get("catalog", {}).get("problems") else EXIT_OK


# --- catalog ---------------------------------------------------------------------------------

def _cmd_catalog(args) -> int:
    from engine.catalog import Catalog
    if args.action == "restore":
        return _cmd_catalog_restore(args)
    if args.action in ("export", "import"):
        return _cmd_catalog_archive(args)
    cat = Catalog.open(_settings())
    summary = cat.summary()
    if args.validate:
        summary["problems"] = cat.validate()

    def text():
        lines = []
        for poi in summary["pois"]:
            lines.append(f"POI {poi['name']}: {poi['description']}")
            lines += [f"  image {i['name']} ({i['width']}x{i['height']}): {i['description']}"
                      for i in poi["images"]]
        for a in summary["actions"]:
            lines.append(f"action {a['name']} [{' '.join(a['shot_types'])}]: {a['description']}")
        lines += [f"problem: {p}" for p in summary.get("problems", [])]
        return "\n".join(lines) or "the catalog is empty"

    emit(args, summary, text)
    return EXIT_FAILED if summary.get("problems") else EXIT_OK


def _cmd_catalog_restore(args) -> int:
    from engine.catalog_store import restore
    report = restore(_settings().catalog_path)
    emit(args, report, lambda: f"restored {report['restored']} from {report['from']}" + (
        f"\nthe catalog it replaced is kept as {report['set_aside']}" if report["set_aside"] else ""))
    return EXIT_OK


def _cmd_catalog_archive(args) -> int:
    import io
    from engine import catalog_archive, images
    from engine.catalog import Catalog
    if not args.file:
        raise InvalidInput("FILE", None, "the archive's path, e.g. catalog.zip",
                           reason=f"catalog {args.action} needs a file")
    cat = Catalog.open(_settings())
    if args.action == "export":
        if os.path.isdir(args.file):
            raise InvalidInput("FILE", args.file, "the archive's path, e.g. catalog.zip",
                               reason="a folder, not a file")
        buf = io.BytesIO()
        report = catalog_archive.export_catalog(cat, buf)
        try:
            images.atomic_write_bytes(args.file, buf.getvalue())  # never half an archive
        except OSError as exc:  # a folder without write permission, a name too long, ...
            raise CartolinaError(f"could not write {args.file}: {exc.strerror or exc}; "
                                 "choose another path") from None
        verb = "exported"
    else:
        report = catalog_archive.import_catalog(cat, args.file, args.mode)
        verb = f"imported ({report['mode']})"
    emit(args, report, lambda: f"{verb} {report['pois']} POIs with {report['poi_images']} photos and "
                               f"{report['actions']} actions with {report['action_images']} image sets "
                               f"({report['assets']} pictures): {args.file}")
    return EXIT_OK


# --- generate / pick -------------------------------------------------------------------------

def _cmd_generate(args) -> int:
    """Through the same picture line as the pages (this process's, or Celery workers'): the
    picture waits its turn behind the visitors', and Ctrl-C takes it out of the line."""
    from engine.backends import picture_backend
    settings = _settings()
    request = {"poi_name": args.poi, "poi_image": args.poi_image, "action_name": args.action,
               "action_shot_type": args.shot, "age": args.age, "gender": args.gender,
               "other_details": args.details, "selected_lora": args.lora,
               "dynamic_action_selection": args.dynamic, "action_prompt": args.action_prompt,
               "seed": args.seed, "steps": args.steps, "guidance": args.guidance,
               "face_seed": args.face_seed}
    line = picture_backend(settings)
    code = line.submit(request)
    live = not args.json and sys.stderr.isatty()
    try:
        while True:
            try:
                done = line.wait(code, timeout=0.5)
                break
            except TimeoutError:
                s = line.status(code)
                if live:
                    where = (f"number {s.place_in_line} in line" if s.state == "queued" else
                             f"{s.stage} {s.step}/{s.total_steps}")
                    print(f"\rpicture {code}: {where}   ", end="", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        line.cancel(code)
        raise
    if live:
        print(file=sys.stderr)
    if done.state != "succeeded":
        raise done.error
    result = done.result
    emit(args, result.to_dict(), lambda: (
        f"code {result.code}: {result.path}\naction: {result.action_name}\n{result.face_pass_note}\n"
        + (f"{_likeness_line(result)}\n" if result.likeness else "")
        + f"prompt: {result.prompt}\nseed {result.seed}, {result.steps} steps, "
        f"{result.timings_s['total']:.1f} s"))
    return EXIT_OK


def _likeness_line(result) -> str:
    like = result.likeness
    tries = len(like["tries"])
    if like["distance"] is None:
        return f"likeness: not measured ({like['note']}); face seed {result.face_seed}"
    return (f"likeness: {like['level']} (distance {like['distance']:.3f}; same person under "
            f"{like['threshold']:g}), {tries} {'try' if tries == 1 else 'tries'}, face seed {result.face_seed}"
            + ("" if like["level"] != "low" else
               f"\n  to try the face again: the same command with --seed {result.seed} --face-seed N"))


def _cmd_pick(args) -> int:
    from engine.catalog import Catalog
    from engine.picker import rank_actions
    actions = Catalog.open(_settings()).list_actions()
    ranking = rank_actions(args.text, actions, use_model=not args.lexical)
    emit(args, ranking, lambda: f"ranked by {ranking['model']}\n" + "\n".join(
        f"{r['score']:+.3f}  {r['action_name']}" for r in ranking["ranking"]))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description="Cartolina studio engine.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("demo", help="build the demo models and demo catalog (idempotent)",
                       description="Build the demo models under models/demo and add the demo "
                                   "catalog's missing records. Safe to re-run.")
    p.add_argument("--force", action="store_true", help="rebuild the demo models")
    p.add_argument("--refill", action="store_true",
                   help="add missing demo records even if a curator removed them")
    p.add_argument("--size", choices=("demo", "full"), default="demo",
                   help="demo: tiny models for every flow in seconds; full: SD-1.5's true shapes "
                        "with random weights under models/full (for benchmarks, ~2.9 GB)")
    p.add_argument("--no-models", action="store_true", help="skip the models")
    p.add_argument("--no-catalog", action="store_true", help="skip the catalog")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("catalog", help="show the catalog",
                       description="List POIs with their images and actions with their shot types; "
                                   "`catalog restore` puts back the catalog as it was before its "
                                   "last edit (catalog_db.json.bak).")
    p.add_argument("action", nargs="?", choices=("restore", "export", "import"),
                   help="restore: replace catalog_db.json with its backup (the replaced file is kept); "
                        "export FILE.zip: the whole catalog with its pictures in one archive; "
                        "import FILE.zip: check an archive whole, then land it whole")
    p.add_argument("file", nargs="?", metavar="FILE.zip", help="the archive, for export and import")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--replace", dest="mode", action="store_const", const="replace",
                     help="import: the archive replaces every place and pose")
    how.add_argument("--merge", dest="mode", action="store_const", const="merge",
                     help="import: the archive's records replace those with the same names, the rest stay "
                          "(without either, only an empty catalog takes an import)")
    p.add_argument("--validate", action="store_true",
                   help="also check every file, mask and size (exit 1 on problems)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_catalog)

    p = sub.add_parser("generate", help="make a picture of a visitor in a POI photo",
                       description="Paint a person in an action's pose into a POI image (body pass), "
                                   "then the visitor's face with their LoRA (face pass), and save "
                                   "outputs/<code>.png. Field names and values are the seed's.")
    p.add_argument("--poi", required=True, metavar="NAME", help="poi_name")
    p.add_argument("--poi-image", required=True, metavar="NAME", help="poi_image: an image of that POI")
    p.add_argument("--action", metavar="NAME", help="action_name (not needed with --dynamic)")
    p.add_argument("--shot", required=True, metavar="CLS|MES|FUS", help="action_shot_type: close, medium, far")
    p.add_argument("--age", required=True, metavar="young|adult|old")
    p.add_argument("--gender", required=True, metavar="man|woman")
    p.add_argument("--details", default="", metavar="TEXT", help='other_details, goes in as "wearing TEXT"')
    p.add_argument("--lora", metavar="CODE", help="selected_lora: 8-digit code; unknown → no face pass")
    p.add_argument("--dynamic", action="store_true", help="dynamic_action_selection from --action-prompt")
    p.add_argument("--action-prompt", default="", metavar="TEXT", help="the pose in words, for --dynamic")
    p.add_argument("--seed", metavar="N", help="0..4294967295; random if not given")
    p.add_argument("--steps", metavar="N", help="inference steps, 1..150 (default 30)")
    p.add_argument("--guidance", metavar="X", help="guidance scale, 0..30 (default 7.5)")
    p.add_argument("--face-seed", metavar="N",
                   help="face_seed: the face pass's first seed, 0..4294967295 (default: seed + 1); "
                        "with the same --seed, the same body with another face")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("pick", help="rank the catalog's actions for a description",
                       description="Rank every action by how well it matches TEXT, best first.")
    p.add_argument("text", metavar="TEXT", help="the pose in words")
    p.add_argument("--lexical", action="store_true", help="use the word-overlap ranking, not MiniLM")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_pick)

    import importlib
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or EXIT_OK
    except (InvalidInput, NotFound, Conflict) as exc:
        _fail(args, exc)
        return EXIT_BAD_INPUT
    except CartolinaError as exc:
        _fail(args, exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _fail(args, exc: Exception) -> None:
    print(f"error: {exc}", file=sys.stderr)
    if getattr(args, "json", False):
        detail = exc.to_dict() if hasattr(exc, "to_dict") else {"message": str(exc)}
        print(json.dumps({"error": detail}, ensure_ascii=False))
