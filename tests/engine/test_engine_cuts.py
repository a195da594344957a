"""Cuts in an edit: at a cut the chain restarts from an empty prior.

The frames after a cut must equal a render of that shot alone starting at the cut frame, bit
for bit, whether the cut was given (a frame list, an OpenTimelineIO timeline, a CMX EDL) or
detected from the pictures; a jump after a given cut computes from the cut only.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from vrmbg.core.demo import shot_files, synth
from vrmbg.core.io.edits import resolve_cuts
from vrmbg.core.engine.cuts import cut_score, is_cut
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


def test_the_detector_scores_a_cut_far_above_motion(edit):
    session_ = session(edit, edit["edit"], "/nonexistent-unused")
    stepper, colour, plates = session_.stepper, session_.colour, session_.plates
    prepared = {f: stepper.prepare(colour.to_model(plates.read(f).rgb)) for f in plates.frames}
    inside = [cut_score(prepared[f - 1], prepared[f]) for f in plates.frames[1:] if f != CUT]
    assert is_cut(prepared[CUT - 1], prepared[CUT])
    assert not any(is_cut(prepared[f - 1], prepared[f]) for f in plates.frames[1:] if f != CUT)
    assert cut_score(prepared[CUT - 1], prepared[CUT]) > 3 * max(inside)


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
