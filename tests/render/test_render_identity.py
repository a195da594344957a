"""`vrmbg render` as a pipeline TD meets it: which plates a folder of mattes belongs to, what
a re-render after a plate fix rewrites, head frames added to a shot, and chains that may
not be continued on another thread count.

Every check reads the outputs back from disk (stamps with OpenImageIO, mattes with the public
reader) and compares them with a straight render where exactness is claimed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from plate_factory import Part, ramp_rgb, write_exr, write_parts
from render_helpers import (FIRST, SIZE, assert_same_mattes, exr_pixels, frame_file,
                            frames_on_disk, make_other_plates, make_plates, one_error_line,
                            render_args, run_cli, run_json, run_process)
from vrmbg.core.io.mattes import read_matte_stamp
from vrmbg.core.errors import EXIT_OK, EXIT_OUTPUT

FRAMES = list(range(FIRST, FIRST + 8))  # 1001-1008


def _sha(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _state(pattern: str, frames) -> dict:
    """(mtime, content hash) of each output frame, to tell which ones were rewritten."""
    return {f: (os.stat(frame_file(pattern, f)).st_mtime_ns, _sha(frame_file(pattern, f)))
            for f in frames}


def _replace_plate(pattern: str, frame: int) -> None:
    """A fixed plate frame: other pictures under the same name (and a new mtime)."""
    pixels = np.ascontiguousarray(ramp_rgb(SIZE[1], SIZE[0], frame)[:, ::-1] * 0.5)
    write_exr(frame_file(pattern, frame), pixels)
    stat = os.stat(frame_file(pattern, frame))
    os.utime(frame_file(pattern, frame), ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))


# --------------------------------------------------------------------------- shot identity

def test_another_plate_version_with_the_same_names_is_never_overwritten(tmp_path, model,
                                                                        capsys):
    v001 = make_plates(str(tmp_path / "v001"), FRAMES, name="sh010_plate.####.exr")
    v002 = make_other_plates(str(tmp_path / "v002"), FRAMES, name="sh010_plate.####.exr")
    output = str(tmp_path / "out" / "sh010_plate.####.exr")
    run_json(render_args(v001, output, model), capsys)
    before = _state(output, FRAMES)

    code, out, err = run_cli(render_args(v002, output, model, "--json"), capsys)
    assert code == EXIT_OUTPUT, err
    assert "another plate" in one_error_line(err)
    assert _state(output, FRAMES) == before
    failed = json.loads(out)  # --json reports failures too, with the error
    assert failed["exit_code"] == EXIT_OUTPUT and "another plate" in failed["error"]

    # the same plates copied to another mount (same bytes and times) are still this shot
    mounted = tmp_path / "mnt" / "show"
    shutil.copytree(tmp_path / "v001", mounted)
    again = run_json(render_args(str(mounted / "sh010_plate.####.exr"), output, model),
                     capsys)
    assert again["frames_skipped_existing"] == len(FRAMES)
    assert _state(output, FRAMES) == before


def test_hash_spellings_matching_the_same_files_are_one_shot(tmp_path, model, capsys):
    make_plates(str(tmp_path / "plates"), FRAMES[:4])
    output = str(tmp_path / "out" / "sh010.####.exr")
    first = run_json(render_args(str(tmp_path / "plates" / "sh010.####.exr"), output, model),
                     capsys)
    for spelling in ("sh010.###.exr", "sh010.#.exr", "sh010.%d.exr"):
        again = run_json(render_args(str(tmp_path / "plates" / spelling), output, model),
                         capsys)
        assert again["frames_skipped_existing"] == 4, spelling
        assert again["frames_computed"] == 0, spelling
        assert again["chain_id"] == first["chain_id"], spelling


def test_naming_the_part_vrmbg_picked_is_the_same_shot(tmp_path, model, capsys):
    pattern = str(tmp_path / "plates" / "sh040.####.exr")
    os.makedirs(tmp_path / "plates")
    height, width = SIZE[1], SIZE[0]
    for frame in FRAMES[:3]:
        write_parts(frame_file(pattern, frame), [
            Part(("Z",), ramp_rgb(height, width, frame, channels=1), name="depth"),
            Part(("R", "G", "B"), ramp_rgb(height, width, frame), name="beauty")])
    output = str(tmp_path / "out" / "sh040.####.exr")
    first = run_json(render_args(pattern, output, model), capsys)
    assert first["frames_computed"] == 3
    for part in ("beauty", "1"):
        again = run_json(render_args(pattern, output, model, "--part", part), capsys)
        assert again["frames_skipped_existing"] == 3, part
        assert again["chain_id"] == first["chain_id"], part


# --------------------------------------------------------------------------- plate fixes

def test_a_fixed_plate_rewrites_exactly_that_frame_and_later_ones(tmp_path, model, capsys):
    """The render's promise: a frame written by an earlier chain is rewritten when a plate at
    or before it changed, and no other frame is touched."""
    pattern = make_plates(str(tmp_path / "plates"), FRAMES)
    output = str(tmp_path / "out" / "sh010.####.exr")
    cache = str(tmp_path / "cache")
    run_json(render_args(pattern, output, model, cache=cache), capsys)
    before = _state(output, FRAMES)

    _replace_plate(pattern, 1005)
    summary = run_json(render_args(pattern, output, model, cache=cache), capsys)
    assert summary["frames_rewritten"] == "1005-1008"
    assert summary["frames_written"] == "1005-1008"
    assert summary["frames_skipped_existing"] == 4
    assert summary["frames_computed"] == 4
    after = _state(output, FRAMES)
    assert [f for f in FRAMES if after[f] != before[f]] == [1005, 1006, 1007, 1008]
    # what was rewritten is what a straight render of today's plates gives
    straight = str(tmp_path / "straight" / "sh010.####.exr")
    run_json(render_args(pattern, straight, model, cache=str(tmp_path / "cache2")), capsys)
    assert_same_mattes(straight, output, FRAMES)


def test_rerendering_part_of_a_shot_after_a_fix_names_the_stale_outputs(tmp_path, model,
                                                                       capsys):
    pattern = make_plates(str(tmp_path / "plates"), FRAMES)
    output = str(tmp_path / "out" / "sh010.####.exr")
    run_json(render_args(pattern, output, model), capsys)
    _replace_plate(pattern, 1003)
    code, out, err = run_cli(render_args(pattern, output, model, "--frames", "1001-1005",
                                         "--json"), capsys)
    assert code == EXIT_OK, err
    summary = json.loads(out)
    assert summary["frames_rewritten"] == "1003-1005"
    assert summary["stale_outputs"] == "1006-1008"
    assert "1006-1008 are stale" in err


# --------------------------------------------------------------------------- shot start

def test_head_frames_added_say_so_and_shot_start_keeps_the_chain(tmp_path, model, capsys):
    pattern = make_plates(str(tmp_path / "plates"), FRAMES)
    output = str(tmp_path / "out" / "sh010.####.exr")
    cache = str(tmp_path / "cache")
    first = run_json(render_args(pattern, output, model, "--frames", "1001-1004", cache=cache),
                     capsys)
    make_plates(str(tmp_path / "plates"), [999, 1000])  # head frames copied in later

    code, _, err = run_cli(render_args(pattern, output, model, "--frames", "1001-1004",
                                       cache=cache), capsys)
    assert code == EXIT_OUTPUT, err
    line = one_error_line(err)
    assert "first frame changed" in line and "--shot-start 1001" in line

    kept = run_json(render_args(pattern, output, model, "--frames", "1001-1006",
                                "--shot-start", "1001", cache=cache), capsys)
    assert kept["chain_id"] == first["chain_id"]
    assert kept["frames_skipped_existing"] == 4 and kept["frames_computed"] == 2
    assert {read_matte_stamp(frame_file(output, f))["shot_start"] for f in FRAMES[:6]} == {1001}
    straight = str(tmp_path / "straight" / "sh010.####.exr")
    run_json(render_args(pattern, straight, model, "--shot-start", "1001",
                         cache=str(tmp_path / "c2")), capsys)
    assert_same_mattes(straight, output, FRAMES[:6])


def test_frames_of_a_moved_shot_start_are_never_mixed_with_new_ones(tmp_path, model, capsys):
    """Issue 25, case 13: a shot's output folder never holds two of its chains after exit 0
    (this test expected exit 0 and a "mixes chains" warning before)."""
    pattern = make_plates(str(tmp_path / "plates"), FRAMES)
    output = str(tmp_path / "out" / "sh010.####.exr")
    run_json(render_args(pattern, output, model, "--frames", "1001-1004"), capsys)
    make_plates(str(tmp_path / "plates"), [999, 1000])
    chunk = render_args(pattern, output, model, "--frames", "1005-1006")
    code, out, err = run_cli(chunk, capsys)
    assert code == EXIT_OUTPUT, err
    line = one_error_line(err)
    assert "1001-1004" in line and "--shot-start 1001" in line and "--overwrite" in line
    assert frames_on_disk(str(tmp_path / "out")) == FRAMES[:4]
    summary = run_json(chunk + ["--overwrite"], capsys)
    assert summary["frames_rewritten"] == "1001-1004"
    assert frames_on_disk(str(tmp_path / "out")) == FRAMES[:6]
    assert {read_matte_stamp(frame_file(output, f))["shot_start"] for f in FRAMES[:6]} == {999}


# --------------------------------------------------------------------------- thread counts

def test_chains_of_other_thread_counts_are_never_mixed(tmp_path, model):
    from vrmbg.core.cpu import usable_cores

    if usable_cores() < 2:
        pytest.skip("needs two cores")
    pattern = make_plates(str(tmp_path / "plates"), FRAMES[:4])
    output = str(tmp_path / "out" / "sh010.####.exr")
    cache = str(tmp_path / "cache")
    one = run_process(render_args(pattern, output, model, "--frames", "1001-1002",
                                  "--threads", "1", "--json", cache=cache))
    assert one.returncode == EXIT_OK, one.stderr
    two = run_process(render_args(pattern, output, model, "--frames", "1001-1002",
                                  "--threads", "2", cache=cache))
    assert two.returncode == EXIT_OUTPUT, two.stderr
    line = one_error_line(two.stderr)
    assert "compute: cpu:threads=1:" in line and "-> cpu:threads=2:" in line, line
    # the next chunk on two threads does not continue the one-thread chain: it starts over
    chunk = run_process(render_args(pattern, str(tmp_path / "out2" / "sh010.####.exr"), model,
                                    "--frames", "1003-1004", "--threads", "2", "--json",
                                    cache=cache))
    assert chunk.returncode == EXIT_OK, chunk.stderr
    summary = json.loads(chunk.stdout)
    assert summary["chain_id"] != json.loads(one.stdout)["chain_id"]
    assert summary["frames_computed"] == 4


# --------------------------------------------------------------------------- RGBA of log plates

def test_rgba_of_a_log_plate_is_premultiplied_in_scene_linear_and_tagged(tmp_path, model,
                                                                        capsys):
    import OpenImageIO as oiio
    import PyOpenColorIO as OCIO

    from plate_factory import write_dpx_sequence
    from render_helpers import exr_pixels, exr_spec, read_frames

    os.makedirs(tmp_path / "scans")
    pattern = write_dpx_sequence(str(tmp_path / "scans"), FRAMES[:2], name="sh050.####.dpx",
                                 size=SIZE)
    cache = str(tmp_path / "cache")
    alpha_out = str(tmp_path / "alpha" / "sh050.####.exr")
    rgba_out = str(tmp_path / "rgba" / "sh050.####.exr")
    log = ("--input-colorspace", "ACEScct")
    run_json(render_args(pattern, alpha_out, model, *log, cache=cache), capsys)
    run_json(render_args(pattern, rgba_out, model, *log, "--output-type", "rgba", cache=cache),
             capsys)
    config = OCIO.Config.CreateFromFile("ocio://studio-config-latest")
    to_linear = config.getProcessor("ACEScct", "ACEScg").getDefaultCPUProcessor()
    alphas = read_frames(alpha_out, FRAMES[:2])
    for frame in FRAMES[:2]:
        image = oiio.ImageInput.open(pattern.replace("####", str(frame)))
        plate = np.ascontiguousarray(image.read_image(oiio.FLOAT)[..., :3], dtype=np.float32)
        image.close()
        to_linear.applyRGB(plate)
        channels, pixels = exr_pixels(frame_file(rgba_out, frame))
        assert channels == ("R", "G", "B", "A")
        np.testing.assert_allclose(pixels[..., :3], plate * alphas[frame][..., None],
                                   rtol=2 ** -10, atol=1e-5)
        spec = exr_spec(frame_file(rgba_out, frame))
        assert spec.getattribute("vrmbg:colorspace") == "ACEScg"
        assert spec.getattribute("oiio:ColorSpace") in ("ACEScg", "lin_ap1_scene")


# --------------------------------------------------------------------------- what the log says

def test_the_log_says_the_header_the_lead_in_and_a_wait_for_another_render(tmp_path, model,
                                                                         capsys):
    import subprocess
    import sys

    from render_helpers import clean_env
    from vrmbg.core.engine.lock import ChainLock

    pattern = make_plates(str(tmp_path / "plates"), FRAMES[:5])
    output = str(tmp_path / "out" / "sh010.####.exr")
    cache = str(tmp_path / "cache")
    code, out, err = run_cli(render_args(pattern, output, model, "--frames", "1004",
                                         "--json", cache=cache), capsys)
    assert code == EXIT_OK, err
    summary = json.loads(out)
    for fact in ("plates ", "colour ACEScg -> sRGB Encoded Rec.709 (sRGB)", "fingerprint",
                 "device cpu, precision bfloat16", "CPU thread(s)",
                 f"chain {summary['chain_id']} (exact)", f"cache {summary['cache_folder']}"):
        assert fact in err, fact
    assert "computing 1001-1003 first: temporal lead-in" in err

    lock = ChainLock(os.path.join(summary["cache_folder"], "chain.lock"))
    assert lock.try_acquire()
    try:
        child = subprocess.Popen([sys.executable, "-m", "vrmbg.core",
                                  *render_args(pattern, output, model, "--frames", "1005",
                                               cache=cache)],
                                 stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                 env=clean_env())
        seen = []
        for line in child.stderr:
            seen.append(line)
            if "waiting for another render's lock" in line:
                break
        assert any("waiting for another render's lock" in line for line in seen), seen
    finally:
        lock.release()
    child.communicate(timeout=120)
    assert child.returncode == EXIT_OK


# --------------------------------------------------------------------------- pre-roll

def test_a_preroll_reaching_the_shot_start_is_exact(tmp_path, model, capsys):
    pattern = make_plates(str(tmp_path / "plates"), FRAMES)
    output = str(tmp_path / "out" / "sh010.####.exr")
    summary = run_json(render_args(pattern, output, model, "--frames", "1003-1005",
                                   "--preroll", "4"), capsys)
    assert summary["exact"] is True and summary["frames_computed"] == 5
    assert {read_matte_stamp(frame_file(output, f))["exact"] for f in (1003, 1004, 1005)} == {1}
    straight = str(tmp_path / "straight" / "sh010.####.exr")
    run_json(render_args(pattern, straight, model, cache=str(tmp_path / "c2")), capsys)
    assert_same_mattes(straight, output, [1003, 1004, 1005])


def test_a_preroll_needs_only_the_plate_frames_it_reads(tmp_path, model, capsys):
    pattern = make_plates(str(tmp_path / "plates"), FRAMES)
    os.remove(frame_file(pattern, 1002))  # a hole long before the chunk
    output = str(tmp_path / "out" / "sh010.####.exr")
    code, _, err = run_cli(render_args(pattern, output, model, "--frames", "1007-1008"),
                           capsys)
    assert code != EXIT_OK and "1002" in one_error_line(err)
    summary = run_json(render_args(pattern, output, model, "--frames", "1007-1008",
                                   "--preroll", "2"), capsys)
    assert summary["exact"] is False and summary["frames_computed"] == 4  # 1005-1008


# --------------------------------------------------------------------------- plates on twos

def test_plates_on_twos_chain_over_the_frames_present_when_asked(tmp_path, model, capsys):
    twos = make_plates(str(tmp_path / "twos"), range(1001, 1012, 2))  # 1001, 1003 ... 1011
    output = str(tmp_path / "out" / "sh010.####.exr")
    code, _, err = run_cli(render_args(twos, output, model), capsys)
    assert code != EXIT_OK and "--chain-over-gaps" in one_error_line(err)

    summary = run_json(render_args(twos, output, model, "--chain-over-gaps"), capsys)
    assert summary["frames_computed"] == 6
    assert any("chaining over missing plate frames" in w for w in summary["warnings"])
    assert "previous" not in read_matte_stamp(frame_file(output, 1001))
    assert read_matte_stamp(frame_file(output, 1003))["previous"] == 1001
    # the same pictures numbered one after the other give the same mattes
    (tmp_path / "ones").mkdir()
    ones = str(tmp_path / "ones" / "sh010.####.exr")
    for index, frame in enumerate(range(1001, 1012, 2)):
        shutil.copy(frame_file(twos, frame), frame_file(ones, 1001 + index))
    straight = str(tmp_path / "straight" / "sh010.####.exr")
    run_json(render_args(ones, straight, model), capsys)
    from render_helpers import read_frames
    got, want = read_frames(output, range(1001, 1012, 2)), read_frames(straight, range(1001, 1007))
    for index, frame in enumerate(range(1001, 1012, 2)):
        assert got[frame].tobytes() == want[1001 + index].tobytes(), frame


# --------------------------------------------------------------------------- one copy on disk

def test_an_alpha_output_and_its_cache_matte_are_one_file_on_disk(tmp_path, model, capsys):
    pattern = make_plates(str(tmp_path / "plates"), FRAMES[:3])
    output = str(tmp_path / "out" / "sh010.####.exr")
    summary = run_json(render_args(pattern, output, model), capsys)
    cached = os.path.join(summary["cache_folder"], "matte", "sh010.1002.exr")
    assert os.path.samefile(frame_file(output, 1002), cached)
    os.remove(frame_file(output, 1002))  # the cache keeps its frame
    again = run_json(render_args(pattern, output, model), capsys)
    assert again["frames_from_cache"] == 1 and again["frames_computed"] == 0
    piz = str(tmp_path / "piz" / "sh010.####.exr")
    run_json(render_args(pattern, piz, model, "--compression", "piz",
                         "--cache-dir", os.path.dirname(os.path.dirname(
                             os.path.dirname(summary["cache_folder"])))), capsys)
    assert not os.path.samefile(frame_file(piz, 1002), cached)  # other bytes: its own file


def _count_calls(monkeypatch, module, name: str) -> list:
    """Record the first argument of every call of `module.name` (still calling it)."""
    calls: list = []
    real = getattr(module, name)

    def spy(first, *args, **kwargs):
        calls.append(first)
        return real(first, *args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_a_computed_alpha_frame_is_encoded_once_and_never_read_back(tmp_path, model, capsys,
                                                                    monkeypatch):
    from vrmbg.core.io import mattes

    pattern = make_plates(str(tmp_path / "plates"), FRAMES[:4])
    output = str(tmp_path / "out" / "sh010.####.exr")
    encodes = _count_calls(monkeypatch, mattes, "_write_exr")
    reads = _count_calls(monkeypatch, mattes, "read_matte")
    summary = run_json(render_args(pattern, output, model), capsys)
    assert summary["frames_computed"] == 4
    assert len(encodes) == 4, encodes  # one EXR per frame: the output, also the cache's
    assert reads == []
    for frame in FRAMES[:4]:
        cached = os.path.join(summary["cache_folder"], "matte", f"sh010.{frame}.exr")
        assert os.path.samefile(frame_file(output, frame), cached)
        assert read_matte_stamp(cached)["tier"] == "final"


def test_rgba_outputs_written_as_computed_equal_those_copied_from_the_cache(tmp_path, model,
                                                                           capsys):
    from vrmbg.core.io.mattes import read_matte

    pattern = make_plates(str(tmp_path / "plates"), FRAMES[:3])
    cache = str(tmp_path / "cache")
    fresh = str(tmp_path / "fresh" / "sh010.####.exr")
    first = run_json(render_args(pattern, fresh, model, "--output-type", "rgba",
                                 cache=cache), capsys)
    assert first["frames_computed"] == 3
    copied = str(tmp_path / "copied" / "sh010.####.exr")
    again = run_json(render_args(pattern, copied, model, "--output-type", "rgba",
                                 cache=cache), capsys)
    assert again["frames_computed"] == 0 and again["frames_from_cache"] == 3
    for frame in FRAMES[:3]:
        cached = os.path.join(first["cache_folder"], "matte", f"sh010.{frame}.exr")
        assert not os.path.samefile(frame_file(fresh, frame), cached)  # RGBA: its own file
        got, want = exr_pixels(frame_file(fresh, frame)), exr_pixels(frame_file(copied, frame))
        assert got[0] == want[0] == ("R", "G", "B", "A")
        assert got[1].tobytes() == want[1].tobytes(), frame
        assert read_matte(cached).tobytes() == read_matte(frame_file(fresh, frame)).tobytes()
        stamp, other = read_matte_stamp(frame_file(fresh, frame)), read_matte_stamp(
            frame_file(copied, frame))
        assert stamp == other, frame


def test_an_output_that_cannot_be_linked_leaves_the_cache_its_own_matte(tmp_path, model,
                                                                       capsys, monkeypatch):
    """Where hard links cannot be made (SMB, another disk), the cache still gets its matte."""
    def no_links(*args, **kwargs):
        raise OSError("links are not supported here")

    pattern = make_plates(str(tmp_path / "plates"), FRAMES[:3])
    output = str(tmp_path / "out" / "sh010.####.exr")
    monkeypatch.setattr(os, "link", no_links)
    summary = run_json(render_args(pattern, output, model), capsys)
    assert summary["frames_computed"] == 3
    for frame in FRAMES[:3]:
        cached = os.path.join(summary["cache_folder"], "matte", f"sh010.{frame}.exr")
        assert not os.path.samefile(frame_file(output, frame), cached)
        assert exr_pixels(cached)[1].tobytes() == exr_pixels(frame_file(output, frame))[1].tobytes()
    os.remove(frame_file(output, FRAMES[1]))
    again = run_json(render_args(pattern, output, model), capsys)
    assert again["frames_computed"] == 0 and again["frames_from_cache"] == 1


def test_a_failed_output_write_is_reported_and_the_others_are_counted(tmp_path, model, capsys,
                                                                      monkeypatch):
    """An output that cannot be written fails the render with exit 5, naming it; the summary
    still counts every computed frame and lists the outputs that were written."""
    from vrmbg.core.errors import OutputError
    from vrmbg.core.render.output_writer import MatteWriter

    real = MatteWriter._write

    def refuse_one(self, frame, *args, **kwargs):
        if frame == FRAMES[2]:
            raise OutputError("disk quota exceeded", path=self.path(frame))
        return real(self, frame, *args, **kwargs)

    monkeypatch.setattr(MatteWriter, "_write", refuse_one)
    pattern = make_plates(str(tmp_path / "plates"), FRAMES[:5])
    output = str(tmp_path / "out" / "sh010.####.exr")
    code, out, err = run_cli(render_args(pattern, output, model, "--output-type", "rgba",
                                         "--json"), capsys)
    assert code == EXIT_OUTPUT, err
    assert "disk quota exceeded" in err and f"sh010.{FRAMES[2]}.exr" in err
    summary = json.loads(out)
    assert summary["frames_computed"] == 5
    written = [f for f in FRAMES[:5] if f != FRAMES[2]]
    assert frames_on_disk(str(tmp_path / "out")) == written
    assert summary["frames_written"] == f"{FRAMES[0]}-{FRAMES[1]},{FRAMES[3]}-{FRAMES[4]}"
