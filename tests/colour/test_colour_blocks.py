"""ColourTransform.to_model block by block: half input, block edges, threads and NaN/Inf counts.

Every result is compared bit for bit with an independent conversion built here from PyOCIO
(one row per applyRGB call, then the documented repair: NaN/Inf pixels -> 0, clamp to [0, 1]).
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import PyOpenColorIO as OCIO
import pytest

from host_configs import write_blender_like_config, write_nuke_like_config
from vrmbg.core.colour.half import HALF_TOLERANCE
from vrmbg.core.colour.transform import ColourTransform

# (height, width): widths that do not divide a block of rows evenly, and a frame so wide that
# every block is a single row.
SHAPES = [(37, 1000), (3, 20000)]
# Frames large enough for a multi-threaded transform to share the blocks among its threads.
LARGE_SHAPES = [(80, 1000), (5, 20000)]


@pytest.fixture(scope="module")
def transform():
    colour = ColourTransform(input_space="ACEScg", threads=2)
    yield colour
    colour.close()


@pytest.fixture(scope="module", params=["standard", "interchange"])
def host_transform(request, tmp_path_factory):
    """A host config's transform into the built-in model space (v1 nuke-like, v2 with roles)."""
    folder = str(tmp_path_factory.mktemp(request.param))
    if request.param == "standard":
        colour = ColourTransform(ocio=write_nuke_like_config(folder), input_space="linear",
                                 threads=2)
    else:
        colour = ColourTransform(ocio=write_blender_like_config(folder),
                                 input_space="Linear Rec.709", threads=2)
    assert colour.route == request.param
    yield colour
    colour.close()


def reference(colour: ColourTransform, rgb: np.ndarray) -> np.ndarray:
    """`rgb` through a processor built here from the same config and spaces, row by row.

    A transform into the built-in config (a host's config) uses its own OCIO processor: what
    that processor computes is checked in test_colour_host_configs.py.
    """
    if colour.route == "config":
        processor = colour.config.getProcessor(colour.input_space, colour.model_space)
    else:
        processor = colour.processor()
    if rgb.dtype == np.float16 and colour.half_processor() is not None:
        return half_reference(processor, rgb)
    cpu = processor.getDefaultCPUProcessor()
    out = np.array(rgb, dtype=np.float32, order="C", copy=True)
    for row in out:
        cpu.applyRGB(row)
    out[~np.isfinite(out).all(axis=-1)] = 0.0
    return np.clip(out, 0.0, 1.0)


def half_reference(processor, rgb: np.ndarray) -> np.ndarray:
    """Half `rgb` through PyOCIO's own half-input processor, row by row, then the repair."""
    cpu = processor.getOptimizedCPUProcessor(OCIO.BIT_DEPTH_F16, OCIO.BIT_DEPTH_F32,
                                             OCIO.OPTIMIZATION_DEFAULT)
    half = np.ascontiguousarray(rgb)
    out = np.empty(half.shape, np.float32)
    width = half.shape[1]
    for src, dst in zip(half, out):
        cpu.apply(OCIO.PackedImageDesc(src, width, 1, 3, OCIO.BIT_DEPTH_F16, 2, 6, 6 * width),
                  OCIO.PackedImageDesc(dst, width, 1, 3))
    out[~(np.isfinite(out).all(axis=-1) & np.isfinite(half).all(axis=-1))] = 0.0
    return np.clip(out, 0.0, 1.0)


def plate(shape: tuple[int, int], dtype=np.float32, seed: int = 0) -> np.ndarray:
    """Scene-linear values: mostly 0..1, with overs up to 40, negatives and tiny values."""
    height, width = shape
    rng = np.random.default_rng(seed)
    rgb = rng.random((height, width, 3), dtype=np.float32)
    kind = rng.integers(0, 5, size=(height, width))
    rgb[kind == 1] *= 40.0  # well above 1
    rgb[kind == 2] -= 1.5  # negatives (and mixed-sign pixels)
    rgb[kind == 3] *= 1e-6  # tiny (subnormal once stored as half)
    rgb[0, 0] = (0.0, -0.0, 1.0)
    return rgb.astype(dtype)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.float32 and a.shape == b.shape and \
        np.array_equal(a.view(np.uint32), b.view(np.uint32))


def nonfinite_pixels(rgb: np.ndarray) -> np.ndarray:
    return ~np.isfinite(rgb).all(axis=-1)


# ---------------------------------------------------------------- half input

@pytest.mark.parametrize("shape", SHAPES)
def test_half_input_converts_exactly_like_the_same_values_as_float32(transform, shape):
    half = plate(shape, np.float16)
    wide = half.astype(np.float32)
    half_before, wide_before = half.copy(), wide.copy()

    from_half = transform.to_model(half)
    from_wide = transform.to_model(wide)

    assert same_bits(from_half, from_wide)
    assert from_half.flags["C_CONTIGUOUS"]
    assert np.array_equal(half.view(np.uint16), half_before.view(np.uint16))  # untouched
    assert np.array_equal(wide.view(np.uint32), wide_before.view(np.uint32))


