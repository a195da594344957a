"""Cuts in an edit: at a cut the chain restarts from an empty prior.

The frames after a cut must equal a render of that shot alone starting at the cut frame, bit
for bit, whether the cut was given (a frame list, an OpenTimelineIO timeline, a CMX EDL) or
detected from the pictures; a jump after a given cut computes from the cut only. Detection
finds hard cuts but not fast motion, flashes or fades, decides each frame from earlier frames
only, and decides the same in a resumed, chunked or jumped chain as in a straight run.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from vrmbg.core.demo import shot_files, synth
from vrmbg.core.io.edits import resolve_cuts
from vrmbg.core.engine.cuts import FULL, covered_box, detect_cuts
from vrmbg.core.engine.opening import open_session
from vrmbg.core.errors import UsageError
from vrmbg.core.io.mattes import read_matte
from vrmbg.core.model import init_random

FIRST, LENGTH = 1001, 6  # two generated shots of six frames, cut at 1007
CUT = FIRST + LENGTH
RESOLUTION = 64


@pytest.fixture(scope="module")
def edit(tmp_path_factory):
    """An edit of two generated shots as one EXR sequence, and the second shot on its own."""
    root = tmp_path_factory.mktemp("edit")
    model = init_random(str(root / "model"), "tiny", seed=21)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for index, seed in enumerate((2001, 2002)):
        shot = synth.generate_shot(seed, frames=LENGTH, width=96, height=64,
                                   first_frame=FIRST + index * LENGTH)
        shot_files.write_shot(shot, str(root / f"shot{index}"), name="edit")
    os.makedirs(root / "edit")
    for index in (0, 1):
        for name in os.listdir(root / f"shot{index}" / "plate"):
            shutil.copy(root / f"shot{index}" / "plate" / name, root / "edit" / name)
    yield {"root": root, "model": model, "edit": str(root / "edit" / "edit.####.exr"),
           "second": str(root / "shot1" / "plate" / "edit.####.exr")}
    torch.set_num_threads(threads)


def session(edit, pattern: str, cache, **settings):
    return open_session(pattern, {"model": edit["model"], "device": "cpu", "precision": "fp32",
                                  "resolution": RESOLUTION, **settings}, cache_root=str(cache))


def mattes(paths: dict[int, str]) -> dict[int, np.ndarray]:
    return {frame: read_matte(path) for frame, path in paths.items()}


def test_frames_after_a_given_cut_equal_that_shot_rendered_alone(edit, tmp_path):
    frames = list(range(FIRST, FIRST + 2 * LENGTH))
    cut = session(edit, edit["edit"], tmp_path / "a", cuts=str(CUT))
    uncut = session(edit, edit["edit"], tmp_path / "b")
    alone = session(edit, edit["second"], tmp_path / "c")
    with_cut, without = mattes(cut.ensure_range(frames)), mattes(uncut.ensure_range(frames))
    second = mattes(alone.ensure_range(frames[LENGTH:]))
    for frame in frames[LENGTH:]:
        assert np.array_equal(with_cut[frame], second[frame]), frame
    assert not np.array_equal(without[CUT], second[CUT]), "the prior across the cut matters"
    for frame in frames[:LENGTH]:
        assert np.array_equal(with_cut[frame], without[frame]), frame
    assert cut.known_cuts() == [CUT] and uncut.known_cuts() == []
    assert cut.chain_id != uncut.chain_id


def test_a_jump_after_a_cut_computes_from_the_cut(edit, tmp_path):
    s = session(edit, edit["edit"], tmp_path / "cache", cuts=str(CUT))
    result = s.ensure_frames([CUT + 2])
    assert result.computed == [CUT, CUT + 1, CUT + 2]
    assert result.cuts == [CUT]


def test_a_plate_changed_before_a_cut_keeps_the_frames_after_it(edit, tmp_path):
    folder = tmp_path / "plates"
    shutil.copytree(os.path.dirname(edit["edit"]), folder)
    pattern = str(folder / "edit.####.exr")
    s = session(edit, pattern, tmp_path / "cache", cuts=str(CUT))
    s.ensure_range(range(FIRST, FIRST + 2 * LENGTH))
    path = pattern.replace("####", str(FIRST + 2))
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert s.cached_frames() == [FIRST, FIRST + 1] + list(range(CUT, FIRST + 2 * LENGTH))


def test_detected_cuts_restart_the_chain_like_a_given_cut(edit, tmp_path):
    frames = list(range(FIRST, FIRST + 2 * LENGTH))
    detected = session(edit, edit["edit"], tmp_path / "a", detect_cuts=True)
    given = session(edit, edit["edit"], tmp_path / "b", cuts=str(CUT))
    result = detected.ensure_frames(frames)
    assert result.cuts == [CUT]
    ours, theirs = mattes(result.paths), mattes(given.ensure_range(frames))
    for frame in frames:
        assert np.array_equal(ours[frame], theirs[frame]), frame
    assert detected.known_cuts() == [CUT]
    # resumed from the cache, a jump makes the same decision
    again = session(edit, edit["edit"], tmp_path / "c", detect_cuts=True)
    again.ensure(CUT - 2)
    assert mattes(again.ensure_range([CUT + 1]))[CUT + 1].tobytes() == ours[CUT + 1].tobytes()


def prepared(rgb: np.ndarray, size: int = 192) -> torch.Tensor:
    """A display-referred frame (H, W, 3) as the engine prepares it: resized, normalised."""
    import torch.nn.functional as F

    planes = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]
    small = F.interpolate(planes, size=(size, size), mode="bilinear", align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (small - mean) / std


def pattern(width: int, height: int) -> np.ndarray:
    """A high-contrast world: a two-colour checkerboard crossed by stripes."""
    y, x = np.mgrid[0:height, 0:width]
    checker = ((x // 32 + y // 32) % 2).astype(np.float32)[..., None]
    stripes = (0.5 + 0.5 * np.sin(x * 0.11 + y * 0.05)).astype(np.float32)[..., None]
    image = np.array([0.15, 0.3, 0.7]) + np.array([0.7, 0.5, -0.5]) * checker
    return np.clip(0.8 * image + 0.2 * stripes, 0, 1).astype(np.float32)


def generated(seed: int, frames: int) -> list[np.ndarray]:
    return list(synth.to_model_input(synth.generate_shot(seed, frames=frames, width=384,
                                                         height=216).rgb))


def fast_pan(frames: int) -> list[np.ndarray]:
    """A window moving 17 px a frame over a high-contrast pattern (384 x 216)."""
    world = pattern(384 + 17 * frames, 216)
    return [world[:, 17 * i:17 * i + 384] for i in range(frames)]


def disc_crossing(frames: int) -> list[np.ndarray]:
    """A large flat disc crossing a generated shot in `frames` frames."""
    y, x = np.mgrid[0:216, 0:384]
    out = []
    for i, picture in enumerate(generated(2011, frames)):
        inside = (x - (-80 + 560 * i / (frames - 1))) ** 2 + (y - 108) ** 2 < 86 ** 2
        out.append(np.where(inside[..., None], np.float32([0.9, 0.2, 0.1]), picture))
    return out


def cropped_every_other_frame(frames: int) -> tuple[list[np.ndarray], list]:
    """A generated shot whose odd frames keep only a smaller data window (black outside)."""
    window = (64, 27, 256, 162)
    out, boxes = [], []
    for i, picture in enumerate(generated(2012, frames)):
        if i % 2:
            kept = np.zeros_like(picture)
            kept[27:189, 64:320] = picture[27:189, 64:320]
            picture = kept
        out.append(picture)
        boxes.append(covered_box(window if i % 2 else (0, 0, 384, 216), (0, 0, 384, 216)))
    return out, boxes


@pytest.mark.parametrize("case", ["fast pan", "disc crossing", "data window"])
def test_fast_motion_is_no_cut_and_the_hard_cut_after_it_is_found(case):
    boxes = None
    if case == "fast pan":
        frames = fast_pan(14)
    elif case == "disc crossing":
        frames = disc_crossing(14)
    else:
        frames, boxes = cropped_every_other_frame(14)
    frames += generated(2013, 3)
    boxes = (boxes or [FULL] * 14) + [FULL] * 3
    pictures = [prepared(f) for f in frames]
    assert detect_cuts(pictures, boxes) == [14]


def test_a_decision_never_depends_on_later_frames():
    """Replacing frame N's plate leaves every decision before N as it was."""
    frames = fast_pan(8) + generated(2013, 4) + fast_pan(6)
    pictures = [prepared(f) for f in frames]
    other = [prepared(f) for f in generated(2014, len(frames))]
    straight = detect_cuts(pictures)
    assert straight == [8, 12]
    for n in range(2, len(frames)):
        changed = detect_cuts(pictures[:n] + other[n:])
        assert [c for c in changed if c < n] == [c for c in straight if c < n], n


