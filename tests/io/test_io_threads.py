"""The engine's I/O threads: half plates kept half, and a lower priority beside the model.

The pipeline's thread set-up is tested in test_engine_chain.py; the end-to-end check (mattes
and states bit-identical to a straight float32 run of the card's loop on half ZIP EXR plates)
lives in test_engine_session.py.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from plate_factory import (ramp_rgb, write_dpx_sequence, write_exr, write_exr_sequence,
                           write_video)

from vrmbg.core import cpu
from vrmbg.core.io import display_window as display_window_module
from vrmbg.core.cpu import lower_thread_priority
from vrmbg.core.engine import MatteSession
from vrmbg.core.engine import frame_work as frame_work_module
from vrmbg.core.engine.opening import open_session
from vrmbg.core.io.mattes import read_matte
from vrmbg.core.io.movie import MovieSequence
from vrmbg.core.io.plates import PlateSequence

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="per-thread nice values are Linux only")


def in_thread(function):
    """`function()` run on a new thread; its result (or its exception) comes back here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function).result()


def nice() -> int:
    """The calling thread's own nice value."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def same_values(half: np.ndarray, full: np.ndarray) -> bool:
    """A float16 plate holds exactly the float32 plate's values (bit for bit once widened)."""
    return full.dtype == np.float32 and half.shape == full.shape and \
        np.array_equal(half.astype(np.float32).view(np.uint32), full.view(np.uint32))


# --------------------------------------------------------------------------- keep_half

@pytest.mark.parametrize("tiled", [False, True])
def test_half_zip_plate_kept_half_holds_the_float32_values(tmp_path, tiled):
    pattern = write_exr_sequence(tmp_path, [1001, 1002], tiled=tiled)
    plates = PlateSequence(pattern)
    half = plates.read(1002, keep_half=True)
    full = plates.read(1002)
    assert half.rgb.dtype == np.float16 and half.rgb.flags["C_CONTIGUOUS"]
    assert same_values(half.rgb, full.rgb)
    assert np.array_equal(half.rgb, ramp_rgb(32, 48, 1002).astype(np.float16))  # its own frame
    assert half.info == full.info and half.frame == 1002 and half.path == full.path


def test_float_plate_stays_float32_with_keep_half(tmp_path):
    pixels = ramp_rgb(16, 24) + np.float32(1e-7)  # not representable as half
    path = write_exr(tmp_path / "f.exr", pixels, pixel_type="float")
    plate = PlateSequence(path).read(1, keep_half=True)
    assert plate.rgb.dtype == np.float32
    assert np.array_equal(plate.rgb, pixels)


@pytest.mark.parametrize("data_window,display_window", [
    ((3, 2, 5, 4), (0, 0, 10, 8)),  # data inside the display window: padded with zeros
    ((-4, -3, 20, 14), (0, 0, 12, 8)),  # overscan: cropped
    ((8, 10, 6, 6), (10, 12, 8, 8)),  # offset windows overlapping in part
])
def test_half_plate_with_a_data_window_is_kept_half_and_placed(tmp_path, data_window,
                                                               display_window):
    x, y, w, h = data_window
    fx, fy, fw, fh = display_window
    pixels = ramp_rgb(h, w, 7) + 0.5  # no zeros inside the data window
    path = write_exr(tmp_path / "w.exr", pixels, data_window=data_window,
                     display_window=display_window)
    plates = PlateSequence(path)
    half = plates.read(1, keep_half=True).rgb
    full = plates.read(1).rgb
    assert half.dtype == np.float16 and half.shape == (fh, fw, 3)
    assert same_values(half, full)
    # independently: each display pixel is the data pixel at the same place, or zero
    expected = np.zeros((fh, fw, 3), np.float16)
    for row in range(fh):
        for col in range(fw):
            sy, sx = fy + row - y, fx + col - x
            if 0 <= sy < h and 0 <= sx < w:
                expected[row, col] = pixels[sy, sx]
    assert np.array_equal(half.view(np.uint16), expected.view(np.uint16))


def test_half_layer_picked_from_more_channels_is_kept_half(tmp_path):
    pixels = ramp_rgb(6, 8, channels=7)
    path = write_exr(tmp_path / "l.exr", pixels, channels=(
        "A", "R", "G", "B", "spec.R", "spec.G", "spec.B"))
    for layer, picked in (("spec", pixels[..., 4:]), ("", pixels[..., 1:4])):
        plates = PlateSequence(path, layer=layer)
        half = plates.read(1, keep_half=True).rgb
        assert half.dtype == np.float16 and same_values(half, plates.read(1).rgb)
        assert np.array_equal(half, picked.astype(np.float16))


@pytest.mark.parametrize("compression", ["piz", "dwaa", "rle"])
def test_keep_half_never_changes_values_whatever_the_compression(tmp_path, compression):
    path = write_exr(tmp_path / "c.exr", ramp_rgb(40, 64), compression=compression)
    plates = PlateSequence(path)
    kept = plates.read(1, keep_half=True).rgb
    assert kept.dtype in (np.float16, np.float32)  # a decoder may hand out float directly
    assert np.array_equal(kept.astype(np.float32), plates.read(1).rgb)


