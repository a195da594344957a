"""CPU per frame of a whole `vrmbg render` with a near-free model; prints one JSON object.

What a render farm pays around the model: 2K half ZIP RGBA plates, the tiny model at 64²
(its step costs next to nothing), CPU time (user + system, the render process and its
children) of a long render minus a short one, divided by the frames between them, so that
start-up (imports, model load) cancels out. The yardstick is the raw OpenImageIO decode of
the same files, the feed-the-GPU target being <= 1.5x.

    python tests/benchmarks/render_cpu.py [--frames 32] [--width 2048] [--height 1080]
                                          [--repeats 2] [--output-type alpha]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import OpenImageIO as oiio

sys.path.insert(0, os.path.dirname(__file__))
from engine_bench import FIRST, write_plates  # noqa: E402

SHORT = 2  # frames of the render whose CPU is subtracted (start-up, model load)


def children_cpu() -> float:
    """User + system CPU seconds of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def render_cpu(pattern: str, frames: int, model: str, work: str, output_type: str) -> float:
    """CPU seconds of one `vrmbg render` of the first `frames` frames on a fresh cache."""
    out = tempfile.mkdtemp(dir=work)
    args = [sys.executable, "-m", "vrmbg.core", "render", pattern,
            "-o", os.path.join(out, "m.####.exr"), "--frames", f"{FIRST}-{FIRST + frames - 1}",
            "--model", model, "--resolution", "64", "--device", "cpu",
            "--cache-dir", os.path.join(out, "cache"), "--output-type", output_type]
    before = children_cpu()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spent = children_cpu() - before
    shutil.rmtree(out, ignore_errors=True)
    return spent


def raw_decode_cpu(pattern: str, frames: int) -> float:
    """CPU seconds per frame of reading every frame's pixels with OpenImageIO alone."""
    best = None
    for _ in range(2):
        began = time.process_time()
        for index in range(frames):
            image = oiio.ImageInput.open(pattern.replace("####", str(FIRST + index)))
            image.read_image(oiio.HALF)
            image.close()
        spent = (time.process_time() - began) / frames
        best = spent if best is None else min(best, spent)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output-type", default="alpha", choices=("alpha", "rgba"))
    args = parser.parse_args()

    from vrmbg.core.model.loader import init_random

    work = tempfile.mkdtemp(prefix="vrmbg-render-cpu-")
    try:
        pattern = write_plates(os.path.join(work, "plates"), args.frames, args.width,
                               args.height, channels=4)
        model = os.path.join(work, "tiny")
        init_random(model, config="tiny", seed=1)
        per_frame = []
        for _ in range(args.repeats):
            long = render_cpu(pattern, args.frames, model, work, args.output_type)
            short = render_cpu(pattern, SHORT, model, work, args.output_type)
            per_frame.append((long - short) / (args.frames - SHORT))
        render_ms = min(per_frame) * 1000
        decode_ms = raw_decode_cpu(pattern, args.frames) * 1000
        print(json.dumps({
            "plates": f"{args.width}x{args.height} half ZIP RGBA",
            "output_type": args.output_type,
            "frames": args.frames,
            "load_average": os.getloadavg()[0],
            "render_cpu_ms_per_frame": round(render_ms, 1),
            "render_cpu_ms_per_frame_each_repeat": [round(v * 1000, 1) for v in per_frame],
            "raw_decode_cpu_ms_per_frame": round(decode_ms, 1),
            "ratio_to_raw_decode": round(render_ms / decode_ms, 2),
            "target_ratio": 1.5,
        }, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
