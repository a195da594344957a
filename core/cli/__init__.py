"""The `vrmbg` command line: one sub-command per module in this package.

Each command module exposes `register(subparsers) -> None`, which adds its parser and sets
`func=run` on it; `run(args) -> int` returns an exit code from `vrmbg.core.errors`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import NoReturn, Sequence

from .. import __version__
from ..errors import (EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, Cancelled,
                      UsageError, VrmbgError, one_line, retry_advice)

# Sub-command modules, in the order `--help` lists them. Every one must import: a missing
# or broken command module is an error of the installation, never silently skipped.
COMMAND_MODULES = (
    "demo",
    "render",
    "render_shots",
    "info",
    "cache_cmd",
    "model_cmd",
    "job",
    "worker",
    "install",
)

DESCRIPTION = """\
Alpha mattes for VFX plates from the VRMBG-3.0 video background-removal model.

The model is temporal: each frame's matte depends on every earlier frame of the shot.
vrmbg keeps a cache of finished frames so any frame can be answered by computing
forward from the last cached one, giving exactly what a straight run would.

Start here:
  vrmbg demo out/                       render a generated shot with the bundled demo model
  vrmbg info plates/sh010.####.exr      what frames, channels and colour a plate has
  vrmbg render plates/sh010.####.exr -o mattes/sh010.####.exr --frames 1001-1100
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises a UsageError instead of exiting, so `--json` callers still get
    one JSON object and farm logs get an `openjd_fail:` line (sub-parsers inherit it)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command registered."""
    parser = _Parser(
        prog="vrmbg", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vrmbg {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vrmbg` console script; returns the process exit code."""
    # OpenMP threads that spin while waiting make a busy machine (a farm node running
    # other work, or our own reader threads) 5-10x slower; set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _failed(exc, exc.exit_code, json_wanted="--json" in argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except Cancelled as exc:
        print(f"vrmbg: cancelled: {exc}", file=sys.stderr)
        return exc.exit_code
    except VrmbgError as exc:
        return _failed(exc, exc.exit_code)
    except KeyboardInterrupt:
        print("vrmbg: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:  # `vrmbg info ... | head`: the reader has all it wanted
        _silence_stdout()
        return EXIT_OK
    except Exception:  # a bug: keep the traceback for the report
        import traceback
        traceback.print_exc()
        print("vrmbg: internal error (please report the traceback above)", file=sys.stderr)
        return EXIT_INTERNAL


def _failed(exc: VrmbgError, code: int, *, json_wanted: bool = False) -> int:
    """Report an error as one line (and as JSON or an `openjd_fail:` line where asked)."""
    print(f"vrmbg: error: {exc}", file=sys.stderr)
    if json_wanted:
        print(json.dumps({"error": str(exc), "exit_code": code}, sort_keys=True), flush=True)
    if os.environ.get("VRMBG_PROGRESS") == "plain":  # farm tasks: OpenJD fails the task
        print(f"openjd_fail: {one_line(exc)} [exit {code}: {retry_advice(code)}]", flush=True)
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
