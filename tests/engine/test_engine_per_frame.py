"""Per-frame models (3-channel input, no temporal prior) through the same engine.

Each frame is its own chain: a jump computes exactly one frame, frames can come in any order
or from parallel processes, a replaced plate recomputes only its own frame, and every matte
equals the model run on that plate alone.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from session_helpers import FRAMES, HEIGHT, RESOLUTION, WIDTH, make_plates, write_plate
from vrmbg.core.engine.opening import colour_for, open_session
from vrmbg.core.engine.step import FrameStepper
from vrmbg.core.io.mattes import read_matte
from vrmbg.core.model import ModelConfig, init_random, load_model
from vrmbg.core.io.plates import PlateSequence


@pytest.fixture(scope="module")
def per_frame(tmp_path_factory):
    root = tmp_path_factory.mktemp("per_frame")
    config = ModelConfig.preset("tiny").replace(in_channels=3)
    model_dir = init_random(str(root / "model"), config, seed=11)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {"root": root, "model": model_dir, "pattern": make_plates(str(root / "plates"))}
    torch.set_num_threads(threads)


def session(shot, cache, **settings):
    return open_session(shot["pattern"], {"model": shot["model"], "device": "cpu",
                                          "precision": "fp32", "resolution": RESOLUTION,
                                          **settings}, cache_root=str(cache))


def alone(shot, frame: int) -> np.ndarray:
    """The model on one plate, no engine: what a per-frame matte must be."""
    plates = PlateSequence(shot["pattern"])
    stepper = FrameStepper(load_model(shot["model"], device="cpu", precision="fp32"),
                           RESOLUTION)
    rgb = colour_for(plates, {}).to_model(plates.read(frame).rgb)
    pred = stepper.step(stepper.prepare(rgb), None, None)
    return stepper.to_plate(pred, HEIGHT, WIDTH).astype(np.float16)


def test_a_jump_computes_exactly_that_frame_and_equals_the_model_on_its_plate(per_frame,
                                                                             tmp_path):
    s = session(per_frame, tmp_path / "cache")
    assert not s.stepper.temporal
    result = s.ensure_frames([FRAMES[7]])
    assert result.computed == [FRAMES[7]]
    assert np.array_equal(read_matte(result.paths[FRAMES[7]]).astype(np.float16),
                          alone(per_frame, FRAMES[7]))
    result = s.ensure_frames([FRAMES[2], FRAMES[5]])
    assert result.computed == [FRAMES[2], FRAMES[5]]
    assert s.cached_frames() == [FRAMES[2], FRAMES[5], FRAMES[7]]


def test_any_order_and_two_sessions_give_the_same_mattes(per_frame, tmp_path):
    one = session(per_frame, tmp_path / "a")
    two = session(per_frame, tmp_path / "b")
    first = one.ensure_range(FRAMES)
    second = {f: two.ensure(f) for f in reversed(FRAMES)}
    for frame in FRAMES:
        assert np.array_equal(read_matte(first[frame]), read_matte(second[frame])), frame


def test_a_replaced_plate_recomputes_only_its_own_frame(per_frame, tmp_path):
    plates = tmp_path / "plates"
    pattern = make_plates(str(plates))
    shot = {**per_frame, "pattern": pattern}
    s = session(shot, tmp_path / "cache")
    s.ensure_range(FRAMES)
    write_plate(pattern.replace("####", str(FRAMES[3])), FRAMES[3], variant=2)
    st = os.stat(pattern.replace("####", str(FRAMES[3])))
    os.utime(pattern.replace("####", str(FRAMES[3])), ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert s.cached_frames() == [f for f in FRAMES if f != FRAMES[3]]
    result = s.ensure_frames(FRAMES)
    assert result.computed == [FRAMES[3]]


def test_per_frame_mattes_say_so_and_preroll_is_ignored(per_frame, tmp_path):
    from vrmbg.core.io.mattes import read_matte_stamp

    exact = session(per_frame, tmp_path / "cache")
    preview = open_session(per_frame["pattern"], {"model": per_frame["model"], "device": "cpu",
                                                  "precision": "fp32", "resolution": RESOLUTION,
                                                  "preroll": 3}, cache_root=str(tmp_path / "cache"),
                           preview=True)
    assert preview.chain_id == exact.chain_id and preview.tier == "final"
    stamp = read_matte_stamp(exact.ensure(FRAMES[4]))
    assert stamp["model_kind"] == "per-frame" and stamp["exact"] == 1
    assert exact.identity["temporal"] is False


def test_an_edge_aware_upsample_reaches_the_written_matte_and_its_own_chain(per_frame, tmp_path):
    bilinear = session(per_frame, tmp_path / "cache")
    guided = session(per_frame, tmp_path / "cache", upsample="guided-colour")
    assert guided.chain_id != bilinear.chain_id
    assert guided.identity["upsample"] != "bilinear" and "upsample" not in bilinear.identity
    frame = FRAMES[4]
    soft, sharp = read_matte(bilinear.ensure(frame)), read_matte(guided.ensure(frame))
    assert not np.array_equal(soft, sharp)
    plates = PlateSequence(per_frame["pattern"])
    rgb = colour_for(plates, {}).to_model(plates.read(frame).rgb)
    stepper = guided.stepper
    pred = stepper.step(stepper.prepare(rgb), None, None)
    expected = stepper.to_plate(pred, HEIGHT, WIDTH, guide=stepper.guide_for(rgb))
    assert np.array_equal(sharp, expected.astype(np.float16).astype(np.float32))