def test_a_flash_and_a_fade_through_black_are_no_cut():
    shot = generated(2015, 16)
    flash = list(shot)
    flash[6] = np.clip(shot[6] * 0.1 + 0.9, 0, 1)  # burnt almost to white
    flash[10] = np.clip(shot[10] * 0.7 + 0.4, 0, 1)  # lifted
    assert detect_cuts([prepared(f) for f in flash]) == []
    other = generated(2016, 8)
    fade = [a * (1 - i / 8) for i, a in enumerate(shot[:9])]
    fade += [b * (i / 7) for i, b in enumerate(other)]
    assert detect_cuts([prepared(f) for f in fade]) == []


def test_one_frame_of_another_picture_starts_one_cut():
    shot, other = generated(2017, 10), generated(2018, 1)
    frames = shot[:5] + other + shot[6:]
    assert detect_cuts([prepared(f) for f in frames]) == [5]


@pytest.fixture(scope="module")
def panned_edit(tmp_path_factory):
    """A fast pan with one frame of another shot inside it, then a hard cut:
    1001-1010 pan, 1011 the other shot, 1012-1014 pan, 1015-1018 a generated shot."""
    root = tmp_path_factory.mktemp("panned")
    pan = fast_pan(13)
    display = pan[:10] + generated(2019, 1) + pan[10:] + generated(2020, 4)
    linear = synth.convert(np.stack(display), synth.MODEL_SPACE, synth.WORKING_SPACE)
    shot = synth.Shot(rgb=linear.astype(np.float32),
                      alpha=np.zeros(linear.shape[:3], np.float32),
                      frames=tuple(range(FIRST, FIRST + len(display))), seed=0)
    files = shot_files.write_shot(shot, str(root / "shot"), name="pan")
    return {"model": init_random(str(root / "model"), "tiny", seed=21), "edit": files.plate,
            "frames": list(shot.frames)}