def test_a_strided_half_view_converts_like_its_contiguous_copy(transform):
    half = plate((37, 1000), np.float16)[::-1, :, ::-1]  # flipped rows, BGR -> RGB view
    assert not half.flags["C_CONTIGUOUS"]
    assert same_bits(transform.to_model(half),
                     transform.to_model(np.ascontiguousarray(half)))


# ---------------------------------------------------------------- against PyOCIO

@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("shape", SHAPES)
def test_blocks_match_a_row_by_row_pyocio_conversion(transform, shape, dtype):
    rgb = plate(shape, dtype, seed=1)
    out = transform.to_model(rgb)
    expected = reference(transform, rgb)
    assert same_bits(out, expected)
    assert out.min() == 0.0 and out.max() == 1.0  # the negatives and overs were clamped
    assert 0.0 < np.median(out) < 1.0  # and the rest was converted, not zeroed or saturated
    assert transform.last_bad_pixels == 0


@pytest.mark.parametrize("shape", LARGE_SHAPES)
def test_one_thread_and_two_threads_give_identical_results(transform, shape):
    rgb = plate(shape, np.float16, seed=2)
    one = transform.to_model(rgb, threads=1)
    two = transform.to_model(rgb, threads=2)
    default = transform.to_model(rgb)
    assert same_bits(one, two) and same_bits(one, default)
    assert same_bits(one, reference(transform, rgb))


def conversion_threads(colour: ColourTransform, rgb: np.ndarray, threads: int) -> set[int]:
    """Idents of the threads the transform started (or woke) to convert `rgb`."""
    before = {t.ident for t in threading.enumerate()}
    colour.to_model(rgb, threads=threads)
    return {t.ident for t in threading.enumerate()} - before


def test_threads_1_converts_on_the_calling_thread_only():
    rgb = plate(LARGE_SHAPES[0], np.float16, seed=3)
    colour = ColourTransform(input_space="ACEScg", threads=2)
    try:
        assert conversion_threads(colour, rgb, threads=1) == set()
        # the same call without the cap spreads the blocks over the transform's threads
        assert conversion_threads(colour, rgb, threads=0)
    finally:
        colour.close()


# ---------------------------------------------------------------- NaN / Inf

