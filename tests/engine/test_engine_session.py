"""MatteSession with the real pieces: tiny random model, EXR plates, OCIO, mattes on disk.

Every result is compared bit for bit with an independent straight run of the model card's loop
(plates -> colour -> FrameStepper, no cache) from the shot's first frame.

The shot and the straight run live in tests/support/session_helpers.py (the concurrency, cache
and CLI tests use them too).
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import threading

import numpy as np
import OpenImageIO as oiio
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrmbg.core.engine import MatteSession
from vrmbg.core.engine.step import FrameStepper
from vrmbg.core.errors import Cancelled, InputError
from vrmbg.core.io.mattes import read_matte
from vrmbg.core.model.loader import init_random

from session_helpers import (COUNT, FIRST, FRAMES, HEIGHT, RESOLUTION, WIDTH,  # noqa: F401
                             assert_matches, make_plates, make_session, model, plate_pixels,
                             state_file, straight_run, temp_files, write_plate)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model runs fastest on one thread (OpenMP spinning costs more on shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shot(tmp_path_factory, one_torch_thread):
    """Plates, the tiny model and the straight-run reference, shared by this module."""
    root = tmp_path_factory.mktemp("engine")
    pattern = make_plates(str(root / "plates"))
    model_dir = init_random(str(root / "model"), "tiny", seed=3)
    loaded = model(model_dir)
    return {"root": root, "pattern": pattern, "model_dir": model_dir, "loaded": loaded,
            "reference": straight_run(pattern, loaded)}


def copy_plates(shot, folder) -> str:
    """A private copy of the plates (for tests that replace frames)."""
    shutil.copytree(os.path.dirname(shot["pattern"]), folder)
    return os.path.join(folder, "sh010.####.exr")


# --------------------------------------------------------------------------- tests

@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(order=st.lists(st.sampled_from(FRAMES), min_size=2, max_size=5))
def test_any_request_order_is_bit_identical_to_a_straight_run(shot, order):
    cache = tempfile.mkdtemp(dir=shot["root"])
    session = make_session(shot["pattern"], cache, shot["loaded"])
    for frame in order:
        path = session.ensure(frame)
        assert path == session.matte_path(frame)
        assert_matches(session, shot["reference"], [frame])
    # each frame of the chain up to the furthest request is computed exactly once
    assert session.counters.frames_computed == FRAMES.index(max(order)) + 1
    assert session.counters.frames_requested == len(order)
    assert_matches(session, shot["reference"], FRAMES[:FRAMES.index(max(order)) + 1])


def test_jump_back_repeat_and_new_process_reuse_the_cache(shot, tmp_path):
    cache = str(tmp_path / "cache")
    first = make_session(shot["pattern"], cache, shot["loaded"])
    first.ensure(1006)
    first.ensure(1003)
    first.ensure(1006)
    assert first.counters.frames_computed == 6
    assert first.counters.frames_from_cache == 2
    # a fresh session (as a new process would) continues from frame 1006's stored state
    second = make_session(shot["pattern"], cache, shot["loaded"])
    seen = []
    second.ensure(1010, progress=lambda done, total, frame: seen.append((done, total, frame)))
    assert second.counters.frames_computed == 4
    assert second.counters.states_loaded == 1
    assert seen == [(1, 4, 1007), (2, 4, 1008), (3, 4, 1009), (4, 4, 1010)]
    assert_matches(second, shot["reference"], FRAMES)
    assert second.cached_frames() == FRAMES


def test_ensure_range_skips_cached_frames(shot, tmp_path):
    cache = str(tmp_path / "cache")
    session = make_session(shot["pattern"], cache, shot["loaded"])
    session.ensure(1004)
    paths = session.ensure_range([1002, 1003, 1007, 1008])
    assert sorted(paths) == [1002, 1003, 1007, 1008]
    assert session.counters.frames_computed == 8  # 1001-1004, then 1005-1008
    assert session.counters.frames_from_cache == 2
    assert_matches(session, shot["reference"], FRAMES[:8])


def test_replacing_or_touching_a_plate_recomputes_from_that_frame_only(shot, tmp_path):
    pattern = copy_plates(shot, str(tmp_path / "plates"))
    cache = str(tmp_path / "cache")
    straight = make_session(pattern, cache, shot["loaded"])
    straight.ensure(FRAMES[-1])
    before = {f: os.stat(straight.matte_path(f)).st_mtime_ns for f in FRAMES}

    write_plate(pattern.replace("####", "1006"), 1006, variant=1)  # new plate content
    session = make_session(pattern, cache, shot["loaded"])
    session.ensure(1008)
    assert session.counters.frames_computed == 3  # 1006..1008
    assert session.counters.states_loaded == 1  # continued from 1005
    # the stale mattes after 1008 are gone from the folder hosts read as a sequence
    assert not os.path.exists(session.matte_path(1009))
    assert not glob.glob(os.path.join(session.folder, "state", "1010_*"))
    session.ensure(FRAMES[-1])
    assert session.counters.frames_computed == 5
    for frame in FRAMES[:5]:
        assert os.stat(session.matte_path(frame)).st_mtime_ns == before[frame]
    replaced = straight_run(pattern, shot["loaded"])
    assert_matches(session, replaced, FRAMES)
    assert not np.array_equal(replaced[1008][0], shot["reference"][1008][0])

    path = pattern.replace("####", "1009")
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # touched, same pixels
    touched = make_session(pattern, cache, shot["loaded"])
    touched.ensure(1007)
    assert touched.counters.frames_computed == 0  # frames before the touched one stay valid
    touched.ensure(FRAMES[-1])
    assert touched.counters.frames_computed == 2
    assert_matches(touched, replaced, FRAMES)


def test_content_hash_ignores_touches_but_sees_new_pixels(shot, tmp_path):
    pattern = copy_plates(shot, str(tmp_path / "plates"))
    cache = str(tmp_path / "cache")
    make_session(pattern, cache, shot["loaded"], content_hash=True).ensure(FRAMES[-1])
    path = pattern.replace("####", "1004")
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000))
    session = make_session(pattern, cache, shot["loaded"], content_hash=True)
    session.ensure(FRAMES[-1])
    assert session.counters.frames_computed == 0
    write_plate(pattern.replace("####", "1008"), 1008, variant=2)
    session.ensure(FRAMES[-1])
    assert session.counters.frames_computed == 3


def test_settings_switch_and_back_keeps_both_chains(shot, tmp_path):
    cache = str(tmp_path / "cache")
    linear = make_session(shot["pattern"], cache, shot["loaded"])
    linear.ensure(1005)
    other = make_session(shot["pattern"], cache, shot["loaded"], input_space="ACEScct")
    other.ensure(1005)
    assert other.chain_id != linear.chain_id
    assert other.counters.frames_computed == 5
    assert_matches(other, straight_run(shot["pattern"], shot["loaded"], input_space="ACEScct"),
                   FRAMES[:5])
    back = make_session(shot["pattern"], cache, shot["loaded"])
    assert back.chain_id == linear.chain_id
    back.ensure(1005)
    assert back.counters.frames_computed == 0
    assert_matches(back, shot["reference"], FRAMES[:5])
    bigger = make_session(shot["pattern"], cache, shot["loaded"], resolution=96)
    assert bigger.chain_id not in (linear.chain_id, other.chain_id)


def test_cancel_keeps_finished_frames_then_resume_is_exact(shot, tmp_path):
    cache = str(tmp_path / "cache")
    session = make_session(shot["pattern"], cache, shot["loaded"])
    stop = threading.Event()

    def progress(done, total, frame):
        if done == 3:
            stop.set()

    with pytest.raises(Cancelled):
        session.ensure(FRAMES[-1], progress=progress, cancel=stop)
    kept = session.cached_frames()
    assert kept[:3] == FRAMES[:3] and len(kept) < COUNT
    assert kept == FRAMES[:len(kept)]
    assert not temp_files(cache)
    resumed = make_session(shot["pattern"], cache, shot["loaded"])
    resumed.ensure(FRAMES[-1])
    assert resumed.counters.frames_computed == COUNT - len(kept)
    assert_matches(resumed, shot["reference"], FRAMES)


def test_bad_plate_frame_raises_input_error_and_keeps_earlier_frames(shot, tmp_path):
    pattern = copy_plates(shot, str(tmp_path / "plates"))
    bad = pattern.replace("####", "1005")
    with open(bad, "wb") as handle:
        handle.write(b"not an exr at all")
    session = make_session(pattern, str(tmp_path / "cache"), shot["loaded"])
    with pytest.raises(InputError) as error:
        session.ensure(1008)
    assert error.value.frame == 1005 and error.value.path == bad
    assert session.cached_frames() == FRAMES[:4]
    assert_matches(session, shot["reference"], FRAMES[:4])
    with pytest.raises(InputError):
        session.ensure(2000)  # not a frame of the shot


def test_preview_tier_is_separate_labelled_and_bounded(shot, tmp_path):
    cache = str(tmp_path / "cache")
    preview = make_session(shot["pattern"], cache, shot["loaded"], preview=True,
                           preview_resolution=32, preroll=2)
    assert preview.tier == "preview"
    path = preview.ensure(1009)
    assert preview.counters.frames_computed == 3  # 1007, 1008, 1009: two frames of pre-roll
    stamp = oiio.ImageInput.open(path)
    assert stamp.spec().getattribute("vrmbg:tier") == "preview"
    assert stamp.spec().getattribute("vrmbg:start") == 1007
    stamp.close()
    # the pre-rolled result is what a straight run from 1007 at 32 px gives
    rolled = straight_run(shot["pattern"], shot["loaded"], resolution=32, start=1007, last=1009)
    got = read_matte(path).astype(np.float16)
    assert np.array_equal(got.view(np.uint16), rolled[1009][0].view(np.uint16))
    preview.ensure(1010)  # continues from 1009 (within the pre-roll window)
    assert preview.counters.frames_computed == 4

    final = make_session(shot["pattern"], cache, shot["loaded"])
    final_path = final.ensure(1009)
    assert final.counters.frames_computed == 9  # never uses preview frames
    assert final_path != path and f"{os.sep}final{os.sep}" in final_path
    assert_matches(final, shot["reference"], FRAMES[:9])
    # once the final matte exists, preview requests get it
    again = make_session(shot["pattern"], cache, shot["loaded"], preview=True,
                         preview_resolution=32, preroll=2)
    assert again.ensure(1009) == final_path
    assert again.counters.frames_computed == 0


def test_preview_resolution_alone_is_an_exact_chain_at_the_lower_size(shot, tmp_path):
    cache = str(tmp_path / "cache")
    preview = make_session(shot["pattern"], cache, shot["loaded"], preview=True,
                           preview_resolution=32)
    preview.ensure(1004)
    preview.ensure(1006)
    assert preview.counters.frames_computed == 6  # from the shot start, each frame once
    small = straight_run(shot["pattern"], shot["loaded"], resolution=32, last=1006)
    for frame in FRAMES[:6]:
        got = read_matte(preview.matte_path(frame)).astype(np.float16)
        assert np.array_equal(got.view(np.uint16), small[frame][0].view(np.uint16)), frame
    assert f"{os.sep}preview{os.sep}" in preview.folder
    same_as_final = make_session(shot["pattern"], cache, shot["loaded"], preview=True,
                                 preview_resolution=RESOLUTION)
    assert same_as_final.tier == "final"  # nothing to preview: the exact chain is used


def test_bf16_state_round_trips_bit_exactly(shot, tmp_path):
    loaded = model(shot["model_dir"], "bf16")
    cache = str(tmp_path / "cache")
    first = make_session(shot["pattern"], cache, loaded)
    assert first.identity["dtype"] == "bfloat16"
    first.ensure(1004)
    resumed = make_session(shot["pattern"], cache, loaded)
    resumed.ensure(1007)
    assert resumed.counters.states_loaded == 1
    assert_matches(resumed, straight_run(shot["pattern"], loaded, last=1007), FRAMES[:7])
    stored = np.load(state_file(resumed, 1007))
    assert stored.dtype == np.uint16 and stored.shape == (1, 1, RESOLUTION, RESOLUTION)


def matte_key(path: str) -> str:
    image = oiio.ImageInput.open(path)
    try:
        return image.spec().getattribute("vrmbg:key")
    finally:
        image.close()


def test_expected_keys_match_finished_mattes_and_follow_plate_changes(shot, tmp_path):
    pattern = copy_plates(shot, str(tmp_path / "plates"))
    session = make_session(pattern, str(tmp_path / "cache"), shot["loaded"])
    session.ensure(1005)
    before = session.expected_keys(FRAMES)
    assert sorted(before) == FRAMES
    for frame in FRAMES[:5]:
        assert matte_key(session.matte_path(frame)) == before[frame]
    write_plate(pattern.replace("####", "1003"), 1003, variant=1)
    after = session.expected_keys(FRAMES)
    assert [f for f in FRAMES if after[f] == before[f]] == [1001, 1002]
    assert session.cached_frames() == [1001, 1002]


def test_nan_pixels_are_reported_per_frame(shot, tmp_path):
    pattern = copy_plates(shot, str(tmp_path / "plates"))
    pixels = plate_pixels(1002)
    pixels[3:5, 7:10] = np.nan
    path = pattern.replace("####", "1002")
    spec = oiio.ImageSpec(WIDTH, HEIGHT, 3, oiio.HALF)
    out = oiio.ImageOutput.create(path)
    assert out.open(path, spec) and out.write_image(pixels.astype(np.float16))
    out.close()
    session = make_session(pattern, str(tmp_path / "cache"), shot["loaded"])
    result = session.ensure_frames([1003])
    assert result.bad_pixels == {1002: 6}
    assert result.computed == [1001, 1002, 1003]


def test_status_and_cached_frames_answer_from_another_thread_during_a_pass(shot, tmp_path):
    session = make_session(shot["pattern"], str(tmp_path / "cache"), shot["loaded"])
    stepper = session.stepper
    step, entered, release = stepper.step, threading.Event(), threading.Event()

    def held_step(*args):
        result = step(*args)
        if not entered.is_set():  # hold the pass inside the model after its first frame
            entered.set()
            assert release.wait(30)
        return result

    stepper.step = held_step
    try:
        worker = threading.Thread(target=session.ensure, args=(FRAMES[3],))
        worker.start()
        assert entered.wait(30)
        status = session.status()
        assert status["computing"] == FRAMES[0]
        assert session.cached_frames() == []  # nothing is written yet, and asking is safe
        release.set()
        worker.join(60)
    finally:
        stepper.step = step
    assert session.status()["computing"] is None
    assert session.status()["frames_computed"] == 4
    assert session.cached_frames() == FRAMES[:4]
    assert_matches(session, shot["reference"], FRAMES[:4])
