"""Keyframes: the artist's matte at frame k is the matte of k, and the prior of k + 1.

Frames before k are bit-identical to a run without keyframes; frames after k equal an
independent run of the model card's loop whose state at k is the keyframe; a jump, a resume
and a chunk equal a straight run; adding, changing or removing a keyframe recomputes from its
frame and nothing before it.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import OpenImageIO as oiio
import pytest
import torch
import torch.nn.functional as F

from vrmbg.core.demo import shot_files, synth
from vrmbg.core.engine.opening import colour_for, open_session
from vrmbg.core.engine.step import FrameStepper
from vrmbg.core.errors import InputError
from vrmbg.core.io.mattes import read_matte, read_matte_stamp
from vrmbg.core.io.plates import PlateSequence
from vrmbg.core.model import ModelConfig, init_random, load_model

FIRST, COUNT = 1001, 8
FRAMES = list(range(FIRST, FIRST + COUNT))
WIDTH, HEIGHT = 96, 64
RESOLUTION = 64
KEY = 1004


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """A generated shot (plates and exact alpha), the tiny model, and the run without keys."""
    root = tmp_path_factory.mktemp("keyframes")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    generated = synth.generate_shot(2003, frames=COUNT, width=WIDTH, height=HEIGHT,
                                    first_frame=FIRST)
    files = shot_files.write_shot(generated, str(root / "shot"), name="sh010")
    model = init_random(str(root / "model"), "tiny", seed=5)
    data = {"root": root, "plate": files.plate, "model": model, "truth": generated.alpha}
    plain = session(data, root / "plain-cache")
    data["plain"] = mattes(plain.ensure_range(FRAMES))
    yield data
    torch.set_num_threads(threads)


def session(shot, cache, **settings):
    """A session on the shot's plates with the tiny model on the CPU."""
    return open_session(shot["plate"], {"model": shot["model"], "device": "cpu",
                                        "precision": "fp32", "resolution": RESOLUTION,
                                        **settings}, cache_root=str(cache))


def mattes(paths: dict[int, str]) -> dict[int, np.ndarray]:
    return {frame: read_matte(path) for frame, path in paths.items()}


def write_key(folder, frame: int, alpha: np.ndarray, *, channels=("A",),
              size: tuple[int, int] | None = None) -> str:
    """A float EXR keyframe holding `alpha` in each of `channels`; returns the pattern."""
    os.makedirs(folder, exist_ok=True)
    pattern = os.path.join(str(folder), "key.####.exr")
    height, width = alpha.shape if size is None else (size[1], size[0])
    pixels = np.zeros((height, width, len(channels)), np.float32)
    pixels[..., :] = alpha[:height, :width, None]
    spec = oiio.ImageSpec(width, height, len(channels), oiio.FLOAT)
    spec.channelnames = channels
    path = pattern.replace("####", str(frame))
    out = oiio.ImageOutput.create(path)
    assert out.open(path, spec) and out.write_image(pixels), oiio.geterror()
    out.close()
    return pattern


