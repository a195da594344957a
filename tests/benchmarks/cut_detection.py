"""Cut detection on generated edits: precision and recall, and false cuts inside shots.

Edits are made from held-out generated shots (the demo generator, exact and reproducible):
- hard cuts: shots of different seeds one after another;
- similar cuts: a jump within one scene (the same shot, 20 frames later: same background,
  same objects, other positions), the hardest case for a picture-difference detector.
Frames are prepared as the engine prepares them (colour to the model space, resized to the
demo model's inference size, normalised), and every consecutive pair is scored.

What a missed cut costs: at every hard cut the new shot's first frame is predicted twice with
the demo model, once with the previous shot's last frame and matte as the prior (a chain run
across the cut) and once from a zero prior (the chain restarted, as at a detected or listed
cut), and both are scored against the exact ground truth (IoU at alpha 0.5, plate size).

Run alone (`python tests/benchmarks/cut_detection.py`) or through quality_bench.py.
"""

from __future__ import annotations

import json

import numpy as np

from vrmbg.core.demo import report, synth
from vrmbg.core.engine.cuts import THRESHOLD, cut_score
from vrmbg.core.engine.opening import stepper_for
from vrmbg.core.engine.models import ModelPool

HELD_OUT_SEEDS = tuple(range(2000, 2100))


def _prepared(stepper, seed: int, frames: int, width: int, height: int) -> tuple[list, object]:
    shot = synth.generate_shot(seed, frames=frames, width=width, height=height)
    return [stepper.prepare(synth.to_model_input(rgb)) for rgb in shot.rgb], shot


def _last_prediction(stepper, frames: list):
    """The chain's prediction on the last of `frames`, run from a zero prior."""
    prev = prior = None
    for cur in frames:
        prior, prev = stepper.step(cur, prev, prior), cur
    return prior


def cut_detection(shots: int = 6, frames: int = 16, width: int = 384, height: int = 216) -> dict:
    """Precision, recall and score margins of the detector on generated edits."""
    stepper = stepper_for({"model": "demo", "device": "cpu", "precision": "fp32"}, ModelPool())
    seeds = HELD_OUT_SEEDS[:shots]
    inside, hard, similar = [], [], []
    carried, restarted = [], []
    previous_last = previous_pred = None
    for seed in seeds:
        long_shot, truth = _prepared(stepper, seed, frames + 20, width, height)
        shot = long_shot[:frames]
        inside += [cut_score(a, b) for a, b in zip(shot, shot[1:])]
        if previous_last is not None:
            hard.append(cut_score(previous_last, shot[0]))
            for prior, scores in (((previous_last, previous_pred), carried),
                                  ((None, None), restarted)):
                pred = stepper.step(shot[0], *prior)
                scores.append(report.iou(stepper.to_plate(pred, height, width),
                                         truth.alpha[0]))
        previous_last, previous_pred = shot[-1], _last_prediction(stepper, shot)
        similar.append(cut_score(long_shot[frames // 2], long_shot[frames // 2 + 20]))
    cuts = hard + similar
    found = sum(score > THRESHOLD for score in cuts)
    false = sum(score > THRESHOLD for score in inside)
    return {
        "edits": f"{shots} held-out shots x {frames} frames at {width}x{height}, "
                 f"{len(hard)} hard cuts, {len(similar)} jump cuts within a scene",
        "threshold": THRESHOLD,
        "precision": round(found / max(1, found + false), 4),
        "recall": round(found / max(1, len(cuts)), 4),
        "recall_hard": round(sum(s > THRESHOLD for s in hard) / max(1, len(hard)), 4),
        "recall_similar": round(sum(s > THRESHOLD for s in similar) / max(1, len(similar)), 4),
        "false_cuts_inside_shots": int(false),
        "frame_pairs_inside_shots": len(inside),
        "max_score_inside_shots": round(max(inside), 4),
        "min_score_hard_cut": round(min(hard), 4) if hard else None,
        "min_score_similar_cut": round(min(similar), 4),
        "cut_frame_iou": {
            "prior_carried_across_the_cut": round(float(np.mean(carried)), 4) if carried else None,
            "chain_restarted_at_the_cut": round(float(np.mean(restarted)), 4)
            if restarted else None,
            "points_lost_when_a_cut_is_missed": round(
                100 * float(np.mean(restarted) - np.mean(carried)), 1) if carried else None,
        },
    }


if __name__ == "__main__":
    print(json.dumps(cut_detection(), indent=1))
