"""Plate decode speed: our PlateSequence.read against raw OpenImageIO on the same files.

Prints one JSON object. For each case (2K/4K RGBA half EXR with ZIP, PIZ, DWAA; a 2K RGB
half ZIP EXR; a 2K 10-bit DPX) it reports ms per frame for:

- `ours`: `PlateSequence(pattern).read(frame).rgb` (display-window float32 RGB, checks included)
- `oiio_input`: `ImageInput.open(f).read_image(0, 0, 0, 3, oiio.FLOAT)` (the natural
  call for float32 RGB; display window == data window in these files)
- `oiio_imagebuf`: `ImageBuf(f).get_pixels(oiio.FLOAT, roi_full with channels 0-3)`

and `ratio` = ours / the faster raw call (must stay <= 1.2), the median of per-read ratios:
the three methods read the same frame back to back (order alternating), so load from other
processes on the machine affects them alike. ms figures are medians; `min_ms` and
`ratio_of_min` use the fastest sample of each method.

Run: python tests/benchmarks/io_bench.py [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import OpenImageIO as oiio

from vrmbg.core.io.plates import PlateSequence

LIMIT = 1.2
SIZES = {"2K": (2048, 1080), "4K": (4096, 2160)}


def plate_pixels(width: int, height: int, frame: int, channels: int) -> np.ndarray:
    """A plate-like image: smooth gradients, a few shapes and film-grain noise."""
    rng = np.random.default_rng(frame)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = [0.18 + 0.5 * xx / width, 0.1 + 0.6 * yy / height, 0.3 + 0.2 * np.sin(xx / 97.0)]
    disc = ((xx - width * 0.4 - frame * 7) ** 2 + (yy - height * 0.5) ** 2) < (height * 0.2) ** 2
    planes = [b + 1.5 * disc for b in base] + [disc.astype(np.float32)]
    image = np.stack(planes[:channels], axis=-1).astype(np.float32)
    grain = rng.normal(0, 0.01, (256, 256, channels)).astype(np.float32)
    reps = (-(-height // 256), -(-width // 256), 1)
    image += np.tile(grain, reps)[:height, :width]
    return image


def write_exr(path: str, pixels: np.ndarray, compression: str) -> None:
    """Write a half EXR with R,G,B(,A) channels."""
    height, width, channels = pixels.shape
    spec = oiio.ImageSpec(width, height, channels, oiio.HALF)
    spec.channelnames = ("R", "G", "B", "A")[:channels]
    spec.attribute("compression", compression)
    out = oiio.ImageOutput.create(path)
    if out is None or not out.open(path, spec):
        raise RuntimeError(oiio.geterror())
    out.write_image(pixels.astype(np.float16))
    out.close()


def write_dpx(path: str, pixels: np.ndarray) -> None:
    """Write a 10-bit RGB DPX from float pixels in [0, 1]."""
    height, width, _ = pixels.shape
    spec = oiio.ImageSpec(width, height, 3, oiio.UINT16)
    spec.attribute("oiio:BitsPerSample", 10)
    out = oiio.ImageOutput.create(path)
    if out is None or not out.open(path, spec):
        raise RuntimeError(oiio.geterror())
    out.write_image(np.clip(pixels[..., :3], 0, 1))
    out.close()


def make_case(folder: str, name: str, size: str, kind: str, frames: int) -> str:
    """Write `frames` frames of one case; returns the `####` pattern."""
    width, height = SIZES[size]
    ext = "dpx" if kind == "dpx" else "exr"
    pattern = os.path.join(folder, f"{name}.####.{ext}")
    for frame in range(1, frames + 1):
        path = pattern.replace("####", f"{frame:04d}")
        if kind == "dpx":
            write_dpx(path, plate_pixels(width, height, frame, 3))
        else:
            compression, channels = kind.split("-")
            write_exr(path, plate_pixels(width, height, frame, int(channels)), compression)
    return pattern


def raw_input(path: str) -> np.ndarray:
    """Float32 RGB straight from ImageInput."""
    image = oiio.ImageInput.open(path)
    pixels = image.read_image(0, 0, 0, 3, oiio.FLOAT)
    image.close()
    return pixels


def raw_imagebuf(path: str) -> np.ndarray:
    """Float32 RGB of the display window from ImageBuf."""
    buf = oiio.ImageBuf(path)
    roi = buf.roi_full
    roi.chbegin, roi.chend = 0, 3
    return buf.get_pixels(oiio.FLOAT, roi)


def time_case(pattern: str, frames: int, repeats: int) -> dict:
    """Median ms/frame of each method on one case, interleaved."""
    sequence = PlateSequence(pattern)
    paths = [sequence.path_for(f) for f in sequence.frames]
    methods = {
        "ours": lambda i: sequence.read(sequence.frames[i]).rgb,
        "oiio_input": lambda i: raw_input(paths[i]),
        "oiio_imagebuf": lambda i: raw_imagebuf(paths[i]),
    }
    check = [m(0) for m in methods.values()]  # warm caches; all must agree
    for other in check[1:]:
        if not np.array_equal(check[0], other):
            raise AssertionError(f"{pattern}: readers disagree")
    samples: dict[str, list[float]] = {name: [] for name in methods}
    order = list(methods)
    for repeat in range(repeats):
        for index in range(frames):
            for name in (order if (repeat + index) % 2 else order[::-1]):
                start = time.perf_counter()
                methods[name](index)
                samples[name].append((time.perf_counter() - start) * 1000.0)
    result: dict = {name: round(statistics.median(values), 2) for name, values in samples.items()}
    paired = [ours / min(a, b) for ours, a, b in zip(
        samples["ours"], samples["oiio_input"], samples["oiio_imagebuf"])]
    result["ratio"] = round(statistics.median(paired), 3)
    best = {name: min(values) for name, values in samples.items()}
    result["min_ms"] = {name: round(value, 2) for name, value in best.items()}
    result["ratio_of_min"] = round(best["ours"] / min(best["oiio_input"],
                                                      best["oiio_imagebuf"]), 3)
    return result


def main() -> int:
    """Generate the files, time them, print the JSON summary."""
    quick = "--quick" in sys.argv
    cases = [
        ("2K_exr_zip_rgba_half", "2K", "zip-4"), ("2K_exr_piz_rgba_half", "2K", "piz-4"),
        ("2K_exr_dwaa_rgba_half", "2K", "dwaa-4"), ("2K_exr_zip_rgb_half", "2K", "zip-3"),
        ("4K_exr_zip_rgba_half", "4K", "zip-4"), ("4K_exr_piz_rgba_half", "4K", "piz-4"),
        ("4K_exr_dwaa_rgba_half", "4K", "dwaa-4"), ("2K_dpx_10bit", "2K", "dpx"),
    ]
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory(prefix="vrmbg_io_bench_") as folder:
        for name, size, kind in cases:
            frames = 2 if size == "4K" or quick else 3
            repeats = 2 if quick else (4 if size == "4K" else 5)
            pattern = make_case(folder, name, size, kind, frames)
            results[name] = time_case(pattern, frames, repeats)
    worst = max(r["ratio"] for r in results.values())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(json.dumps({
        "benchmark": "io_decode_ms_per_frame",
        "oiio_version": oiio.__version__,
        "oiio_threads": oiio.get_int_attribute("threads"),
        "cpu_count": os.cpu_count(),
        "load_average_1min": load,
        "cases": results,
        "max_ratio": worst,
        "limit": LIMIT,
        "within_limit": worst <= LIMIT,
        "seconds": round(time.perf_counter() - started, 1),
    }, indent=2))
    return 0 if worst <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
