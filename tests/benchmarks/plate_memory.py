"""Peak memory of `vrmbg render` on large plates: an 8K (7680x4320) RGB half EXR shot against
a 2K one, with the tiny test model (so the figure is the plate pipeline's, not the network's).

Prints one JSON object: for each size the peak RSS of the render process (MB, from
getrusage of the child) and the plate's own float32 RGB size for scale.

Run: python tests/benchmarks/plate_memory.py [--frames 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from plate_factory import write_exr  # noqa: E402
from render_helpers import make_model  # noqa: E402

SIZES = {"2K": (2048, 1080), "8K": (7680, 4320)}


def plate(width: int, height: int, frame: int) -> np.ndarray:
    """A smooth plate with a bright disc (something to matte)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    disc = ((xx - width * (0.4 + 0.02 * frame)) ** 2 + (yy - height / 2) ** 2
            < (height / 4) ** 2).astype(np.float32)
    base = 0.1 + 0.2 * xx / width
    return np.stack([base + disc * 0.8, base * 0.5 + disc * 0.6, base * 0.3 + disc * 0.2],
                    axis=-1)


_MEASURE = ("import resource, subprocess, sys\n"
            "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "sys.stderr.write(done.stderr[-2000:] if done.returncode else '')\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(done.returncode)\n")


def peak_rss_mb(args: list[str]) -> float:
    """Peak resident set size (MB) of a command, measured by a fresh parent process."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, *args], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return round(int(done.stdout.split()[-1]) / 1024.0, 1)  # ru_maxrss is in KB on Linux


def main() -> None:
    """Render each size in a fresh process and report its peak RSS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2)
    args = parser.parse_args()
    result = {}
    with tempfile.TemporaryDirectory() as root:
        model = make_model(os.path.join(root, "model"))
        for name in ("2K", "8K"):
            width, height = SIZES[name]
            folder = os.path.join(root, name)
            os.makedirs(folder)
            for frame in range(1001, 1001 + args.frames):
                write_exr(os.path.join(folder, f"plate.{frame}.exr"),
                          plate(width, height, frame - 1001))
            command = [sys.executable, "-m", "vrmbg.core", "render",
                       os.path.join(folder, "plate.####.exr"), "-o",
                       os.path.join(folder, "out", "m.####.exr"), "--model", model,
                       "--device", "cpu", "--progress", "quiet"]
            result[name] = {"width": width, "height": height, "frames": args.frames,
                            "peak_rss_mb": peak_rss_mb(command),
                            "plate_float32_mb": round(width * height * 3 * 4 / 2 ** 20, 1)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