def test_a_fast_pan_gives_no_cut_in_the_engine_and_a_resume_decides_as_a_straight_run(
        panned_edit, tmp_path):
    frames = panned_edit["frames"]
    insert, cut = FIRST + 10, FIRST + 14

    def open_(name):
        return session(panned_edit, panned_edit["edit"], tmp_path / name, detect_cuts=True)

    straight = open_("straight").ensure_frames(frames)
    assert straight.cuts == [insert, cut]
    ours = mattes(straight.paths)
    # in chunks, resuming just after the inserted frame and inside the pan
    chunked = open_("chunked")
    for chunk in (frames[:5], frames[5:11], frames[11:]):
        chunked.ensure_frames(chunk)
    assert chunked.known_cuts() == [insert, cut]
    # a jump whose resume finds no cached matte before it: the scores come from the plates
    jumped = open_("jumped")
    jumped.ensure_frames(frames[:11])
    for frame in frames[5:11]:
        os.remove(jumped.matte_path(frame))
    result = jumped.ensure_frames([frames[-1]])
    assert result.computed == frames[11:] and result.cuts == [cut]
    for s in (chunked, jumped):
        theirs = mattes(s.ensure_range(frames[11:]))
        for frame in frames[11:]:
            assert theirs[frame].tobytes() == ours[frame].tobytes(), frame


def test_cut_lists_from_frames_timelines_and_edls(tmp_path):
    import opentimelineio as otio

    frames = list(range(1001, 1031))
    assert resolve_cuts("1011,1021", frames) == [1011, 1021]
    assert resolve_cuts("1001,1011", frames) == [1011]  # the shot start is no cut
    with pytest.raises(UsageError, match="not plate frames"):
        resolve_cuts("1040", frames)
    timeline = otio.schema.Timeline(name="edit")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for name, length in (("a", 10), ("b", 12), ("c", 8)):
        track.append(otio.schema.Clip(name=name, source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(length, 24))))
    otio_path = str(tmp_path / "my edit.otio")
    otio.adapters.write_to_file(timeline, otio_path)
    assert resolve_cuts(otio_path, frames) == [1011, 1023]
    edl_path = str(tmp_path / "edit.edl")
    otio.adapters.write_to_file(timeline, edl_path, adapter_name="cmx_3600")
    assert resolve_cuts(edl_path, frames) == [1011, 1023]


def test_render_json_and_info_list_the_cuts(edit, tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "mattes" / "edit.####.exr"
    result = subprocess.run([sys.executable, "-m", "vrmbg.core", "render", edit["edit"], "-o",
                             str(out), "--model", edit["model"], "--device", "cpu",
                             "--resolution", str(RESOLUTION), "--detect-cuts", "--json",
                             "--progress", "quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cuts"] == [CUT]
    info = subprocess.run([sys.executable, "-m", "vrmbg.core", "info", edit["edit"], "--cuts",
                           f"{CUT},{CUT + 2}", "--json"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["cuts"] == [CUT, CUT + 2]
