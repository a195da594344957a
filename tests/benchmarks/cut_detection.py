"""Cut detection on generated edits: precision and recall per kind of edit, the causal
adaptive detector (`core/engine/cuts.py`) beside the first recipe (a fixed threshold on the
change of 8 x 8 thumbnails).

Every edit is one kind of picture change followed by a hard cut into another shot, so each
category measures false cuts inside the change and the cut that follows it (a cut after
sustained fast motion must still be found). Pictures are made from held-out generated shots
(the demo generator, exact and reproducible) and procedural patterns, in the model's
display-referred space:
- hard_cuts: shots of different seeds one after another;
- jump_cuts: a jump within one scene (the same shot, 20 frames later: same background,
  other positions), the hardest case for a picture-difference detector;
- fast_pan: a window moving 17 px a frame over a wide generated frame, and over a
  high-contrast pattern; whip_pan: a pan that speeds up to 80 px a frame (motion-blurred) and
  stops again; fast_object: a large disc crossing the frame in 14 frames;
- data_window: every other frame cropped to a smaller data window (black outside it);
- flash: one frame brightened (mid-grey lift) or burnt almost to white;
- dissolve: 10 frames blending one shot into the next; slow_fade: 12 frames to black and 12
  back up into the next shot.
Frames are prepared as the engine prepares them (resized to the demo model's inference size,
normalised), and each edit is decided frame by frame as one chain.

What a missed cut costs: at every hard cut the new shot's first frame is predicted twice with
the demo model, once with the previous shot's last frame and matte as the prior (a chain run
across the cut) and once from a zero prior (the chain restarted, as at a detected or listed
cut), and both are scored against the exact ground truth (IoU at alpha 0.5, plate size).

Run alone (`python tests/benchmarks/cut_detection.py`) or through quality_bench.py.
"""

from __future__ import annotations

import json
from typing import Callable, Iterator

import numpy as np

from vrmbg.core.demo import report, synth
from vrmbg.core.engine import cuts
from vrmbg.core.engine.opening import stepper_for
from vrmbg.core.engine.models import ModelPool

HELD_OUT_SEEDS = tuple(range(2000, 2100))
OLD_THUMBNAIL, OLD_THRESHOLD = 8, 0.07  # the first recipe: fixed threshold, two frames

Edit = tuple[list, list, set]  # display-referred frames (H, W, 3), data-window boxes, cut indices


# ---------------------------------------------------------------------------- pictures


def _shot(seed: int, frames: int, width: int, height: int) -> np.ndarray:
    """A generated shot in the model's display-referred space, (T, H, W, 3) in [0, 1]."""
    return synth.to_model_input(synth.generate_shot(seed, frames=frames, width=width,
                                                    height=height).rgb)