@pytest.mark.parametrize("shape,threads", [((37, 1000), 1), ((80, 1000), 2)])
def test_nan_and_inf_in_half_input_become_black_and_count_pixels(shape, threads):
    rgb = plate(shape, np.float16, seed=4)
    height, width = shape
    rgb[0, 0, 0] = np.nan  # first pixel of the first block
    rgb[16, 0, 1] = np.inf  # first pixel of a later block
    rgb[15, width - 1] = (np.nan, -np.inf, np.inf)  # one pixel, three bad channels
    rgb[height // 2, width // 3, 2] = -np.inf
    rgb[height - 1, width - 1, 1] = np.nan  # last pixel of the last block
    bad = nonfinite_pixels(rgb)
    assert bad.sum() == 5

    colour = ColourTransform(input_space="ACEScg", threads=2)
    try:
        out = colour.to_model(rgb, threads=threads)
        assert colour.last_bad_pixels == 5
        assert np.isfinite(out).all()
        assert np.array_equal(out[bad], np.zeros((5, 3), np.float32))
        assert same_bits(out, reference(colour, rgb))  # every other pixel converted normally

        colour.to_model(np.where(bad[..., None], np.float16(0.18), rgb), threads=threads)
        assert colour.last_bad_pixels == 0  # a clean frame resets the count
    finally:
        colour.close()


def test_huge_finite_values_are_not_counted_as_bad(transform):
    rgb = plate((37, 1000), np.float32, seed=5)
    rgb[:, ::10] = np.float32(1e38)  # huge greys: every row sums past float32's largest value
    assert np.isfinite(rgb).all()
    with np.errstate(over="ignore"):
        assert not np.isfinite(rgb[0].sum(dtype=np.float32))  # any block of rows overflows
    expected = reference(transform, rgb)
    raw = np.array(rgb)
    transform.config.getProcessor(transform.input_space, transform.model_space) \
        .getDefaultCPUProcessor().applyRGB(raw)
    assert np.isfinite(raw).all()  # OCIO keeps these finite: there is nothing to repair

    out = transform.to_model(rgb)

    assert transform.last_bad_pixels == 0
    assert same_bits(out, expected)
    assert np.all(out[:, ::10] == 1.0)  # the huge greys clamp to white, not to black


@pytest.mark.parametrize("fill", [(1e38, 1e38, 1e38), (np.inf, -np.inf, 0.5)])
def test_unusual_frames_convert_without_numpy_warnings(transform, fill):
    rgb = plate((37, 1000), np.float32, seed=6)
    rgb[:, ::10] = fill
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as under `python -W error` or a strict host
        transform.to_model(rgb)


# ---------------------------------------------------------------- into the built-in config

@pytest.mark.parametrize("shape", LARGE_SHAPES)
def test_host_config_blocks_match_pyocio_for_half_and_float_input(host_transform, shape):
    half = plate(shape, np.float16, seed=7)
    from_half = host_transform.to_model(half)
    from_float = host_transform.to_model(half.astype(np.float32))
    if host_transform.half_processor() is None:
        assert same_bits(from_half, from_float)
    else:  # OCIO's half-input processor: its own tables, within the budget of the float path
        assert np.abs(from_half - from_float).max() <= HALF_TOLERANCE
        assert not same_bits(from_half, from_float)
    assert same_bits(from_half, host_transform.to_model(half, threads=1))
    assert same_bits(from_half, reference(host_transform, half))
    assert 0.0 < np.median(from_half) < 1.0


def test_host_config_nan_and_inf_become_black_and_count_pixels(host_transform):
    rgb = plate((80, 1000), np.float16, seed=8)
    rgb[0, 0, 0] = np.nan
    rgb[40, 500] = (np.inf, -np.inf, np.nan)
    rgb[79, 999, 2] = -np.inf
    bad = nonfinite_pixels(rgb)
    out = host_transform.to_model(rgb)
    assert host_transform.last_bad_pixels == 3
    assert np.array_equal(out[bad], np.zeros((3, 3), np.float32))
    assert same_bits(out, reference(host_transform, rgb))


# ---------------------------------------------------------------- OCIO's half-input processor

@pytest.mark.parametrize("space", ["Linear Rec.709 (sRGB)", "Gamma 2.2 Rec.709 - Display"])
def test_half_plates_convert_within_the_budget_of_the_float_path(space):
    colour = ColourTransform(input_space=space, threads=1)
    half = plate((64, 700), np.float16, seed=9)
    assert colour.half_processor() is not None, "OCIO's half processor serves these plates"
    from_half = colour.to_model(half)
    assert same_bits(from_half, reference(colour, half))  # PyOCIO's own half processor
    from_float = colour.to_model(half.astype(np.float32))
    assert np.abs(from_half - from_float).max() <= HALF_TOLERANCE
    assert "|half=ocio-f16" in colour.identity  # caches made on the float path stay apart


@pytest.mark.parametrize("space", ["ACEScg", "Linear P3-D65"])
def test_half_plates_whose_conversion_starts_with_a_matrix_take_the_float_path(space):
    colour = ColourTransform(input_space=space, threads=1)
    assert colour.half_processor() is None  # no table of halves to gain from
    half = plate((37, 1000), np.float16, seed=12)
    assert same_bits(colour.to_model(half), colour.to_model(half.astype(np.float32)))
    assert "half=" not in colour.identity


def test_a_half_processor_off_the_float_path_is_not_used():
    # ACEScct code values far above 1 are beyond any light: OCIO's float path overflows
    # them to NaN (repaired to black) while its half tables saturate, so they differ
    colour = ColourTransform(input_space="ACEScct", threads=1)
    assert colour.half_processor() is None
    half = plate((37, 1000), np.float16, seed=10)
    half[:, ::7] = np.float16(7.9)
    assert same_bits(colour.to_model(half), colour.to_model(half.astype(np.float32)))
    assert "half=" not in colour.identity


def test_fast_half_check_counts_every_nan_and_inf_bit_pattern(host_transform):
    specials = np.array([0x7C00, 0xFC00, 0x7C01, 0xFE00, 0x7FFF], np.uint16).view(np.float16)
    rgb = plate((5, 20000), np.float16, seed=11)
    for i, value in enumerate(specials):
        rgb[i, 1000 * i + 3, i % 3] = value
    rgb[4, 7] = np.float16(65504.0)  # the largest finite half is not bad
    out = host_transform.to_model(rgb)
    assert host_transform.last_bad_pixels == len(specials)
    assert same_bits(out, reference(host_transform, rgb))


@pytest.mark.parametrize("layout", ["fortran", "planar", "reversed", "rgb_of_rgba"])
def test_half_plates_of_any_memory_layout_convert_like_their_contiguous_copy(host_transform,
                                                                          layout):
    assert host_transform.half_processor() is not None
    half = plate((37, 1000), np.float16, seed=13)
    if layout == "fortran":
        view = np.asfortranarray(half)
    elif layout == "planar":
        view = np.ascontiguousarray(half.transpose(2, 0, 1)).transpose(1, 2, 0)
    elif layout == "reversed":
        view = half[::-1, ::-1, ::-1]
    else:
        rgba = np.concatenate([half, np.ones((37, 1000, 1), np.float16)], axis=-1)
        view = rgba[..., :3]
    assert not view.flags["C_CONTIGUOUS"]
    assert same_bits(host_transform.to_model(view),
                     host_transform.to_model(np.ascontiguousarray(view)))
