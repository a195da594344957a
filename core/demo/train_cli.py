"""`vrmbg model train-demo`: the command line of the demo-model trainer.

Kept apart from `train` (which needs torch) so that building the `vrmbg` parser stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import UsageError
from .train_settings import DEMO_FOLDER, TrainSettings


EPILOG = """\
Examples:
  vrmbg model train-demo                           retrain the bundled demo model (~30 min, CPU)
  vrmbg model train-demo --out /tmp/demo --minutes 5
  vrmbg model train-demo --steps 3000 --seed 1     a fixed number of steps (reproducible)

The result is demo-only: trained on generated synthetic shots, not on real footage.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `vrmbg model train-demo`."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    if not parser.epilog:
        parser.epilog = EPILOG
    parser.add_argument("--out", default=DEMO_FOLDER, metavar="DIR",
                        help="folder for config.json + model.safetensors + MODEL_CARD.md "
                             "(default: the bundled demo model folder)")
    parser.add_argument("--minutes", type=float, default=TrainSettings.minutes,
                        help="wall-time budget (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=0,
                        help="train this many optimiser steps instead of a time budget")
    parser.add_argument("--seed", type=int, default=TrainSettings.seed,
                        help="random seed of data and weights, >= 1 (default: %(default)s)")
    parser.add_argument("--resolution", type=int, default=TrainSettings.resolution,
                        help="native square size, multiple of 32 (default: %(default)s)")
    parser.add_argument("--init", default="", metavar="DIR",
                        help="start from the weights in this model folder (fine-tune)")
    parser.add_argument("--threads", type=int, default=TrainSettings.threads,
                        help="CPU threads for torch (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Entry point of `vrmbg model train-demo`."""
    if args.resolution <= 0 or args.resolution % 32:
        raise UsageError(f"--resolution {args.resolution} is not a positive multiple of 32")
    if args.seed < 1:
        raise UsageError("--seed must be >= 1 (seeds below 1e6 are kept for held-out shots)")
    if args.minutes <= 0 and args.steps <= 0:
        raise UsageError("give a positive --minutes or --steps")
    settings = TrainSettings(out=os.path.abspath(args.out), minutes=args.minutes,
                             steps=args.steps, seed=args.seed, resolution=args.resolution,
                             threads=args.threads, init=args.init)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    from .train import train  # here, not above: it imports torch, which `vrmbg --help` skips

    train(settings, log=log)
    print(os.path.join(settings.out, "MODEL_CARD.md"))
    return 0
