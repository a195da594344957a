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

Usage: python tests/benchmarks/quality_bench.py [--shots 6] [--frames 16] [--size 384x216]
           [--edge-sizes 1920x1080,3840x2160] [--edge-shots 2] [--edge-frames 3]
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
    parser.add_argument("--update-card", action="store_true",
                        help="write the pipeline figures into the demo model's MODEL_CARD.md")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
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
                                    precision=precision, device="cpu", log=lambda _m: None)
                quality = report.quality(out["mattes"], gts)
                quality.pop("iou_per_frame")
                results[precision].append({"seed": seed, **quality})
                seconds[precision].append(out["seconds_per_frame"])
                dtypes[precision] = out["model"]["dtype"]
            quality = report.quality(report.per_frame_mattes(files.plate, precision="fp32"), gts)
            quality.pop("iou_per_frame")
            results["per_frame"].append({"seed": seed, **quality})
            print(f"seed {seed}: IoU {results['fp32'][-1]['iou']:.3f} (per-frame "
                  f"{quality['iou']:.3f})", file=sys.stderr, flush=True)
    pipeline = {"auto": summarise(results["auto"]), "fp32": summarise(results["fp32"])}
    per_frame = summarise(results["per_frame"])
    output = {
        "bench": "quality",
        "shots": len(seeds), "frames": args.frames, "size": [width, height],
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
                                         args.edge_frames) for w, h in sizes}
    output["seconds_total"] = round(time.perf_counter() - started, 1)
    print(json.dumps(output, indent=1))
    if args.update_card:
        update_card(output)
    return 0


def edges(width: int, height: int, seeds: tuple[int, ...], frames: int) -> dict:
    """Bilinear vs guided upsampling of the demo model's mattes on generated shots at one size.

    The chain runs as the engine runs it (the colour path of the pipeline, the card's loop);
    each frame's prediction is brought to the plate by every mode and compared with the
    exact ground truth.
    """
    import torch

    from vrmbg.core.engine.step import FrameStepper
    from vrmbg.core.engine.upsample import upsample
    from vrmbg.core.model import load_model

    stepper = FrameStepper(load_model("demo", device="cpu", precision="fp32"))
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
    write_model_card(DEMO_FOLDER, read_training_summary(DEMO_FOLDER), quality)


if __name__ == "__main__":
    raise SystemExit(main())