def test_movie_plates_accept_keep_half_and_stay_float32(tmp_path):
    frames = (np.full((16, 32, 3), 40 * i + 30, np.uint8) for i in range(3))
    path = write_video(tmp_path / "m.mov", frames, codec="prores_ks", pix_fmt="yuv422p10le",
                       frame_format="rgb24", reformat={})
    movie = MovieSequence(path)
    frame = movie.frames[1]
    kept = movie.read(frame, keep_half=True).rgb
    assert kept.dtype == np.float32
    assert np.array_equal(kept, movie.read(frame).rgb)


# --------------------------------------------------------------------------- thread priority

@linux_only
def test_lower_thread_priority_renices_only_the_calling_thread():
    main_before = nice()
    if main_before >= 19:
        pytest.skip("already at the lowest priority")

    def worker():
        before = nice()
        done = lower_thread_priority(3)
        return before, done, nice()

    before, done, after = in_thread(worker)
    assert done is True
    assert after == min(19, before + 3)
    assert nice() == main_before  # the caller (the model's thread) keeps its priority


@linux_only
def test_lower_thread_priority_does_nothing_when_it_cannot_stay_per_thread(monkeypatch):
    def worker():
        before = nice()
        zero = lower_thread_priority(0)
        monkeypatch.setattr(cpu.sys, "platform", "darwin")  # where it would renice the process
        elsewhere = lower_thread_priority(5)
        return before, zero, elsewhere, nice()

    before, zero, elsewhere, after = in_thread(worker)
    assert zero is False and elsewhere is False
    assert after == before


def engine_session(pattern: str, model: str, cache: str, settings: dict, *,
                   input_space: str = "") -> MatteSession:
    """A MatteSession on `pattern` with the test model at 64 px."""
    return open_session(pattern, {"model": model, "device": "cpu", "resolution": 64,
                                  "input_colorspace": input_space, **settings},
                        cache_root=cache)


def test_readers_follow_the_thread_budget(tmp_path, model):
    (tmp_path / "plates").mkdir()
    pattern = write_exr_sequence(tmp_path / "plates", [1001, 1002], size=(64, 32))
    readers = {threads: engine_session(pattern, model, str(tmp_path / "cache"),
                                       {"threads": threads}).io_threads
               for threads in (0, 1, 4, 64)}
    assert readers == {0: min(cpu.usable_cores(), cpu.MAX_READERS), 1: 1, 4: 4,
                       64: cpu.MAX_READERS}


def test_mattes_are_bit_identical_for_every_reader_count(tmp_path, model):
    (tmp_path / "plates").mkdir()
    frames = list(range(1001, 1009))
    pattern = write_exr_sequence(tmp_path / "plates", frames, size=(96, 64))
    mattes = {}
    for readers in (1, 2, 4):
        session = open_session(pattern, {"model": model, "device": "cpu", "resolution": 64},
                               cache_root=str(tmp_path / f"cache{readers}"), readers=readers)
        assert session.io_threads == readers
        paths = session.ensure_range(frames)
        mattes[readers] = [read_matte(paths[f]) for f in frames]
    for readers in (2, 4):
        for frame, (one, many) in enumerate(zip(mattes[1], mattes[readers])):
            assert np.array_equal(one, many), f"{readers} readers, frame {frames[frame]}"


@linux_only
def test_engine_readers_run_low_and_leave_the_shared_pools_alone(tmp_path, model, monkeypatch):
    (tmp_path / "plates").mkdir()
    # 10-bit DPX big enough (1.5M values) for the shared integer -> float conversion pool
    pattern = write_dpx_sequence(tmp_path / "plates", [1001, 1002, 1003], size=(1024, 512))
    monkeypatch.setattr(display_window_module, "_pool", None)  # as in a fresh process
    seen: list[int] = []
    original_read = frame_work_module.FrameWork.read

    def read(self, frame):
        seen.append(nice())
        return original_read(self, frame)

    monkeypatch.setattr(frame_work_module.FrameWork, "read", read)
    main_nice = nice()
    engine_session(pattern, model, str(tmp_path / "cache"), {},
                   input_space="ACEScct").ensure(1003)

    assert seen and set(seen) == {min(19, main_nice + cpu.IO_NICE_INCREMENT)}
    pool = display_window_module._pool  # created by a lowered reader, its threads would stay low
    workers = [t for t in threading.enumerate() if t.name.startswith("vrmbg-convert")]
    assert pool is None or all(
        os.getpriority(os.PRIO_PROCESS, t.native_id) == main_nice for t in workers)
    assert nice() == main_nice


def test_limit_threads_sets_the_pools_and_zero_puts_the_defaults_back():
    import OpenImageIO as oiio
    import torch

    def counts():
        return (torch.get_num_threads(), oiio.get_int_attribute("threads"),
                oiio.get_int_attribute("exr_threads"))

    before = counts()
    try:
        assert cpu.limit_threads(1) == 1
        assert counts() == (1, 1, 1)
        assert cpu.limit_threads(0) == before[0]
        assert counts() == before  # a later shot without a budget gets every core again
    finally:
        torch.set_num_threads(before[0])
        oiio.attribute("threads", before[1])
        oiio.attribute("exr_threads", before[2])
