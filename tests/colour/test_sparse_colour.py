"""Large plates at a small inference size convert only the pixels the resize reads.

A bilinear resize without antialias reads two neighbours per output pixel along each axis, so
converting only those pixels must leave the model input, the mattes and the states the same
to the bit, and count the plate's NaN/Inf pixels as decoded wherever they are.
"""

from __future__ import annotations

import os

import numpy as np
import OpenImageIO as oiio
import pytest
import torch

from vrmbg.core.colour.transform import ColourTransform
from vrmbg.core.engine.opening import open_session
from vrmbg.core.engine.step import SPARSE_FRACTION, FrameStepper
from vrmbg.core.engine.upsample import resize_bilinear, resize_taps
from vrmbg.core.io.mattes import read_matte
from vrmbg.core.model.loader import init_random, load_model

FIRST, COUNT = 1001, 4
WIDTH, HEIGHT, RESOLUTION = 320, 192, 32  # reads 2 of every 10 columns and 6 rows


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("model"))
    return load_model(init_random(folder, "tiny", seed=3), device="cpu", precision="fp32")


def reads_nan(size_in: int, size_out: int, taps: np.ndarray) -> bool:
    """Whether resizing a line of `size_in` that is NaN outside `taps` gives any NaN."""
    line = torch.full((1, 1, 1, size_in), float("nan"))
    line[..., torch.from_numpy(taps)] = 0.5
    return bool(torch.isnan(resize_bilinear(line, 1, size_out)).any())


@pytest.mark.parametrize("size_in,size_out", [(7680, 1024), (4096, 512), (3840, 1024),
                                              (2160, 1024), (1080, 512), (997, 64),
                                              (1024, 1024), (300, 512), (1600, 576),
                                              (3200, 384), (6560, 1056)])
def test_the_taps_are_exactly_what_the_resize_reads(size_in, size_out):
    taps = resize_taps(size_in, size_out)
    assert not reads_nan(size_in, size_out, taps)
    if size_in <= 1100:  # and nothing fewer will do: drop any one tap and NaN gets through
        for index in np.random.default_rng(0).choice(taps.size, 12, replace=False):
            assert reads_nan(size_in, size_out, np.delete(taps, index))


def test_only_plates_read_sparsely_enough_convert_sparsely(loaded):
    assert FrameStepper(loaded, 1024).pixels_read(1080, 2048) is None  # 2K reads every pixel
    assert FrameStepper(loaded, 1024).pixels_read(2160, 4096) is None  # 47%: not worth it
    rows, cols = FrameStepper(loaded, 1024).pixels_read(4320, 7680)  # 8K: an eighth
    assert rows.size * cols.size <= SPARSE_FRACTION * 4320 * 7680
    assert FrameStepper(loaded, 512).pixels_read(2160, 4096) is not None  # a 4K preview
    guided = FrameStepper(loaded, 512)
    guided.upsampling = guided.upsampling.__class__(mode="guided")
    assert guided.pixels_read(2160, 4096) is None  # the edge-aware upsampling needs it all


@pytest.mark.parametrize("space", ["ACEScg", "Linear Rec.709 (sRGB)"])
def test_sparse_conversion_gives_the_same_model_input_and_warning(loaded, space):
    colour = ColourTransform(input_space=space, threads=1)
    stepper = FrameStepper(loaded, RESOLUTION)
    rows, cols = stepper.pixels_read(HEIGHT, WIDTH)
    rgb = plate(FIRST)
    rgb[rows[3], cols[5]] = (np.nan, 0.2, 0.2)  # read by the resize
    rgb[rows[3] + 1 if rows[3] + 1 not in rows else 0, 0] = (np.inf, 0.1, 0.1)  # not read
    full, bad_full = colour.convert(rgb, threads=1)
    sparse, bad_sparse = colour.convert_pixels(rgb, rows, cols, threads=1)
    assert bad_sparse == bad_full == 2
    assert torch.equal(stepper.prepare(sparse), stepper.prepare(full))
    assert np.array_equal(sparse[np.ix_(rows, cols)], full[np.ix_(rows, cols)])


def plate(frame: int) -> np.ndarray:
    """A half scene-linear frame: a ramp, fine texture and a disc that moves."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    rgb = np.stack([0.05 + 0.3 * xx / WIDTH, 0.05 + 0.2 * yy / HEIGHT,
                    0.1 + 0.05 * np.sin(xx * 0.7) * np.cos(yy * 0.9)], axis=-1)
    disc = (xx - 60 - 40 * (frame - FIRST)) ** 2 + (yy - 96) ** 2 < 40 ** 2
    rgb[disc] = (1.4, 1.0, 0.3)
    return rgb.astype(np.float16)


def write_plates(folder: str) -> str:
    os.makedirs(folder)
    for frame in range(FIRST, FIRST + COUNT):
        path = os.path.join(folder, f"sh.{frame}.exr")
        out = oiio.ImageOutput.create(path)
        assert out.open(path, oiio.ImageSpec(WIDTH, HEIGHT, 3, oiio.HALF))
        assert out.write_image(plate(frame))
        out.close()
    return os.path.join(folder, "sh.####.exr")


def test_a_shot_renders_the_same_mattes_and_states_either_way(loaded, tmp_path, monkeypatch):
    pattern = write_plates(str(tmp_path / "plates"))
    last = FIRST + COUNT - 1

    def run(cache: str) -> tuple[list, list]:
        session = open_session(pattern, {}, cache_root=str(tmp_path / cache),
                               stepper=FrameStepper(loaded, RESOLUTION))
        session.ensure(last)
        mattes = [read_matte(session.matte_path(f)) for f in range(FIRST, last + 1)]
        states = sorted(os.listdir(os.path.join(session.folder, "state")))
        return mattes, [np.load(os.path.join(session.folder, "state", s)) for s in states]

    converted = []
    real = ColourTransform.convert_pixels
    monkeypatch.setattr(ColourTransform, "convert_pixels",
                        lambda self, *a, **k: converted.append(1) or real(self, *a, **k))
    sparse = run("sparse")
    assert len(converted) == COUNT  # every frame took the sparse conversion
    monkeypatch.setattr(FrameStepper, "pixels_read", lambda self, h, w: None)
    full = run("full")
    for ours, theirs in zip(sparse[0] + sparse[1], full[0] + full[1]):
        assert np.array_equal(ours, theirs)
