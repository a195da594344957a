"""The shared engine-session test shot: plates, the tiny model, sessions through the engine's
one factory, and the independent straight run of the model card's loop every exactness test
compares against (engine, cache and CLI tests import these)."""

from __future__ import annotations

import glob
import os

import numpy as np
import OpenImageIO as oiio

from vrmbg.core.engine import MatteSession
from vrmbg.core.engine.opening import colour_for, open_session
from vrmbg.core.engine.step import FrameStepper
from vrmbg.core.io.mattes import read_matte
from vrmbg.core.io.plates import PlateSequence
from vrmbg.core.model.loader import load_model

FIRST = 1001
COUNT = 10
FRAMES = list(range(FIRST, FIRST + COUNT))
WIDTH, HEIGHT = 96, 64
RESOLUTION = 64  # inference size: small enough for quick CPU tests
_MODELS: dict[tuple[str, str], object] = {}


def plate_pixels(frame: int, variant: int = 0) -> np.ndarray:
    """A scene-linear frame: a bright disc moving over a textured background."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    phase = 0.37 * variant
    background = np.stack([0.05 + 0.2 * (xx / WIDTH), 0.04 + 0.15 * (yy / HEIGHT),
                           0.1 + 0.05 * np.sin(xx * 0.3 + yy * 0.2 + phase)], axis=-1)
    cx, cy = 12 + 7 * (frame - FIRST), 30 + 8 * np.sin(frame * 0.5 + phase)
    disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < 180
    background[disc] = (1.8, 1.2, 0.3 + 0.1 * variant)
    return background.astype(np.float32)


def write_plate(path: str, frame: int, variant: int = 0) -> None:
    """One half-float ZIP EXR plate frame."""
    spec = oiio.ImageSpec(WIDTH, HEIGHT, 3, oiio.HALF)
    spec.attribute("compression", "zip")
    out = oiio.ImageOutput.create(path)
    assert out is not None and out.open(path, spec), oiio.geterror()
    assert out.write_image(plate_pixels(frame, variant).astype(np.float16)), out.geterror()
    out.close()


def make_plates(folder: str, frames=FRAMES) -> str:
    """Write the shot's plates; returns the `####` pattern."""
    os.makedirs(folder, exist_ok=True)
    for frame in frames:
        write_plate(os.path.join(folder, f"sh010.{frame}.exr"), frame)
    return os.path.join(folder, "sh010.####.exr")


def model(model_dir: str, precision: str = "fp32"):
    """The tiny random model, loaded once per test module and precision."""
    key = (model_dir, precision)
    if key not in _MODELS:
        _MODELS[key] = load_model(model_dir, device="cpu", precision=precision)
    return _MODELS[key]


def make_session(pattern: str, cache: str, loaded, *, resolution: int = RESOLUTION,
                 input_space: str = "", preview: bool = False, **settings) -> MatteSession:
    """A session on the plates with the given settings, through the engine's one factory
    (the test's already loaded model in place of the pool's)."""
    return open_session(pattern, {**settings, "input_colorspace": input_space},
                        cache_root=cache, preview=preview,
                        stepper=FrameStepper(loaded, resolution))


def straight_run(pattern: str, loaded, *, resolution: int = RESOLUTION, input_space: str = "",
                 start: int | None = None, last: int | None = None) -> dict[int, tuple]:
    """The card's loop run straight from `start` (default: the shot's first frame), no cache:
    frame -> (half alpha as written to an EXR, state bits)."""
    plates = PlateSequence(pattern)
    colour = colour_for(plates, {"input_colorspace": input_space})
    stepper = FrameStepper(loaded, resolution)
    results = {}
    prev = pred = None
    for frame in plates.frames:
        if start is not None and frame < start:
            continue
        if last is not None and frame > last:
            break
        plate = plates.read(frame)
        cur = stepper.prepare(colour.to_model(plate.rgb))
        pred = stepper.step(cur, prev, pred)
        alpha = stepper.to_plate(pred, HEIGHT, WIDTH).astype(np.float16)
        bits = pred.detach().float().numpy().copy()
        results[frame] = (alpha, bits)
        prev = cur
    return results


def state_file(session: MatteSession, frame: int) -> str:
    """The single state file of `frame` in the session's chain."""
    found = glob.glob(os.path.join(session.folder, "state", f"{frame}_*.npy"))
    assert len(found) == 1, found
    return found[0]


def assert_matches(session: MatteSession, reference: dict[int, tuple], frames) -> None:
    """Cached mattes and states of `frames` are bit-identical to the straight run."""
    for frame in frames:
        alpha, bits = reference[frame]
        matte = read_matte(session.matte_path(frame)).astype(np.float16)
        assert np.array_equal(matte.view(np.uint16), alpha.view(np.uint16)), f"matte {frame}"
        stored = np.load(state_file(session, frame))
        dtype = session.identity["dtype"]
        as_float = (stored.astype(np.uint32) << 16).view(np.float32) if dtype == "bfloat16" \
            else stored.astype(np.float32)
        assert np.array_equal(as_float, bits), f"state {frame}"


def temp_files(root: str) -> list[str]:
    """Temp files left anywhere in the cache."""
    return [os.path.join(base, name) for base, _d, names in os.walk(root)
            for name in names if ".vrmbg-tmp-" in name]