def _pattern(seed: int, width: int, height: int) -> np.ndarray:
    """A high-contrast world: a checkerboard of two colours crossed by stripes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    square = int(rng.integers(24, 48))
    checker = ((x // square + y // square) % 2).astype(np.float32)
    stripes = 0.5 + 0.5 * np.sin(x * rng.uniform(0.05, 0.2) + y * rng.uniform(0.0, 0.1))
    colours = rng.uniform(0.05, 0.95, (2, 3)).astype(np.float32)
    image = colours[0] + (colours[1] - colours[0]) * checker[..., None]
    return np.clip(0.8 * image + 0.2 * stripes[..., None], 0.0, 1.0).astype(np.float32)


def _pan(world: np.ndarray, positions: list[float], width: int, blur: bool) -> list:
    """Windows of `width` over `world` at each x position; with `blur`, each frame averages
    the positions between the previous one and its own (a shutter open for the whole move)."""
    frames, last = [], positions[0]
    for x in positions:
        taps = np.linspace(last, x, max(2, int(abs(x - last) // 4) + 1)) if blur else [x]
        frames.append(np.mean([world[:, int(t):int(t) + width] for t in taps], axis=0))
        last = x
    return frames


def _disc(background: np.ndarray, centre_x: float, colour: np.ndarray) -> np.ndarray:
    """`background` with a large flat disc over it."""
    height, width = background.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    inside = (x - centre_x) ** 2 + (y - height / 2) ** 2 < (0.4 * height) ** 2
    return np.where(inside[..., None], colour, background).astype(np.float32)


# ---------------------------------------------------------------------------- edits


def _then_cut(frames: list, boxes: list, cut_seed: int, size: tuple[int, int],
              cuts_before: set | None = None) -> Edit:
    """The frames, then a hard cut into 8 frames of another shot."""
    after = list(_shot(cut_seed, 8, *size))
    return (frames + after, boxes + [cuts.FULL] * len(after),
            (cuts_before or set()) | {len(frames)})


def _hard_cuts(seed: int, size: tuple[int, int]) -> Edit:
    first, second = _shot(seed, 16, *size), _shot(seed + 50, 16, *size)
    return _then_cut(list(first) + list(second), [cuts.FULL] * 32, seed + 60, size, {16})


def _jump_cuts(seed: int, size: tuple[int, int]) -> Edit:
    long_shot = list(_shot(seed, 40, *size))
    frames = long_shot[:12] + long_shot[32:]
    return _then_cut(frames, [cuts.FULL] * len(frames), seed + 60, size, {12})


def _fast_pan(seed: int, size: tuple[int, int]) -> Edit:
    width, height = size
    world = _shot(seed, 1, 3 * width, height)[0] if seed % 2 else _pattern(seed, 3 * width,
                                                                           height)
    frames = _pan(world, [17.0 * i for i in range(24)], width, blur=False)
    return _then_cut(frames, [cuts.FULL] * len(frames), seed + 60, size)


def _whip_pan(seed: int, size: tuple[int, int]) -> Edit:
    width, height = size
    world = _shot(seed, 1, 4 * width, height)[0] if seed % 2 else _pattern(seed, 4 * width,
                                                                           height)
    speeds = [2, 2, 2, 2, 2, 2, 10, 30, 60, 80, 80, 80, 60, 30, 10, 2, 2, 2, 2, 2]
    frames = _pan(world, list(np.cumsum([0.0] + speeds)), width, blur=True)
    return _then_cut(frames, [cuts.FULL] * len(frames), seed + 60, size)


def _fast_object(seed: int, size: tuple[int, int]) -> Edit:
    width, height = size
    background = _shot(seed, 20, *size)
    colour = np.random.default_rng(seed).uniform(0.0, 1.0, 3).astype(np.float32)
    step = (width + 0.8 * height) / 14
    frames = [_disc(background[i], -0.4 * height + step * (i - 3), colour) for i in range(20)]
    return _then_cut(frames, [cuts.FULL] * 20, seed + 60, size)


def _data_window(seed: int, size: tuple[int, int]) -> Edit:
    width, height = size
    x0, y0, x1, y1 = width // 6, height // 8, width * 5 // 6, height * 7 // 8
    frames, boxes = [], []
    for i, picture in enumerate(_shot(seed, 20, *size)):
        if i % 2:
            cropped = np.zeros_like(picture)
            cropped[y0:y1, x0:x1] = picture[y0:y1, x0:x1]
            picture = cropped
        frames.append(picture)
        boxes.append(cuts.covered_box((x0, y0, x1 - x0, y1 - y0) if i % 2 else
                                      (0, 0, width, height), (0, 0, width, height)))
    return _then_cut(frames, boxes, seed + 60, size)


def _flash(seed: int, size: tuple[int, int]) -> Edit:
    frames = list(_shot(seed, 20, *size))
    burnt = seed % 2 == 0
    frames[10] = np.clip(frames[10] * 0.1 + 0.9 if burnt else frames[10] * 0.7 + 0.4, 0, 1)
    return _then_cut(frames, [cuts.FULL] * 20, seed + 60, size)


def _dissolve(seed: int, size: tuple[int, int]) -> Edit:
    first, second = _shot(seed, 18, *size), _shot(seed + 50, 18, *size)
    mix = [min(1.0, max(0.0, (i - 8) / 10)) for i in range(18)]
    frames = [(1 - m) * a + m * b for m, a, b in zip(mix, first, second)]
    return _then_cut(frames, [cuts.FULL] * 18, seed + 60, size)


def _slow_fade(seed: int, size: tuple[int, int]) -> Edit:
    first, second = _shot(seed, 16, *size), _shot(seed + 50, 16, *size)
    frames = [a * (1 - i / 12) if i <= 12 else a * 0 for i, a in enumerate(first[:13])]
    frames += [b * (i / 12) for i, b in enumerate(second[:13])]
    frames += list(second[13:])
    return _then_cut(frames, [cuts.FULL] * len(frames), seed + 60, size)


CATEGORIES: dict[str, Callable[[int, tuple[int, int]], Edit]] = {
    "hard_cuts": _hard_cuts, "jump_cuts": _jump_cuts, "fast_pan": _fast_pan,
    "whip_pan": _whip_pan, "fast_object": _fast_object, "data_window": _data_window,
    "flash": _flash, "dissolve": _dissolve, "slow_fade": _slow_fade,
}


# ---------------------------------------------------------------------------- detectors


def _old_cuts(prepared: list) -> set:
    """The first recipe: a cut wherever two frames' 8 x 8 thumbnails differ by more than a
    fixed threshold."""
    import torch.nn.functional as F

    thumbs = [F.adaptive_avg_pool2d(p.float(), OLD_THUMBNAIL) for p in prepared]
    return {i for i in range(1, len(thumbs))
            if float((thumbs[i] - thumbs[i - 1]).abs().mean()) > OLD_THRESHOLD}


def _counts(found: set, truth: set) -> dict:
    return {"cuts": len(truth), "found": len(found & truth), "false": len(found - truth)}


def _figures(counts: dict) -> dict:
    """Precision and recall from summed counts."""
    found, false, total = counts["found"], counts["false"], counts["cuts"]
    return {**counts, "precision": round(found / max(1, found + false), 4),
            "recall": round(found / max(1, total), 4)}


def _edits(stepper, per_category: int, size: tuple[int, int]) -> Iterator[tuple[str, list,
                                                                               list, set]]:
    for name, make in CATEGORIES.items():
        for index in range(per_category):
            frames, boxes, truth = make(HELD_OUT_SEEDS[index], size)
            yield name, [stepper.prepare(f) for f in frames], boxes, truth


def detection(stepper, per_category: int = 4, width: int = 384, height: int = 216) -> dict:
    """Per category and in all: cuts, found, false cuts, precision and recall, old vs new."""
    totals: dict[str, dict[str, dict]] = {}
    for name, prepared, boxes, truth in _edits(stepper, per_category, (width, height)):
        for recipe, found in (("old", _old_cuts(prepared)),
                              ("new", set(cuts.detect_cuts(prepared, boxes)))):
            slot = totals.setdefault(name, {}).setdefault(recipe, {"cuts": 0, "found": 0,
                                                                   "false": 0})
            for key, value in _counts(found, truth).items():
                slot[key] += value
    summary = {"all": {}}
    for recipe in ("old", "new"):
        overall = {key: sum(totals[n][recipe][key] for n in totals)
                   for key in ("cuts", "found", "false")}
        summary["all"][recipe] = _figures(overall)
    summary.update({name: {recipe: _figures(c) for recipe, c in by.items()}
                    for name, by in totals.items()})
    return summary


# ---------------------------------------------------------------------------- what a miss costs


def _last_prediction(stepper, frames: list):
    """The chain's prediction on the last of `frames`, run from a zero prior."""
    prev = prior = None
    for cur in frames:
        prior, prev = stepper.step(cur, prev, prior), cur
    return prior


