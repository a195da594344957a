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

Usage: python tests/benchmarks/quality_bench.py [--shots 6] [--frames 16] [--size 384x216]
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
from vrmbg.core.demo import report, synth

HELD_OUT_SEEDS = tuple(range(2000, 2100))  # training used shot seeds >= 1,000,000


def summarise(per_shot: list[dict]) -> dict:
    """Means over shots of the per-shot quality figures."""
    keys = ("iou", "iou_min", "sad", "mae", "stability")
    return {k: round(float(np.mean([q[k] for q in per_shot])), 5) for k in keys}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=6)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", default="384x216")
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
            files = synth.write_shot(shot, os.path.join(tmp, str(seed)), name=f"s{seed}")
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
        "seconds_total": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(output, indent=1))
    if args.update_card:
        update_card(output)
    return 0


def update_card(output: dict) -> None:
    """Record the pipeline figures in the bundled model's card (keeps the training record)."""
    from vrmbg.core.demo.train import read_training_summary, write_model_card
    from vrmbg.core.demo.train_cli import DEMO_FOLDER

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
