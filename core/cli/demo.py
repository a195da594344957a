"""`vrmbg demo`: see the product work on a fresh machine, no downloads, about a minute on CPU."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from ..errors import UsageError
from .options import add_schema_arguments, settings_from

DESCRIPTION = """\
Render a generated shot with the bundled demo model, through the real pipeline.

The demo writes a short synthetic shot (scene-linear ACEScg EXR, frames 1001+, with its
exact ground-truth alpha), renders its mattes exactly as `vrmbg render` does (EXR in, OCIO
to the model's colour space, the temporal cache, matte EXRs out), and writes:

  OUTDIR/contact_sheet.png   rows = frames; plate, matte, plate over a checkerboard, truth
  OUTDIR/report.json         IoU, SAD, temporal stability, seconds per frame, every path
  OUTDIR/plate/  OUTDIR/gt/  the shot and its ground truth
  OUTDIR/cache/...           the matte EXRs (Read-node ready)

The demo model is demo-only: trained on such synthetic shots, it means nothing on real
plates. Real work uses the VRMBG-3.0 weights (see `vrmbg render --help`).
"""

EPILOG = """\
examples:
  vrmbg demo                                  into ./vrmbg-demo
  vrmbg demo /tmp/demo --frames 12 --size 256x256
  vrmbg demo out/ --seed 3 --dpx              from 10-bit ACEScct DPX plates instead of EXR
"""

DEFAULT_OUTDIR = "vrmbg-demo"
DEFAULT_SEED = 4  # held out: the demo model never saw shot seeds below one million


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` sub-command."""
    parser = subparsers.add_parser(
        "demo", help="render a generated shot with the bundled demo model (no downloads)",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", nargs="?", default=DEFAULT_OUTDIR,
                        help=f"folder for everything the demo writes (default: {DEFAULT_OUTDIR})")
    parser.add_argument("--frames", type=int, default=24, metavar="N",
                        help="length of the shot (default: %(default)s)")
    parser.add_argument("--size", default="384x216", metavar="WxH",
                        help="plate size (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="shot seed; 0..999999 were never used in training (default: "
                             "%(default)s)")
    parser.add_argument("--dpx", action="store_true",
                        help="also write 10-bit ACEScct DPX plates and render from those")
    add_schema_arguments(parser, names=["device", "precision"])
    parser.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    """'384x216' -> (384, 216); UsageError for anything else."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r} is not WIDTHxHEIGHT, e.g. 384x216") from None
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise UsageError(f"--size {text!r}: width and height must be 16..4096")
    return width, height


def _say(message: str) -> None:
    print(f"vrmbg demo: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Generate, render, measure, and tell the user where to look."""
    width, height = parse_size(args.size)
    if not 2 <= args.frames <= 1000:
        raise UsageError("--frames must be 2..1000")
    chosen = settings_from(args, ["device", "precision"])
    outdir = os.path.abspath(args.outdir)
    result = render_demo(outdir, frames=args.frames, width=width, height=height,
                         seed=args.seed, dpx=args.dpx, device=chosen.device,
                         precision=chosen.precision, log=_say)
    q = result["quality"]
    _say(f"{result['frames']} frames at {result['seconds_per_frame']:.3f} s/frame; IoU "
         f"{q['iou']:.3f} (min {q['iou_min']:.3f}), SAD {q['sad']:.2f}, stability "
         f"{q['stability']:.4f}")
    print(f"Look at {result['paths']['contact_sheet']}")
    print(f"Report  {result['paths']['report']}")
    print(f"Mattes  {result['paths']['mattes']}")
    return 0


def render_demo(outdir: str, *, frames: int = 24, width: int = 384, height: int = 216,
                seed: int = DEFAULT_SEED, dpx: bool = False, device: str = "auto",
                precision: str = "auto", model: str = "demo", log=_say) -> dict[str, Any]:
    """Do the whole demo into `outdir`; returns the report (also written as report.json)."""
    started = time.perf_counter()
    from ..demo import report, shot_files, synth

    log(f"generating a {frames}-frame {width}x{height} shot (seed {seed}) in {outdir}")
    shot = synth.generate_shot(seed, frames=frames, width=width, height=height)
    files = shot_files.write_shot(shot, outdir, name="demo", dpx_space="ACEScct" if dpx else "")
    plate_pattern = files.dpx if dpx else files.plate
    input_space = "ACEScct" if dpx else ""  # EXR: the config's scene_linear role (ACEScg)

    log(f"loading the '{model}' model ...")
    rendered = render_mattes(plate_pattern, input_space=input_space, cache=os.path.join(
        outdir, "cache"), model=model, device=device, precision=precision, log=log)
    mattes, quality = rendered["mattes"], report.quality(rendered["mattes"], list(shot.alpha))

    rows = report.pick_rows(frames, 5)
    sheet = report.write_contact_sheet(
        os.path.join(outdir, "contact_sheet.png"),
        [rendered["model_rgb"](shot.frames[i]) for i in rows], [mattes[i] for i in rows],
        [shot.alpha[i] for i in rows])
    result = {
        "frames": frames,
        "frame_range": f"{shot.frames[0]}-{shot.frames[-1]}",
        "size": [width, height],
        "seed": seed,
        "plates": "ACEScct 10-bit DPX" if dpx else "ACEScg half EXR",
        "colour": rendered["colour"],
        "model": rendered["model"],
        "seconds_per_frame": rendered["seconds_per_frame"],
        "seconds_total": 0.0,
        "quality": quality,
        "paths": {"plate": plate_pattern, "ground_truth": files.alpha,
                  "mattes": rendered["matte_pattern"], "contact_sheet": sheet,
                  "report": os.path.join(outdir, "report.json")},
    }
    result["seconds_total"] = round(time.perf_counter() - started, 3)
    write_json(result["paths"]["report"], result)
    return result


def render_mattes(pattern: str, *, input_space: str = "", cache: str, model: str = "demo",
                  device: str = "auto", precision: str = "auto", colour_override=None,
                  log=_say) -> dict[str, Any]:
    """Mattes of a plate sequence through the real pipeline (one session, the temporal cache).

    Returns the mattes read back from the written EXRs, the matte pattern, timing, and a
    function giving the model-space RGB of a frame (for the contact sheet).
    `colour_override` replaces the ColourTransform (tests use it to feed a wrong colour path).
    """
    from ..engine.opening import open_session
    from ..io.mattes import read_matte
    from ...plugin import schema

    settings = dict(schema.defaults(), model=model, device=device, precision=precision,
                    input_colorspace=input_space)
    session = open_session(pattern, settings, cache_root=cache, colour=colour_override)
    plates, colour, stepper = session.plates, session.colour, session.stepper
    loaded = stepper.loaded
    log(f"rendering {len(plates.frames)} frames ({colour.describe()}, model at "
        f"{stepper.resolution}px, {str(loaded.dtype).replace('torch.', '')} on "
        f"{loaded.device})")
    progress = _progress(len(plates.frames))
    started = time.perf_counter()
    try:
        paths = session.ensure_range(plates.frames, progress=lambda done, total, frame:
                                     progress.update(done, f"frame {frame}"))
    finally:
        progress.close()
    seconds = time.perf_counter() - started
    mattes = [read_matte(paths[f]) for f in plates.frames]
    return {
        "mattes": mattes,
        "matte_pattern": session.matte_pattern,
        "seconds_per_frame": round(seconds / len(plates.frames), 4),
        "colour": colour.describe(),
        "model": {"source": model, "fingerprint": str(loaded.fingerprint),
                  "resolution": stepper.resolution,
                  "dtype": str(loaded.dtype).replace("torch.", ""),
                  "device": str(loaded.device)},
        "model_rgb": lambda frame: colour.to_model(plates.read(frame).rgb),
    }


def _progress(total: int):
    """A progress display on stderr (bar on a terminal, plain lines otherwise)."""
    from ..render.progress import Progress

    return Progress(total, label="demo", stream=sys.stderr)


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write the JSON report atomically."""
    from ..fs import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
