"""The colour conversion rebuilt for the inference device (`core.colour.device`).

On a GPU host the plates are converted where the model runs. Here the device is the CPU
(torch on CPU runs the same ops), which is enough to hold the device path to the PyOpenColorIO
CPU processor on plates it was never tuned on, and to show the engine keeps its mattes apart
from the CPU path's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from host_configs import write_nuke_like_config
from plate_factory import ramp_rgb, write_exr_sequence

from vrmbg.core.colour import device as device_colour_module
from vrmbg.core.colour.transform import ColourTransform
from vrmbg.core.colour.device import build_device_colour, device_colour_for
from vrmbg.core.engine.opening import open_session
from vrmbg.core.io.mattes import read_matte

# the budget on the model input
BUDGET = 1e-4


def plate_values(seed: int, height: int = 96, width: int = 128) -> np.ndarray:
    """Pixels unlike the builder's probes: a ramp plus noise plus a few hot highlights."""
    rng = np.random.default_rng(seed)
    rgb = ramp_rgb(height, width, frame=seed) * 1.3 - 0.05
    rgb += rng.normal(0.0, 0.05, rgb.shape).astype(np.float32)
    rgb[rng.random((height, width)) < 0.01] *= 40.0  # speculars far above 1
    return np.ascontiguousarray(rgb, dtype=np.float32)