def missed_cut_cost(stepper, shots: int = 6, frames: int = 16, width: int = 384,
                    height: int = 216) -> dict:
    """IoU on a cut frame with the prior carried across the cut, and with the chain restarted."""
    carried, restarted = [], []
    previous_last = previous_pred = None
    for seed in HELD_OUT_SEEDS[:shots]:
        truth = synth.generate_shot(seed, frames=frames, width=width, height=height)
        shot = [stepper.prepare(synth.to_model_input(rgb)) for rgb in truth.rgb]
        if previous_last is not None:
            for prior, scores in (((previous_last, previous_pred), carried),
                                  ((None, None), restarted)):
                pred = stepper.step(shot[0], *prior)
                scores.append(report.iou(stepper.to_plate(pred, height, width),
                                         truth.alpha[0]))
        previous_last, previous_pred = shot[-1], _last_prediction(stepper, shot)
    return {
        "prior_carried_across_the_cut": round(float(np.mean(carried)), 4),
        "chain_restarted_at_the_cut": round(float(np.mean(restarted)), 4),
        "points_lost_when_a_cut_is_missed": round(
            100 * float(np.mean(restarted) - np.mean(carried)), 1),
    }


def cut_detection(per_category: int = 4, frames: int = 16, width: int = 384,
                  height: int = 216) -> dict:
    """The detector on generated edits of every category (`per_category` of each), old recipe
    vs new, and what a missed cut costs (shots of `frames` frames)."""
    stepper = stepper_for({"model": "demo", "device": "cpu", "precision": "fp32"}, ModelPool())
    return {
        "edits": f"{per_category} edits per category at {width}x{height}, each ending in a "
                 f"hard cut; prepared at {stepper.resolution}x{stepper.resolution}",
        "old_recipe": f"thumb{OLD_THUMBNAIL}-mad>{OLD_THRESHOLD} (two frames)",
        "new_recipe": cuts.DETECTOR_ID,
        "by_category": detection(stepper, per_category, width, height),
        "cut_frame_iou": missed_cut_cost(stepper, frames=frames, width=width, height=height),
    }


if __name__ == "__main__":
    print(json.dumps(cut_detection(), indent=1))
