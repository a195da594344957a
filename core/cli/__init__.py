"""The `vrmbg` command line: one sub-command per module in this package.

Each command module exposes `register(subparsers) -> None`, which adds its parser and sets
`func=run` on it; `run(args) -> int` returns an exit code from `vrmbg.core.errors`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from .. import __version__
from ..errors import EXIT_CANCELLED, EXIT_INTERNAL, EXIT_USAGE, Cancelled, VrmbgError

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


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command registered."""
    parser = argparse.ArgumentParser(
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except Cancelled as exc:
        print(f"vrmbg: cancelled: {exc}", file=sys.stderr)
        return exc.exit_code
    except VrmbgError as exc:
        print(f"vrmbg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vrmbg: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception:  # a bug: keep the traceback for the report
        import traceback
        traceback.print_exc()
        print("vrmbg: internal error (please report the traceback above)", file=sys.stderr)
        return EXIT_INTERNAL