def device_result(converter, rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """The device path's model RGB as (H, W, 3) numpy, and its bad-pixel count."""
    planes, bad = converter.convert(torch.from_numpy(rgb))
    return planes.permute(1, 2, 0).cpu().numpy(), bad


SCENE_LINEAR = ("ACEScg", "ACES2065-1", "Linear Rec.709 (sRGB)", "Linear P3-D65")
# display-referred, Rec.709 and wide-gamut ones (whose matrix into Rec.709 cancels bright values)
DISPLAY = ("Rec.1886 Rec.709 - Display", "Gamma 2.2 Rec.709 - Texture", "sRGB Encoded P3-D65",
           "Display P3 - Display", "sRGB Encoded AP1")
LOG = ("ACEScct", "ARRI LogC3 (EI800)", "ARRI LogC4", "Apple Log")


def plate_for(space: str, seed: int, dtype: type) -> np.ndarray:
    """`plate_values` scaled to the space's range (log and display planes hold code values)."""
    scale = 1.0 if space in SCENE_LINEAR else (0.6 if space in LOG else 0.8)
    return (plate_values(seed) * scale).astype(dtype)


def assert_matches_ocio(colour, converter, rgb: np.ndarray) -> None:
    """The device path's model input is within the budget of the OCIO CPU processor's, with
    the same bad-pixel count, clamped to [0, 1]."""
    reference, bad_reference = colour.convert(rgb, threads=1)
    ours, bad = device_result(converter, rgb)
    assert ours.dtype == np.float32 and ours.shape == reference.shape
    assert bad == bad_reference
    assert float(np.abs(ours - reference).max()) <= BUDGET
    assert ours.min() >= 0.0 and ours.max() <= 1.0


@pytest.mark.parametrize("space", SCENE_LINEAR + DISPLAY + LOG)
def test_half_plates_convert_on_the_device_as_ocio_does(space):
    colour = ColourTransform(input_space=space, threads=1)
    converter = build_device_colour(colour, "cpu")
    assert converter is not None and converter.handles(np.float16), space
    assert_matches_ocio(colour, converter, plate_for(space, 7, np.float16))


@pytest.mark.parametrize("space", SCENE_LINEAR)
def test_float_scene_linear_plates_convert_on_the_device_as_ocio_does(space):
    colour = ColourTransform(input_space=space, threads=1)
    converter = build_device_colour(colour, "cpu")
    assert converter.handles(np.float32)
    assert_matches_ocio(colour, converter, plate_for(space, 8, np.float32))


@pytest.mark.parametrize("space", DISPLAY + LOG)
@pytest.mark.parametrize("seed", [9, 10])
def test_float_plates_convert_on_the_device_only_within_the_budget(space, seed):
    """Where tables cannot follow a float plate closely enough (a log value's exponential, or
    bright display values, into a matrix that cancels them) the CPU path keeps float plates."""
    colour = ColourTransform(input_space=space, threads=1)
    converter = build_device_colour(colour, "cpu")
    if converter.handles(np.float32):
        assert_matches_ocio(colour, converter, plate_for(space, seed, np.float32))
    else:
        assert converter.inputs == {"half"}


def test_a_matrix_alone_gives_the_ocio_processors_bits():
    colour = ColourTransform(input_space="ACEScg", model_space="Linear Rec.709 (sRGB)",
                             threads=1)
    converter = build_device_colour(colour, "cpu")
    assert [kind for kind, _, _ in converter._steps] == ["matrix"]
    rgb = np.clip(plate_values(5), 0.0, 0.9)
    reference, _ = colour.convert(rgb, threads=1)
    assert np.array_equal(device_result(converter, rgb)[0], reference)


def test_a_host_config_with_1d_luts_converts_on_the_device(tmp_path):
    config = write_nuke_like_config(str(tmp_path))
    colour = ColourTransform(ocio=config, input_space="sRGB", threads=1)
    converter = build_device_colour(colour, "cpu")
    assert converter is not None
    rgb = np.clip(plate_values(3), 0.0, 1.0)
    reference, _ = colour.convert(rgb, threads=1)
    assert float(np.abs(device_result(converter, rgb)[0] - reference).max()) <= BUDGET


def test_nan_and_inf_pixels_become_black_and_are_counted_as_on_the_cpu_path():
    colour = ColourTransform(input_space="ACEScg", threads=1)
    converter = build_device_colour(colour, "cpu")
    rgb = plate_values(11).astype(np.float16)
    rgb[3, 4, 0], rgb[10, 20, 2], rgb[50, 60, 1] = np.nan, np.inf, -np.inf
    reference, bad_reference = colour.convert(rgb, threads=1)
    ours, bad = device_result(converter, rgb)
    assert bad == bad_reference == 3
    for y, x in ((3, 4), (10, 20), (50, 60)):
        assert np.all(ours[y, x] == 0.0)
    assert float(np.abs(ours - reference).max()) <= BUDGET


def test_a_frame_converted_in_bands_is_the_frame_converted_whole(monkeypatch):
    colour = ColourTransform(input_space="ACEScct", threads=1)
    converter = build_device_colour(colour, "cpu")
    rgb = plate_for("ACEScct", 12, np.float16)
    rgb[0, 0, 0], rgb[-1, -1, 2] = np.nan, np.inf  # bad pixels in the first and last bands
    whole, bad_whole = device_result(converter, rgb)
    monkeypatch.setattr(device_colour_module, "_BAND_PIXELS", 7 * rgb.shape[1])
    banded, bad_banded = device_result(converter, rgb)
    assert np.array_equal(whole, banded) and bad_whole == bad_banded >= 2


def test_transforms_without_a_device_form_stay_on_the_cpu():
    tone_mapped = ColourTransform(input_space="ACEScg", display="sRGB - Display",
                                  view="ACES 2.0 - SDR 100 nits (Rec.709)", threads=1)
    assert build_device_colour(tone_mapped, "cpu") is None  # fixed functions, not tables


def test_a_conversion_outside_the_tolerance_is_never_used(monkeypatch):
    colour = ColourTransform(input_space="ACEScg", threads=1)
    assert build_device_colour(colour, "cpu") is not None
    monkeypatch.setattr(device_colour_module, "TOLERANCE", 1e-9)
    assert build_device_colour(colour, "cpu") is None


def test_built_once_per_colour_and_device():
    colour = ColourTransform(input_space="ACEScct", threads=1)
    again = ColourTransform(input_space="ACEScct", threads=1)
    assert device_colour_for(colour, "cpu") is device_colour_for(again, "cpu")


# ------------------------------------------------------------------------------- engine

def assert_close_mattes(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    """Mattes from model inputs within the budget of each other: most pixels the same half
    value, none far off (the tiny random test model magnifies input differences)."""
    difference = np.abs(ours - theirs)
    assert float(difference.max()) < 1e-2 and float(difference.mean()) < 1e-4, what
    assert float(np.mean(difference > 0)) < 0.1, what


def plates_folder(tmp_path) -> str:
    """A fresh folder for a test's plates."""
    (tmp_path / "plates").mkdir()
    return str(tmp_path / "plates")


def _mattes(tmp_path, model, pattern, frames, name, **options):
    session = open_session(pattern, {"model": model, "resolution": 64, **options.pop(
        "settings", {})}, cache_root=str(tmp_path / name), **options)
    result = session.ensure_frames(frames)
    return session, result, [read_matte(session.matte_path(f)) for f in frames]


def test_a_session_on_the_cpu_keeps_the_ocio_processor(tmp_path, model):
    pattern = write_exr_sequence(plates_folder(tmp_path), [1001])
    session = open_session(pattern, {"model": model, "resolution": 64},
                           cache_root=str(tmp_path / "cache"))
    assert session.device_colour is None


def test_device_colour_mattes_follow_the_cpu_paths_in_their_own_chain(tmp_path, model):
    frames = list(range(1001, 1005))
    pattern = write_exr_sequence(plates_folder(tmp_path), frames, size=(80, 48))
    cpu_session, _, cpu_mattes = _mattes(tmp_path, model, pattern, frames, "cache",
                                         device_colour=False)
    dev_session, result, dev_mattes = _mattes(tmp_path, model, pattern, frames, "cache",
                                              device_colour=True)
    assert dev_session.device_colour is not None and cpu_session.device_colour is None
    # the same cache: the CPU path's finished chain is not taken for the device path's
    assert dev_session.chain_id != cpu_session.chain_id
    assert result.counters.frames_computed == len(frames)
    for frame, (ours, theirs) in zip(frames, zip(dev_mattes, cpu_mattes)):
        assert_close_mattes(ours, theirs, f"frame {frame}")


def test_float_log_plates_the_device_path_cannot_follow_keep_the_cpu_paths_bits(tmp_path,
                                                                               model):
    frames = [1001, 1002, 1003]
    pattern = write_exr_sequence(plates_folder(tmp_path), frames, size=(64, 40),
                                 pixel_type="float")
    settings = {"input_colorspace": "ACEScct"}
    cpu_session, _, cpu_mattes = _mattes(tmp_path, model, pattern, frames, "cpu",
                                         device_colour=False, settings=settings)
    dev_session, _, dev_mattes = _mattes(tmp_path, model, pattern, frames, "device",
                                         device_colour=True, settings=settings)
    assert not dev_session.device_colour.handles(np.float32)
    for ours, theirs in zip(dev_mattes, cpu_mattes):
        assert np.array_equal(ours, theirs)


def test_device_colour_mattes_are_bit_identical_for_every_reader_count(tmp_path, model):
    frames = list(range(1001, 1006))
    pattern = write_exr_sequence(plates_folder(tmp_path), frames, size=(64, 40))
    runs = [_mattes(tmp_path, model, pattern, frames, f"r{n}", device_colour=True,
                    readers=n)[2] for n in (1, 2, 4)]
    for other in runs[1:]:
        for one, many in zip(runs[0], other):
            assert np.array_equal(one, many)


def test_device_colour_feeds_the_guided_colour_upsampling(tmp_path, model):
    frames = [1001, 1002]
    pattern = write_exr_sequence(plates_folder(tmp_path), frames, size=(96, 64))
    settings = {"upsample": "guided-colour"}
    _, _, cpu_mattes = _mattes(tmp_path, model, pattern, frames, "cpu", device_colour=False,
                               settings=settings)
    _, _, dev_mattes = _mattes(tmp_path, model, pattern, frames, "device",
                               device_colour=True, settings=settings)
    for ours, theirs in zip(dev_mattes, cpu_mattes):
        assert ours.shape == (64, 96)
        assert_close_mattes(ours, theirs, "guided-colour")


def test_bad_pixels_found_on_the_device_are_reported_by_frame(tmp_path, model):
    frames = [1001, 1002]
    pattern = write_exr_sequence(plates_folder(tmp_path), frames, size=(48, 32))
    from plate_factory import frame_path, write_exr

    pixels = ramp_rgb(32, 48, 1002)
    pixels[5, 6, 1] = np.nan
    write_exr(frame_path(pattern, 1002), pixels)
    _, result, _ = _mattes(tmp_path, model, pattern, frames, "device", device_colour=True)
    assert result.bad_pixels == {1002: 1}


def test_the_render_header_says_where_plates_are_converted(tmp_path, model):
    from vrmbg.core.render.job import _colour_path

    pattern = write_exr_sequence(plates_folder(tmp_path), [1001])
    on_cpu = open_session(pattern, {"model": model}, cache_root=str(tmp_path / "a"))
    assert _colour_path(on_cpu) == ""
    log_plates = open_session(pattern, {"model": model, "input_colorspace": "ACEScct"},
                              cache_root=str(tmp_path / "b"), device_colour=True)
    assert _colour_path(log_plates) == "; half plates converted on the cpu by device tables"


def test_the_identity_names_the_conversion_itself():
    scene = build_device_colour(ColourTransform(input_space="ACEScg", threads=1), "cpu")
    wide = build_device_colour(ColourTransform(input_space="ACES2065-1", threads=1), "cpu")
    again = build_device_colour(ColourTransform(input_space="ACEScg", threads=1), "cpu")
    assert scene.identity == again.identity != wide.identity


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_readers_convert_on_their_own_streams_with_the_same_bits(tmp_path, model):
    frames = list(range(1001, 1007))
    pattern = write_exr_sequence(plates_folder(tmp_path), frames, size=(640, 360))
    runs = [_mattes(tmp_path, model, pattern, frames, f"r{n}", readers=n,
                    settings={"device": "cuda"}) for n in (1, 4)]
    assert runs[0][0].device_colour is not None  # auto on a GPU
    for one, many in zip(runs[0][2], runs[1][2]):
        assert np.array_equal(one, many)
