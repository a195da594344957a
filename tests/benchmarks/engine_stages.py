"""CPU per frame of each engine stage on one thread; prints one JSON object.

Where the engine's CPU goes for a 2K (and 4K) half ZIP EXR plate, stage by stage, each timed
alone on the calling thread as the engine's reader and writer threads run them: decode,
colour conversion, resize to the model, resize back to the plate, matte write, state write.
The raw OpenImageIO decode of the same files is the yardstick (the feed-the-GPU target is the
engine's CPU <= 1.5x the decode's).

On a GPU host the colour conversion (`core.colour.device`) and both resizes run on the GPU, so
`host_stages_with_a_gpu` sums only the stages left on the CPU there: decode and the two
writes (the upload of the half plate is not measured here). `colour_device_tables_here` is
the device path run by torch on this CPU, which is why a CPU-only host keeps OCIO.
`instead` gives the two stages that have faster forms as they ran before: OCIO's float
processor on a half plate (for the plates' ACEScg and for linear Rec.709, where OCIO's
half processor makes a difference), and OpenImageIO writing the matte; and, for a 512
preview tier, the colour of only the pixels its resize reads (`FrameStepper.pixels_read`).

    python tests/benchmarks/engine_stages.py [--frames 6] [--sizes 2048x1080,4096x2160]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import OpenImageIO as oiio
import torch

sys.path.insert(0, os.path.dirname(__file__))
from engine_bench import FIRST, LINEAR_REC709, ZeroStepper, disc_matte, write_plates  # noqa: E402

from vrmbg.core.colour.device import build_device_colour  # noqa: E402
from vrmbg.core.engine.opening import open_session  # noqa: E402
from vrmbg.core.io import mattes  # noqa: E402
from vrmbg.core.colour.transform import ColourTransform  # noqa: E402
from vrmbg.core.engine.upsample import resize_taps  # noqa: E402
from vrmbg.core.io.mattes import write_matte  # noqa: E402
from vrmbg.core.model.loader import init_random, load_model  # noqa: E402


def cpu_ms(action: Callable[[int], object], frames: list[int]) -> float:
    """Best-of-two CPU milliseconds per frame of `action(frame)` over `frames`."""
    best = None
    for _ in range(2):
        began = time.process_time()
        for frame in frames:
            action(frame)
        spent = (time.process_time() - began) / len(frames) * 1e3
        best = spent if best is None else min(best, spent)
    return round(best, 1)


def stages(width: int, height: int, count: int, work: str, loaded) -> dict:
    """CPU ms per frame of every stage for one plate size."""
    folder = os.path.join(work, f"{width}x{height}")
    pattern = write_plates(os.path.join(folder, "plates"), count, width, height)
    frames = list(range(FIRST, FIRST + count))
    session = open_session(pattern, {}, cache_root=os.path.join(folder, "cache"),
                           stepper=ZeroStepper(loaded, 1024))
    plates, colour, stepper = session.plates, session.colour, session.stepper
    decoded = {f: plates.read(f, keep_half=True, threads=1) for f in frames}
    converted = {f: colour.convert(decoded[f].rgb, threads=1)[0] for f in frames}
    pred = disc_matte(1024).to(stepper.dtype)
    alpha = stepper.to_plate(pred, height, width)
    state = pred.float().numpy()

    def raw(frame: int) -> None:
        image = oiio.ImageInput.open(pattern.replace("####", str(frame)))
        image.read_image(oiio.HALF)
        image.close()

    out = os.path.join(folder, "out")
    os.makedirs(out)
    report = {
        "raw_decode": cpu_ms(raw, frames),
        "engine_decode": cpu_ms(lambda f: plates.read(f, keep_half=True, threads=1), frames),
        "colour": cpu_ms(lambda f: colour.convert(decoded[f].rgb, threads=1), frames),
        "resize_to_model": cpu_ms(lambda f: stepper.prepare(converted[f]), frames),
        "resize_to_plate": cpu_ms(lambda f: stepper.to_plate(pred, height, width), frames),
        "matte_write_zip": cpu_ms(lambda f: write_matte(
            os.path.join(out, f"m.{f}.exr"), alpha, like=decoded[f].info, compression="zip"),
            frames),
        "state_write": cpu_ms(lambda f: session._final.store.write_state(
            f, FIRST, f"{f:064x}", state), frames),
    }
    report["engine_stages_sum"] = round(sum(v for k, v in report.items()
                                            if not k.startswith("raw")), 1)
    report["instead"] = alternatives(colour, decoded, alpha, out, frames)
    report["ratio_to_raw_decode"] = round(report["engine_stages_sum"] / report["raw_decode"], 2)
    host = report["engine_decode"] + report["matte_write_zip"] + report["state_write"]
    report["host_stages_with_a_gpu"] = round(host, 1)
    report["host_ratio_with_a_gpu"] = round(host / report["raw_decode"], 2)
    on_device = build_device_colour(colour, "cpu")
    if on_device is not None:
        report["colour_device_tables_here"] = cpu_ms(
            lambda f: on_device.convert(torch.from_numpy(decoded[f].rgb)), frames)
    return report


def alternatives(colour, decoded: dict, alpha, out: str, frames: list[int]) -> dict:
    """The stages as they ran before their faster forms, for the before/after comparison:
    OCIO's float processor for a half plate (the cast to float first) and OpenImageIO
    writing the matte itself."""
    report = {}
    rec709 = ColourTransform(input_space=LINEAR_REC709, threads=1)
    for name, transform in (("plates", colour), ("linear_rec709", rec709)):
        report[f"colour_{name}_half_processor_used"] = transform.half_processor() is not None
        if transform is rec709:  # the plates' own path is the `colour` stage itself
            report[f"colour_{name}"] = cpu_ms(
                lambda f: transform.convert(decoded[f].rgb, threads=1), frames)
        kept = transform._half
        transform._half = False  # the float path, as when OCIO's half processor is refused
        try:
            report[f"colour_{name}_float_processor"] = cpu_ms(
                lambda f: transform.convert(decoded[f].rgb, threads=1), frames)
        finally:
            transform._half = kept
    real = mattes.exr_header_for
    mattes.exr_header_for = lambda spec: None  # no OpenEXR header: OpenImageIO writes
    try:
        oiio_write = cpu_ms(lambda f: mattes.write_matte(
            os.path.join(out, f"o.{f}.exr"), alpha, like=decoded[f].info, compression="zip"),
            frames)
    finally:
        mattes.exr_header_for = real
    report["matte_write_zip_by_openimageio"] = oiio_write
    height, width = decoded[frames[0]].rgb.shape[:2]
    rows, cols = resize_taps(height, 512), resize_taps(width, 512)
    report["preview_512_share_of_pixels_read"] = round(rows.size * cols.size / height / width, 3)
    report["colour_preview_512_pixels_read_only"] = cpu_ms(
        lambda f: colour.convert_pixels(decoded[f].rgb, rows, cols, threads=1), frames)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--sizes", default="2048x1080,4096x2160")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = tempfile.mkdtemp(prefix="vrmbg-stages-")
    try:
        loaded = load_model(init_random(os.path.join(work, "model"), "tiny", seed=0),
                            device="cpu", precision="fp32")
        report = {"unit": "CPU ms per frame, one thread", "load_average": os.getloadavg()[0]}
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.split("x"))
            report[size] = stages(width, height, args.frames, work, loaded)
        print(json.dumps(report, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
