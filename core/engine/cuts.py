"""Hard cuts in an edit: where the model must start again from an empty prior.

Carrying the previous shot's matte across a cut as the prior is wrong (with the demo model a
wrong prior costs about 20 IoU points on the cut frame), so at a cut the chain restarts with a
zero prior, exactly as on a shot's first frame.

Detection compares two consecutive prepared model inputs (already decoded, colour-converted
and resized, so it costs next to nothing): both are averaged down to 8 x 8 thumbnails and the
mean absolute difference of their normalised values is compared with a threshold. Measured
on generated shots (`tests/benchmarks/quality_bench.py`): consecutive frames of one shot stay
below 0.031, a jump within one scene scores 0.11 or more, cuts between shots 0.34 or more.
The decision depends only on the two frames, so a resumed chain makes the same decisions
as a straight run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

THUMBNAIL = 8
THRESHOLD = 0.07
# Part of the chain identity when detection is on: another recipe must give another chain.
DETECTOR_ID = f"thumb{THUMBNAIL}-mad/v1@{THRESHOLD}"


def cut_score(previous: "torch.Tensor", current: "torch.Tensor") -> float:
    """How different two prepared frames (1, 3, R, R) look: mean absolute difference of their
    8 x 8 thumbnails, in ImageNet-normalised units."""
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        a = F.adaptive_avg_pool2d(previous.float(), THUMBNAIL)
        b = F.adaptive_avg_pool2d(current.float(), THUMBNAIL)
        return float((a - b).abs().mean())


def is_cut(previous: "torch.Tensor", current: "torch.Tensor") -> bool:
    """True when `current` starts a new shot after `previous`."""
    return cut_score(previous, current) > THRESHOLD
