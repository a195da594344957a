"""What defines a demo-model training run (`TrainSettings`) and where the bundled demo model
lives, shared by the trainer (`train`, which needs torch) and its command line (`train_cli`,
which must not import torch so that building the `vrmbg` parser stays fast).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEMO_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "demo")


@dataclass
class TrainSettings:
    """Everything that defines a training run (recorded in the model card)."""

    out: str = DEMO_FOLDER
    minutes: float = 30.0
    steps: int = 0  # 0 = as many as fit in `minutes`
    seed: int = 1
    resolution: int = 192
    batch: int = 4
    clip_frames: int = 6
    pool: int = 48  # clips kept in memory; one is replaced every `refresh` optimiser steps
    refresh: int = 2
    lr: float = 1.5e-3
    threads: int = 2
    init: str = ""  # start from the weights in this model folder (fine-tuning)