def reference(shot, keys: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """The model card's loop written out here, the state of a keyframe's frame being its
    matte at the model's size (bilinear, as the plate is resized), as half mattes."""
    loaded = load_model(shot["model"], device="cpu", precision="fp32")
    stepper = FrameStepper(loaded, RESOLUTION)
    plates = PlateSequence(shot["plate"])
    colour = colour_for(plates, {})
    out, prev, prior = {}, None, None
    for frame in FRAMES:
        rgb01, _ = colour.convert(plates.read(frame).rgb)
        cur = stepper.prepare(rgb01)
        if frame in keys:
            key = torch.from_numpy(keys[frame])[None, None]
            prior = F.interpolate(key, size=(RESOLUTION, RESOLUTION), mode="bilinear",
                                  align_corners=False).clamp(0, 1)
            out[frame] = keys[frame]
        else:
            prior = stepper.step(cur, prev, prior)
            out[frame] = stepper.to_plate(prior, HEIGHT, WIDTH)
        prev = cur
        out[frame] = out[frame].astype(np.float16).astype(np.float32)
    return out


def test_frames_after_a_keyframe_follow_it_and_frames_before_are_untouched(shot, tmp_path):
    truth = shot["truth"][KEY - FIRST]
    keys = write_key(tmp_path / "keys", KEY, truth)
    s = session(shot, tmp_path / "cache", keyframes=keys)
    got = mattes(s.ensure_range(FRAMES))
    for frame in FRAMES[:KEY - FIRST]:
        assert np.array_equal(got[frame], shot["plain"][frame]), frame
    # the keyframe's own matte is the artist's, as given (stored as half)
    assert np.array_equal(got[KEY], truth.astype(np.float16).astype(np.float32))
    assert read_matte_stamp(s.matte_path(KEY)).get("keyframe") == 1
    assert "keyframe" not in read_matte_stamp(s.matte_path(KEY + 1))
    # the random test model forgets its prior within a few frames; the frame after the key
    # changes, and every later one equals the loop continued from the key (below)
    assert not np.array_equal(got[KEY + 1], shot["plain"][KEY + 1])
    expected = reference(shot, {KEY: truth})
    for frame in FRAMES:
        assert np.array_equal(got[frame], expected[frame]), frame
    assert s.keyframe_frames() == [KEY]


def test_a_hint_matte_on_the_first_frame_steers_the_chain(shot, tmp_path):
    hint = (shot["truth"][0] > 0.2).astype(np.float32)  # a coarse binary hint
    keys = write_key(tmp_path / "keys", FIRST, hint)
    got = mattes(session(shot, tmp_path / "cache", keyframes=keys).ensure_range(FRAMES))
    expected = reference(shot, {FIRST: hint})
    for frame in FRAMES:
        assert np.array_equal(got[frame], expected[frame]), frame


def test_jump_resume_and_chunks_equal_a_straight_run(shot, tmp_path):
    keys = write_key(tmp_path / "keys", KEY, shot["truth"][KEY - FIRST])
    straight = mattes(session(shot, tmp_path / "straight", keyframes=keys).ensure_range(FRAMES))
    jump = session(shot, tmp_path / "jump", keyframes=keys)
    assert np.array_equal(read_matte(jump.ensure(FRAMES[-1])), straight[FRAMES[-1]])
    for stop in (KEY - 1, KEY, KEY + 1):  # resume before, at and after the keyframe
        cache = tmp_path / f"resume-{stop}"
        session(shot, cache, keyframes=keys).ensure(stop)
        again = session(shot, cache, keyframes=keys)
        result = again.ensure_frames(FRAMES)
        assert result.computed == FRAMES[FRAMES.index(stop) + 1:]
        assert mattes(result.paths).keys() == straight.keys()
        for frame, alpha in mattes(result.paths).items():
            assert np.array_equal(alpha, straight[frame]), (stop, frame)
    chunked = tmp_path / "chunks"
    for chunk in (FRAMES[5:], FRAMES[:3], FRAMES[3:5]):  # the last chunk first
        paths = session(shot, chunked, keyframes=keys).ensure_range(chunk)
        for frame, alpha in mattes(paths).items():
            assert np.array_equal(alpha, straight[frame]), frame


def test_adding_changing_and_removing_a_keyframe_recomputes_from_it_only(shot, tmp_path):
    cache = tmp_path / "cache"
    folder = tmp_path / "keys"
    os.makedirs(folder)
    pattern = os.path.join(str(folder), "key.####.exr")
    first = session(shot, cache, keyframes=pattern)  # the pattern set, no file yet
    assert first.ensure_frames(FRAMES).computed == FRAMES
    assert first.chain_id == session(shot, cache).chain_id  # no keyframe: the plain chain
    before = {f: os.stat(first.matte_path(f)).st_mtime_ns for f in FRAMES}

    def computed() -> list[int]:
        return session(shot, cache, keyframes=pattern).ensure_frames(FRAMES).computed

    write_key(folder, 1005, shot["truth"][4])
    with pytest.raises(InputError, match="first keyframe was added since"):
        first.ensure_frames(FRAMES)  # the session opened without keyframes: open it again
    assert computed() == FRAMES  # the first keyframe: the keyed chain, from the shot start
    write_key(folder, 1005, shot["truth"][4] * 0.5)
    assert computed() == FRAMES[4:]  # changed
    write_key(folder, 1007, shot["truth"][6])
    assert computed() == FRAMES[6:]  # a second one added later
    os.remove(os.path.join(str(folder), "key.1007.exr"))
    assert computed() == FRAMES[6:]  # removed
    assert computed() == []
    os.remove(os.path.join(str(folder), "key.1005.exr"))
    last = session(shot, cache, keyframes=pattern)
    assert last.ensure_frames(FRAMES).computed == []  # no keyframe left: the plain chain, kept
    for frame in FRAMES[:4]:
        assert os.stat(last.matte_path(frame)).st_mtime_ns == before[frame], frame
    for frame, alpha in mattes(last.ensure_range(FRAMES)).items():
        assert np.array_equal(alpha, shot["plain"][frame]), frame


def test_two_keyframe_sources_of_one_shot_never_share_mattes(shot, tmp_path):
    """Two nodes (or renders) of one plate, one with keyframes and one without, or with
    keyframes from two folders, each keep their own exact mattes side by side in one cache."""
    cache = tmp_path / "cache"
    plain = session(shot, cache)
    keyed = session(shot, cache, keyframes=write_key(tmp_path / "a", 1006, shot["truth"][5]))
    other = session(shot, cache, keyframes=write_key(tmp_path / "b", 1006, shot["truth"][5] * 0.25))
    assert len({plain.chain_id, keyed.chain_id, other.chain_id}) == 3
    for each in (plain, keyed, other, plain, keyed):  # interleaved, as a render of both does
        each.ensure_range(FRAMES)
    for frame, alpha in mattes(plain.ensure_range(FRAMES)).items():
        assert np.array_equal(alpha, shot["plain"][frame]), frame
    keyed_out, other_out = mattes(keyed.ensure_range(FRAMES)), mattes(other.ensure_range(FRAMES))
    assert np.array_equal(keyed_out[1006], shot["truth"][5].astype(np.float16).astype(np.float32))
    assert not np.array_equal(keyed_out[1007], other_out[1007])
    assert keyed.ensure_frames(FRAMES).computed == [] and other.ensure_frames(FRAMES).computed == []


def test_a_cache_moved_whole_with_its_keyframe_folder_keeps_its_chain(shot, tmp_path):
    """A host keeps its keyframes inside its cache; an unsaved file's cache moves beside the
    file on its first save, and nothing is computed again."""
    old, new = tmp_path / "user-cache", tmp_path / "show" / "vrmbg-cache"
    keys = write_key(old / "host-keys" / "matte1", 1006, shot["truth"][5])
    first = session(shot, old, keyframes=keys)
    first.ensure_range(FRAMES)
    os.makedirs(new.parent)
    shutil.move(str(old), str(new))
    moved = session(shot, new, keyframes=os.path.join(str(new), "host-keys", "matte1",
                                                      "key.####.exr"))
    assert moved.chain_id == first.chain_id
    assert moved.ensure_frames(FRAMES).computed == []


def test_a_bad_keyframe_is_one_line_naming_file_and_frame(shot, tmp_path):
    small = write_key(tmp_path / "small", 1003, np.ones((32, 48), np.float32))
    with pytest.raises(InputError) as caught:
        session(shot, tmp_path / "cache", keyframes=small)
    text = str(caught.value)
    assert "key.1003.exr" in text and "frame 1003" in text and "48x32" in text
    assert "\n" not in text
    rgb = write_key(tmp_path / "rgb", 1002, shot["truth"][1], channels=("R", "G", "B"))
    with pytest.raises(InputError, match=r"frame 1002.*alpha channel A"):
        session(shot, tmp_path / "cache", keyframes=rgb)


def test_grey_png_and_single_channel_exr_keyframes(shot, tmp_path):
    truth = shot["truth"][2]
    grey = write_key(tmp_path / "grey", 1003, truth, channels=("Y",))
    got = read_matte(session(shot, tmp_path / "c1", keyframes=grey).ensure(1003))
    assert np.array_equal(got, truth.astype(np.float16).astype(np.float32))
    png = os.path.join(str(tmp_path / "png"), "key.%04d.png")
    os.makedirs(tmp_path / "png")
    out = oiio.ImageOutput.create("x.png")
    spec = oiio.ImageSpec(WIDTH, HEIGHT, 1, oiio.UINT8)
    path = png % 1003
    assert out.open(path, spec) and out.write_image(np.round(truth * 255).astype(np.uint8)[..., None])
    out.close()
    got = read_matte(session(shot, tmp_path / "c2", keyframes=png).ensure(1003))
    assert np.abs(got - truth).max() <= 1 / 255 + 1e-3


def test_a_per_frame_model_takes_the_keyframe_as_that_frames_matte(shot, tmp_path):
    config = ModelConfig.preset("tiny").replace(in_channels=3)
    model = init_random(str(tmp_path / "model"), config, seed=11)
    keys = write_key(tmp_path / "keys", KEY, shot["truth"][KEY - FIRST])
    plain = session({**shot, "model": model}, tmp_path / "plain")
    keyed = session({**shot, "model": model}, tmp_path / "keyed", keyframes=keys)
    assert not keyed.stepper.temporal
    result = keyed.ensure_frames([KEY + 1, KEY])
    assert sorted(result.computed) == [KEY, KEY + 1]
    got = mattes(result.paths)
    assert np.array_equal(got[KEY], shot["truth"][KEY - FIRST].astype(np.float16)
                          .astype(np.float32))
    assert np.array_equal(got[KEY + 1], read_matte(plain.ensure(KEY + 1)))


def test_a_truncated_cached_matte_counts_as_absent_and_is_recomputed(shot, tmp_path):
    s = session(shot, tmp_path / "cache")
    s.ensure_range(FRAMES)
    path = s.matte_path(1003)
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:len(data) * 2 // 3])  # a header and part of the pixels
    again = session(shot, tmp_path / "cache")
    assert 1003 not in again.cached_frames()
    result = again.ensure_frames([1003, 1005])
    assert result.computed == [1003]
    assert np.array_equal(read_matte(result.paths[1003]), shot["plain"][1003])
