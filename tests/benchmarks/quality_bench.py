"""Quality of the bundled demo model on held-out generated shots, through the full pipeline.

Prints one JSON object:
- `pipeline`: mean IoU (alpha > 0.5), SAD (thousands per frame), MAE and temporal stability of
  the mattes `vrmbg` writes (ACEScg EXR -> OCIO -> temporal cache -> matte EXR), per shot and
  overall, with the default precision (bf16 on CPU) and with fp32.
- `per_frame`: the same plates and colour path, but the temporal prior zeroed on every frame
  (each frame as the first of a chain), to show what the temporal model buys in stability.
- `cut_detection`: precision and recall of the cut detector on generated edits (hard cuts and
  jumps within a scene) and false cuts inside the held-out shots (`cut_detection.py`).
- `targets`: mean IoU >= 0.85, and the temporal model more stable than per-frame inference.
- `edges`: the demo model's prediction brought to 2K and 4K plates by each upsampling mode
  (bilinear = the card's, guided = luminance-guided filter, guided-colour = RGB-guided), with
  SAD (thousands), MSE (x1000) and gradient error against the exact ground truth, the change
  against bilinear in percent, and the cost in ms per frame for the demo's 192² prediction
  and for a 1024² one (VRMBG-3.0's size).
- `keyframes`: on held-out shots, at the frame k where the demo model errs most, the exact
  ground truth or a coarse hint (the truth thresholded, then dilated: a garbage matte, or
  eroded: a core matte) is given as a keyframe; MAD, MSE, gradient error, connectivity error
  and dtSSD (RVM's evaluation units) of frames k+1..k+N against no keyframe, and at frame k
  itself the keyframe as given against the model's prediction from it (`keyframe_gains`).

Usage: python tests/benchmarks/quality_bench.py [--shots 6] [--frames 16] [--size 384x216]
           [--edge-sizes 1920x1080,3840x2160] [--edge-shots 2] [--edge-frames 3]
           [--keyframe-shots 12] [--keyframe-after 8] [--keyframe-kind plain|twins|camouflage]
           [--model demo|FOLDER] [--only keyframes]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from cut_detection import cut_detection
from vrmbg.core.cli.demo import render_mattes
from vrmbg.core.demo import report, shot_files, synth

HELD_OUT_SEEDS = tuple(range(2000, 2100))  # training used shot seeds >= 1,000,000
EDGE_MODES = ("bilinear", "guided", "guided-colour")


def summarise(per_shot: list[dict]) -> dict:
    """Means over shots of the per-shot quality figures."""
    keys = ("iou", "iou_min", "sad", "mae", "stability")
    return {k: round(float(np.mean([q[k] for q in per_shot])), 5) for k in keys}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=6)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", default="384x216")
    parser.add_argument("--edge-sizes", default="1920x1080,3840x2160",
                        help="plate sizes of the upsampling comparison ('' = skip it)")
    parser.add_argument("--edge-shots", type=int, default=2)
    parser.add_argument("--edge-frames", type=int, default=3)
    parser.add_argument("--keyframe-shots", type=int, default=12,
                        help="held-out shots tried for the keyframe section (0 = skip it)")
    parser.add_argument("--keyframe-after", type=int, default=8,
                        help="frames after the keyframe that are measured")
    parser.add_argument("--keyframe-kind", choices=synth.SHOT_KINDS, default="plain",
                        help="kind of generated shot for the keyframe section ('twins': a "
                             "look-alike beside the subject, only a keyframe names which)")
    parser.add_argument("--model", default="demo",
                        help="model source to measure (default: the bundled demo model)")
    parser.add_argument("--only", choices=("keyframes",), default="",
                        help="run only this section")
    parser.add_argument("--update-card", action="store_true",
                        help="write the pipeline figures into the measured model's "
                             "MODEL_CARD.md (the bundled demo model's by default)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.only == "keyframes":
        print(json.dumps({"bench": "quality", "keyframes": keyframe_gains(
            HELD_OUT_SEEDS[:args.keyframe_shots], args.frames + args.keyframe_after, width,
            height, args.keyframe_after, model=args.model, kind=args.keyframe_kind)},
            indent=1))
        return 0
    seeds = HELD_OUT_SEEDS[:args.shots]
    results: dict[str, list[dict]] = {"auto": [], "fp32": [], "per_frame": []}
    seconds: dict[str, list[float]] = {"auto": [], "fp32": []}
    dtypes: dict[str, str] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vrmbg-quality-") as tmp:
        for seed in seeds:
            shot = synth.generate_shot(seed, frames=args.frames, width=width, height=height)
            files = shot_files.write_shot(shot, os.path.join(tmp, str(seed)), name=f"s{seed}")
            gts = list(shot.alpha)
            for precision in ("auto", "fp32"):
                out = render_mattes(files.plate, cache=os.path.join(tmp, f"cache-{precision}"),
                                    precision=precision, device="cpu", log=lambda _m: None,
                                    model=args.model)
                quality = report.quality(out["mattes"], gts)
                quality.pop("iou_per_frame")
                results[precision].append({"seed": seed, **quality})
                seconds[precision].append(out["seconds_per_frame"])
                dtypes[precision] = out["model"]["dtype"]
            quality = report.quality(report.per_frame_mattes(files.plate, precision="fp32",
                                                             model=args.model), gts)
            quality.pop("iou_per_frame")
            results["per_frame"].append({"seed": seed, **quality})
            print(f"seed {seed}: IoU {results['fp32'][-1]['iou']:.3f} (per-frame "
                  f"{quality['iou']:.3f})", file=sys.stderr, flush=True)
    pipeline = {"auto": summarise(results["auto"]), "fp32": summarise(results["fp32"])}
    per_frame = summarise(results["per_frame"])
    output = {
        "bench": "quality",
        "model": args.model, "shots": len(seeds), "frames": args.frames,
        "size": [width, height],
        "seeds": list(seeds),
        "pipeline": {"auto_precision": dtypes.get("auto", ""), **pipeline},
        "seconds_per_frame": {k: round(float(np.mean(v)), 4) for k, v in seconds.items()},
        "per_frame_fp32": per_frame,
        "stability_gain": round(per_frame["stability"] / max(pipeline["fp32"]["stability"],
                                                             1e-12), 3),
        "targets": {
            "iou_ge_0.85": bool(min(pipeline["auto"]["iou"], pipeline["fp32"]["iou"]) >= 0.85),
            "temporal_more_stable": bool(pipeline["fp32"]["stability"] < per_frame["stability"]),
        },
        "cut_detection": cut_detection(args.shots, args.frames, width, height),
        "per_shot": results,
    }
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.edge_sizes.split(",") if size]
    output["edges"] = {f"{w}x{h}": edges(w, h, HELD_OUT_SEEDS[:args.edge_shots],
                                         args.edge_frames, args.model) for w, h in sizes}
    if args.keyframe_shots:
        output["keyframes"] = keyframe_gains(HELD_OUT_SEEDS[:args.keyframe_shots],
                                             args.frames + args.keyframe_after, width, height,
                                             args.keyframe_after, model=args.model,
                                             kind=args.keyframe_kind)
    output["seconds_total"] = round(time.perf_counter() - started, 1)
    print(json.dumps(output, indent=1))
    if args.update_card:
        update_card(output)
    return 0


def edges(width: int, height: int, seeds: tuple[int, ...], frames: int,
          model: str = "demo") -> dict:
    """Bilinear vs guided upsampling of the demo model's mattes on generated shots at one size.

    The chain runs as the engine runs it (the colour path of the pipeline, the card's loop);
    each frame's prediction is brought to the plate by every mode and compared with the
    exact ground truth.
    """
    import torch

    from vrmbg.core.engine.step import FrameStepper
    from vrmbg.core.engine.upsample import upsample
    from vrmbg.core.model import load_model

    stepper = FrameStepper(load_model(model, device="cpu", precision="fp32"))
    figures: dict[str, list[tuple[float, float, float]]] = {m: [] for m in EDGE_MODES}
    cost: dict[str, list[float]] = {m: [] for m in EDGE_MODES}
    for seed in seeds:
        shot = synth.generate_shot(seed, frames=frames, width=width, height=height)
        prev = prior = None
        for index in range(frames):
            rgb01 = synth.to_model_input(shot.rgb[index])
            cur = stepper.prepare(rgb01)
            prior, prev = stepper.step(cur, prev, prior), cur
            truth = shot.alpha[index]
            for mode in EDGE_MODES:
                began = time.perf_counter()
                alpha = upsample(prior, rgb01, height, width, mode)
                cost[mode].append(time.perf_counter() - began)
                figures[mode].append((report.sad(alpha, truth), report.mse(alpha, truth),
                                      report.gradient_error(alpha, truth)))
        print(f"edges {width}x{height} seed {seed} done", file=sys.stderr, flush=True)
    rng = np.random.default_rng(0)
    card = torch.from_numpy(rng.random((1, 1, 1024, 1024), dtype=np.float32))
    plate = rng.random((height, width, 3), dtype=np.float32)
    out: dict[str, dict] = {}
    for mode in EDGE_MODES:
        sad_k, mse, grad = (float(np.mean(column)) for column in zip(*figures[mode]))
        card_ms = []
        for _ in range(3):
            began = time.perf_counter()
            upsample(card, plate, height, width, mode)
            card_ms.append(time.perf_counter() - began)
        out[mode] = {"sad": round(sad_k, 4), "mse_x1000": round(mse * 1000, 4),
                     "gradient_error": round(grad, 4),
                     "ms_per_frame_demo_192": round(1000 * float(np.median(cost[mode])), 1),
                     "ms_per_frame_card_1024": round(1000 * float(np.median(card_ms)), 1)}
    base = out["bilinear"]
    for mode in EDGE_MODES[1:]:
        out[mode]["vs_bilinear_percent"] = {
            key: round(100.0 * (out[mode][key] - base[key]) / max(base[key], 1e-12), 1)
            for key in ("sad", "mse_x1000", "gradient_error")}
    out["frames"] = len(figures["bilinear"])
    out["wins"] = {mode: all(out[mode]["vs_bilinear_percent"][k] < 0
                             for k in ("sad", "mse_x1000", "gradient_error"))
                   for mode in EDGE_MODES[1:]}
    return out


HINT_RADIUS = 6  # pixels a coarse hint grows (garbage matte) or shrinks (core matte) the truth
CONN_STEP, CONN_MIN = 0.1, 0.15  # connectivity error: threshold step and smallest counted drop
KEY_KINDS = ("truth", "hint_dilated", "hint_eroded")
METRICS = ("mad", "mse", "grad", "conn", "dtssd")


def keyframe_gains(seeds: tuple[int, ...], frames: int, width: int, height: int,
                   after: int, *, model: str = "demo", kind: str = "plain") -> dict:
    """What a keyframe buys on held-out shots: for each shot, k is the frame where the demo
    model (fp32, the card's loop as the engine runs it) errs most; frames k+1..k+after are
    measured without a keyframe, and with each kind of keyframe at k continued two ways:
    from the keyframe as given (`given`, what vrmbg does: the keyframe is k's matte and the
    next frame's prior) and from the model's own prediction of k with the keyframe as its
    prior (`refined`). Frame k itself is measured both ways too. `erring` averages the half
    of the shots with the largest error without a keyframe."""
    from vrmbg.core.engine.step import FrameStepper
    from vrmbg.core.model import load_model

    stepper = FrameStepper(load_model(model, device="cpu", precision="fp32"))
    shots = []
    for seed in seeds:
        shots.append(_keyframe_shot(stepper, seed, frames, width, height, after, kind))
        print(f"keyframes seed {seed}: k={shots[-1]['k']}", file=sys.stderr, flush=True)
    worst = sorted(shots, key=lambda s: -s["after_k"]["none"]["mad"])[:max(1, len(shots) // 2)]
    return {"model": f"{model} (fp32, CPU)", "shot_kind": kind, "frames_measured": after,
            "size": [width, height], "hint_radius_px": HINT_RADIUS,
            "all": _gain_table(shots), "erring": _gain_table(worst),
            "erring_seeds": [s["seed"] for s in worst], "per_shot": shots}


def _keyframe_shot(stepper, seed: int, frames: int, width: int, height: int,
                   after: int, kind: str = "plain") -> dict:
    """One shot's figures (see `keyframe_gains`)."""
    from vrmbg.core.engine.step import matte_state

    shot = synth.generate_shot(seed, frames=frames, width=width, height=height, kind=kind)
    truth = list(shot.alpha)
    curs = [stepper.prepare(synth.to_model_input(rgb.astype(np.float16).astype(np.float32)))
            for rgb in shot.rgb]
    base = _chain(stepper, curs, None, None, 0, frames, height, width)
    last = frames - after - 1
    k = 1 + int(np.argmax([_mad(base[t], truth[t]) for t in range(1, last + 1)]))
    span = range(k + 1, k + after + 1)
    row = {"seed": seed, "k": k, "at_k": {"none": _mad(base[k], truth[k])},
           "after_k": {"none": _figures(base, truth, span)}}
    for kind, key in _keys(truth[k]).items():
        state = matte_state(key, stepper)
        predicted = stepper.step(curs[k], curs[k], state)
        own = stepper.to_plate(predicted, height, width)
        row["at_k"][f"{kind}_given"] = _mad(key, truth[k])
        row["at_k"][f"{kind}_refined"] = _mad(own, truth[k])
        for way, (prior, matte) in {"given": (state, key), "refined": (predicted, own)}.items():
            mattes = dict(base)
            mattes[k] = matte
            mattes.update(_chain(stepper, curs, curs[k], prior, k + 1, k + after + 1, height,
                                 width))
            row["after_k"][f"{kind}_{way}"] = _figures(mattes, truth, span)
    return row


def _chain(stepper, curs, prev, prior, first: int, stop: int, height: int,
           width: int) -> dict[int, np.ndarray]:
    """The card's loop over frames first..stop-1 from a prior (None: the chain's start)."""
    out = {}
    for t in range(first, stop):
        prior = stepper.step(curs[t], prev, prior)
        prev = curs[t]
        out[t] = stepper.to_plate(prior, height, width)
    return out


def _keys(truth: np.ndarray) -> dict[str, np.ndarray]:
    """The keyframes tried: the exact truth, and the truth thresholded at 0.5 then grown or
    shrunk by HINT_RADIUS pixels (a garbage matte, a core matte)."""
    solid = truth > 0.5
    return {"truth": truth.astype(np.float32),
            "hint_dilated": _grow(solid, HINT_RADIUS).astype(np.float32),
            "hint_eroded": (~_grow(~solid, HINT_RADIUS)).astype(np.float32)}


def _grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """A binary mask dilated by a (2 radius + 1)² square."""
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        for shift in range(1, radius + 1):
            for sign in (1, -1):
                grown |= _shifted(out, sign * shift, axis)
        out = grown
    return out


def _shifted(mask: np.ndarray, shift: int, axis: int) -> np.ndarray:
    """`mask` moved by `shift` pixels along `axis`, False coming in."""
    out = np.zeros_like(mask)
    src = [slice(None)] * 2
    dst = [slice(None)] * 2
    src[axis] = slice(0, -shift) if shift > 0 else slice(-shift, None)
    dst[axis] = slice(shift, None) if shift > 0 else slice(0, shift)
    out[tuple(dst)] = mask[tuple(src)]
    return out


def _figures(mattes: dict[int, np.ndarray], truth: list[np.ndarray], span: range) -> dict:
    """Mean MAD, MSE, gradient, connectivity errors and dtSSD over the frames of `span`."""
    rows = [(_mad(mattes[t], truth[t]), _mse(mattes[t], truth[t]),
             _grad(mattes[t], truth[t]), _conn(mattes[t], truth[t]),
             _dtssd(mattes[t], mattes[t - 1], truth[t], truth[t - 1])) for t in span]
    return {name: round(float(np.mean(column)), 4) for name, column in zip(METRICS, zip(*rows))}


def _gain_table(shots: list[dict]) -> dict:
    """Means over shots, and each keyframe's change against no keyframe in percent."""
    table: dict[str, dict] = {"at_k_mad": {}, "after_k": {}, "change_percent": {}}
    for name in shots[0]["at_k"]:
        table["at_k_mad"][name] = round(float(np.mean([s["at_k"][name] for s in shots])), 4)
    for name in shots[0]["after_k"]:
        table["after_k"][name] = {m: round(float(np.mean([s["after_k"][name][m]
                                                          for s in shots])), 4)
                                  for m in METRICS}
    none = table["after_k"]["none"]
    for name, figures in table["after_k"].items():
        if name != "none":
            table["change_percent"][name] = {
                m: round(100.0 * (figures[m] - none[m]) / max(none[m], 1e-12), 1)
                for m in METRICS}
    return table


# The matting metrics in the units RVM's evaluation reports them.
def _mad(alpha: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute difference x 1000."""
    return float(np.abs(alpha.astype(np.float64) - gt).mean() * 1e3)


def _mse(alpha: np.ndarray, gt: np.ndarray) -> float:
    """Mean squared difference x 1000."""
    return float(((alpha.astype(np.float64) - gt) ** 2).mean() * 1e3)


def _grad(alpha: np.ndarray, gt: np.ndarray) -> float:
    """Gradient error / 1000, both mattes stretched to [0, 1] first."""
    return report.gradient_error(_stretch(alpha), _stretch(gt)) / 1e3


def _stretch(image: np.ndarray) -> np.ndarray:
    """Min-max normalised to [0, 1] (a flat image stays as it is)."""
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else image.astype(np.float64)


def _dtssd(alpha: np.ndarray, alpha_prev: np.ndarray, gt: np.ndarray,
           gt_prev: np.ndarray) -> float:
    """Temporal error: RMS of the matte's change minus the truth's change, x 100."""
    change = (alpha.astype(np.float64) - alpha_prev) - (gt.astype(np.float64) - gt_prev)
    return float(np.sqrt((change ** 2).sum() / gt.size) * 1e2)


def _conn(alpha: np.ndarray, gt: np.ndarray) -> float:
    """Connectivity error / 1000: how far each pixel's alpha rises above the level up to
    which it stays 4-connected to the largest region the matte and the truth share."""
    level = np.full(gt.shape, -1.0)
    steps = np.arange(0.0, 1.0 + CONN_STEP / 2, CONN_STEP)
    for below, threshold in zip(steps[:-1], steps[1:]):
        kept = _largest_region((gt >= threshold) & (alpha >= threshold))
        level[(level == -1.0) & ~kept] = below
    level[level == -1.0] = 1.0

    def phi(image: np.ndarray) -> np.ndarray:
        rise = image - level
        return 1.0 - rise * (rise >= CONN_MIN)

    return float(np.abs(phi(gt.astype(np.float64)) - phi(alpha.astype(np.float64))).sum()
                 / 1e3)


def _largest_region(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a binary mask (label spreading with pointer
    jumping: each pixel takes the smallest label among its neighbours until none changes)."""
    if not mask.any():
        return mask
    height, width = mask.shape
    empty = height * width
    labels = np.where(mask, np.arange(empty).reshape(height, width), empty)
    while True:
        low = labels.copy()
        np.minimum(low[1:], labels[:-1], out=low[1:])
        np.minimum(low[:-1], labels[1:], out=low[:-1])
        np.minimum(low[:, 1:], labels[:, :-1], out=low[:, 1:])
        np.minimum(low[:, :-1], labels[:, 1:], out=low[:, :-1])
        low = np.where(mask, low, empty)
        flat = np.append(low.ravel(), empty)
        low = np.where(mask, flat[low], empty)  # jump to the label's own label
        if np.array_equal(low, labels):
            break
        labels = low
    counts = np.bincount(labels[mask])
    return labels == int(np.argmax(counts))


def update_card(output: dict) -> None:
    """Record the pipeline figures in the bundled model's card (keeps the training record)."""
    from vrmbg.core.demo.train import read_training_summary, write_model_card
    from vrmbg.core.demo.train_settings import DEMO_FOLDER

    fp32, auto = output["pipeline"]["fp32"], output["pipeline"]["auto"]
    quality = {
        "shots": f"{output['shots']} x {output['frames']} frames at "
                 f"{output['size'][0]}x{output['size'][1]}",
        "mean IoU fp32": fp32["iou"], f"mean IoU {output['pipeline']['auto_precision']}":
            auto["iou"], "SAD/frame (thousands)": fp32["sad"], "MAE": fp32["mae"],
        "stability temporal": fp32["stability"],
        "stability per-frame": output["per_frame_fp32"]["stability"],
    }
    folder = DEMO_FOLDER if output["model"] == "demo" else output["model"]
    write_model_card(folder, read_training_summary(folder), quality)


if __name__ == "__main__":
    raise SystemExit(main())
