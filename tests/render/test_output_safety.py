"""What a render may do to its output folder (issue 25, "trust"): never a wrong matte in
silence, never a byte touched that is not ours.

- An output frame is never a plate file, whatever the spelling of `-o` or the flags, and an
  output never lies inside a cache folder (case 1).
- A matte counts as written only when the file is whole, and a re-run never skips an output
  that is not whole (case 2).
- Temp files a killed process left in the output folder are swept when a render starts; only
  the exact names vrmbg makes, and never one a live writer may still be filling (case 3).
- A movie is rendered for the whole shot or not at all (case 4).
- A shot's output folder never holds mattes of two chains after an exit 0 (case 13).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import namedtuple

import av
import numpy as np
import pytest

from render_helpers import (FIRST, clean_env, frame_file, frames_on_disk, make_plates,
                            mounted_tmpfs,
                            one_error_line, render_args, run_cli, run_json, run_process)
from vrmbg.core import fs
from vrmbg.core.errors import EXIT_OK, EXIT_OUTPUT, EXIT_RETRY, EXIT_USAGE, OutputError
from vrmbg.core.io import mattes
from vrmbg.core.io.exr_whole import is_whole
from vrmbg.core.io.mattes import read_matte_stamp
from vrmbg.core.render.output_plan import OTHER_SETTINGS, ShotOutputs, plan_outputs
from vrmbg.plugin.frame_ranges import parse_frame_ranges

FRAMES = list(range(FIRST, FIRST + 4))  # 1001-1004
Usage = namedtuple("Usage", "total used free")


def _sha(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _hashes(folder) -> dict[str, str]:
    """name -> content hash of every file in `folder`."""
    return {name: _sha(os.path.join(folder, name)) for name in sorted(os.listdir(folder))}


def _usage_with_free(free: int):
    return lambda _folder: Usage(1 << 40, (1 << 40) - free, free)


def _spec_frames(spec: str) -> set[int]:
    """The frames of a summary's frame spec ("1001-1002,1004")."""
    return set(parse_frame_ranges(spec, empty_ok=True))


# =========================================================================== case 1: plates

SPELLINGS = ("plate.####.exr", "plate.%04d.exr", "plate.@@@@.exr", "plate.$F4.exr",
             "plate.#.exr")


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_an_output_that_names_the_plates_is_refused_whatever_the_flags(tmp_path, model,
                                                                       capsys, spelling):
    plates = make_plates(str(tmp_path / "p"), FRAMES, name="plate.####.exr")
    os.symlink(tmp_path / "p", tmp_path / "link")
    before = _hashes(tmp_path / "p")
    for folder in ("p", "link"):
        for flags in ((), ("--overwrite",)):
            output = str(tmp_path / folder / spelling)
            code, _, err = run_cli(render_args(plates, output, model, *flags,
                                               cache=str(tmp_path / "c")), capsys)
            assert code == EXIT_OUTPUT, (output, flags, err)
            line = one_error_line(err)
            assert "plate.1001.exr" in line and "plates" in line, line
    assert _hashes(tmp_path / "p") == before
    assert not (tmp_path / "c").exists()


def test_an_output_frame_linked_to_a_plate_is_refused(tmp_path, model, capsys):
    plates = make_plates(str(tmp_path / "p"), FRAMES, name="plate.####.exr")
    (tmp_path / "out").mkdir()
    os.link(frame_file(plates, 1003), tmp_path / "out" / "m.1003.exr")  # same file, two names
    before = _hashes(tmp_path / "p")
    code, _, err = run_cli(render_args(plates, str(tmp_path / "out" / "m.####.exr"), model,
                                       "--overwrite", cache=str(tmp_path / "c")), capsys)
    assert code == EXIT_OUTPUT, err
    assert "m.1003.exr" in one_error_line(err)
    assert _hashes(tmp_path / "p") == before
    assert os.listdir(tmp_path / "out") == ["m.1003.exr"]


def test_a_movie_output_that_is_the_plate_movie_is_refused(tmp_path, model, capsys):
    from movie_plates import write_prores_422

    movie = write_prores_422(str(tmp_path / "edit.mov"), count=2)
    os.symlink(tmp_path, tmp_path / "link")
    before = _sha(movie)
    code, _, err = run_cli(render_args(movie, str(tmp_path / "link" / "edit.mov"), model,
                                       "--overwrite", "--input-colorspace",
                                       "Rec.1886 Rec.709 - Display",
                                       cache=str(tmp_path / "c")), capsys)
    assert code == EXIT_OUTPUT, err
    assert "edit.mov" in one_error_line(err)
    assert _sha(movie) == before


def test_an_output_inside_a_cache_is_refused(tmp_path, model, capsys, monkeypatch):
    plates = make_plates(str(tmp_path / "p"), FRAMES)
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    os.makedirs(tmp_path / "elsewhere")
    os.symlink(cache, tmp_path / "elsewhere" / "into-cache")
    cases = [
        render_args(plates, str(cache / "m.####.exr"), model, cache=str(cache)),
        render_args(plates, str(cache / "sh010" / "m.####.exr"), model, cache=str(cache)),
        render_args(plates, str(tmp_path / "elsewhere" / "into-cache" / "m.####.exr"), model,
                    cache=str(cache)),
        # another render's cache, beside its output
        render_args(plates, str(tmp_path / "out" / ".vrmbg-cache" / "m.####.exr"), model),
        # the user cache, where the hosts' mattes live
        render_args(plates, str(tmp_path / "xdg" / "vrmbg" / "m.####.exr"), model),
    ]
    for args in cases:
        code, _, err = run_cli(args, capsys)
        assert code == EXIT_USAGE, (args, err)
        assert "cache" in one_error_line(err)
    assert not cache.exists() and not (tmp_path / "out").exists()
    assert not (tmp_path / "xdg").exists()


# =========================================================================== case 2: whole

def _truncating(write, cut: float = 0.6):
    """`write(tmp, ...)` that reports success but leaves the file cut to `cut` of its size
    (its header whole), as a writer that ran out of disk can."""
    def wrapped(tmp, *args, **kwargs):
        write(tmp, *args, **kwargs)
        os.truncate(tmp, int(os.path.getsize(tmp) * cut))
    return wrapped


def _noise(height: int = 256, width: int = 256) -> np.ndarray:
    return np.random.default_rng(5).random((height, width), dtype=np.float32)


@pytest.mark.parametrize("writer", ["openexr", "openimageio"])
def test_a_matte_cut_short_by_its_writer_is_a_failed_write(monkeypatch, tmp_path, writer):
    if writer == "openexr":
        monkeypatch.setattr(mattes, "write_exr", _truncating(mattes.write_exr))
    else:  # the fallback writer after a failed OpenEXR write
        monkeypatch.setattr(mattes, "exr_header_for", lambda spec: None)
        monkeypatch.setattr(mattes, "_write_exr_with_oiio",
                            _truncating(mattes._write_exr_with_oiio))
    target = tmp_path / "m.1035.exr"
    monkeypatch.setattr(fs.shutil, "disk_usage", _usage_with_free(50 << 20))
    with pytest.raises(OutputError) as roomy:
        mattes.write_matte(str(target), _noise())
    assert roomy.value.exit_code == EXIT_OUTPUT and "m.1035.exr" in str(roomy.value)
    assert fs.TEMP_MARKER not in str(roomy.value)
    assert os.listdir(tmp_path) == []  # neither the cut file nor its temp file
    monkeypatch.setattr(fs.shutil, "disk_usage", _usage_with_free(0))
    with pytest.raises(OutputError) as full:
        mattes.write_matte(str(target), _noise())
    assert full.value.exit_code == EXIT_RETRY and "no space" in str(full.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", ["alpha", "rgba"])  # written on the engine's threads / queued
def test_a_frame_cut_short_is_not_counted_and_the_rerun_writes_it(tmp_path, model, capsys,
                                                                  monkeypatch, kind):
    plates = make_plates(str(tmp_path / "plates"), FRAMES)
    out = tmp_path / "out"
    output = str(out / "sh010.####.exr")
    cache = str(tmp_path / "cache")

    def cut_1003(write):
        def wrapped(tmp, *args, **kwargs):
            write(tmp, *args, **kwargs)
            if os.path.dirname(tmp) == str(out) and ".sh010.1003." in os.path.basename(tmp):
                os.truncate(tmp, int(os.path.getsize(tmp) * 0.6))
        return wrapped

    monkeypatch.setattr(mattes, "write_exr", cut_1003(mattes.write_exr))
    monkeypatch.setattr(mattes, "_write_exr_with_oiio", cut_1003(mattes._write_exr_with_oiio))
    monkeypatch.setattr(fs.shutil, "disk_usage", _usage_with_free(50 << 20))
    flags = ("--output-type", kind)
    code, stdout, err = run_cli(render_args(plates, output, model, "--json", *flags,
                                            cache=cache), capsys)
    assert code == EXIT_OUTPUT, err
    summary = json.loads(stdout)
    assert 1003 not in _spec_frames(summary["frames_written"]), summary
    assert "sh010.1003.exr" in summary["error"]
    for frame in frames_on_disk(str(out)):
        assert is_whole(frame_file(output, frame)), frame
    assert 1003 not in frames_on_disk(str(out))

    monkeypatch.undo()
    again = run_json(render_args(plates, output, model, *flags, cache=cache), capsys)
    assert 1003 in _spec_frames(again["frames_written"])
    assert frames_on_disk(str(out)) == FRAMES
    assert all(is_whole(frame_file(output, f)) for f in FRAMES)


def _cut_in_place(path: str, cut: float = 0.6) -> None:
    """Leave `path` a new file holding the first `cut` of its bytes (header whole), as a
    full disk left it (a new inode: the cache's hard link to the matte stays whole)."""
    with open(path, "rb") as handle:
        data = handle.read()
    os.remove(path)
    with open(path, "wb") as handle:
        handle.write(data[:int(len(data) * cut)])


def test_a_rerun_writes_again_an_output_that_is_not_whole(tmp_path, model, capsys):
    plates = make_plates(str(tmp_path / "plates"), FRAMES)
    output = str(tmp_path / "out" / "sh010.####.exr")
    cache = str(tmp_path / "cache")
    run_json(render_args(plates, output, model, cache=cache), capsys)
    for frame in (1003, 1004):
        _cut_in_place(frame_file(output, frame))
        assert not is_whole(frame_file(output, frame))
        assert read_matte_stamp(frame_file(output, frame))  # the header still reads

    again = run_json(render_args(plates, output, model, "--frames", "1001-1003",
                                 cache=cache), capsys)
    assert again["frames_skipped_existing"] == 2
    assert again["frames_rewritten"] == "1003"
    assert is_whole(frame_file(output, 1003))
    assert any("1004" in w and "not whole" in w for w in again["warnings"]), again["warnings"]

    last = run_json(render_args(plates, output, model, cache=cache), capsys)
    assert last["frames_rewritten"] == "1004" and last["frames_skipped_existing"] == 3
    assert all(is_whole(frame_file(output, f)) for f in FRAMES)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (skipped only where mounting is refused), unmounted after."""
    with mounted_tmpfs(tmp_path / "disk", "2m") as mount:
        yield mount


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs is Linux")
def test_on_a_full_disk_every_matte_counted_is_whole(tmp_path, small_disk, model, capsys):
    frames = range(FIRST, FIRST + 24)
    plates = make_plates(str(tmp_path / "plates"), frames, size=(512, 256))
    output = str(small_disk / "m.####.exr")
    code, stdout, err = run_cli(render_args(plates, output, model, "--json",
                                            "--compression", "none"), capsys)
    assert code == EXIT_RETRY, err
    written = _spec_frames(json.loads(stdout)["frames_written"])
    on_disk = set(frames_on_disk(str(small_disk), prefix="m."))
    assert written == on_disk and on_disk
    assert all(is_whole(frame_file(output, f)) for f in on_disk)
    assert not [n for n in os.listdir(small_disk) if fs.is_temp_name(n)]
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = run_json(render_args(plates, output, model, "--compression", "none"), capsys)
    assert again["frames_skipped_existing"] == len(on_disk)
    assert all(is_whole(frame_file(output, f)) for f in frames)


# =========================================================================== case 3: temp files

def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _plant(folder, name: str, *, age: float) -> str:
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(b"v/1\x01" + b"\0" * 1000)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_the_sweep_removes_only_leftovers_of_dead_writers(tmp_path):
    dead, old = _dead_pid(), 3600.0
    leftover = _plant(tmp_path, f".m.1001{fs.TEMP_MARKER}{dead}-0123abcd.exr", age=old)
    movie = _plant(tmp_path, f".m{fs.TEMP_MARKER}{dead}-89abcdef.mov", age=old)
    kept = [
        # a writer on another host may be filling it right now
        _plant(tmp_path, f".m.1002{fs.TEMP_MARKER}{dead}-0123abce.exr", age=1.0),
        # a live process of this host (this one: an in-process render beside the sweep)
        _plant(tmp_path, f".m.1003{fs.TEMP_MARKER}{os.getpid()}-0123abcf.exr", age=old),
        # names that merely look like ours
        _plant(tmp_path, "x.vrmbg-tmp-keep.exr", age=old),
        _plant(tmp_path, f".x{fs.TEMP_MARKER}12-nothex00.exr", age=old),
        _plant(tmp_path, f"m.1004{fs.TEMP_MARKER}{dead}-0123abcd.exr", age=old),
    ]
    os.mkdir(tmp_path / f".d{fs.TEMP_MARKER}{dead}-0123abcd.exr")
    target = _plant(tmp_path.parent, "target.exr", age=0)
    os.symlink(target, tmp_path / f".l{fs.TEMP_MARKER}{dead}-0123abcd.exr")

    assert fs.remove_stale_temp_files(str(tmp_path), min_age=60) == 2  # noqa
    assert not os.path.exists(leftover) and not os.path.exists(movie)
    assert all(os.path.exists(path) for path in kept)
    assert os.path.isdir(tmp_path / f".d{fs.TEMP_MARKER}{dead}-0123abcd.exr")
    assert os.path.islink(tmp_path / f".l{fs.TEMP_MARKER}{dead}-0123abcd.exr")
    assert os.path.exists(target)



def test_a_dead_writer_of_this_host_is_swept_at_once_and_another_hosts_only_when_old(tmp_path):
    """A re-run right after a killed render leaves no temp file behind; a writer on another
    host (whose pid means nothing here) keeps its fresh temp file."""
    here, dead = fs.host_tag(), _dead_pid()
    assert os.path.basename(fs.temp_path_for(str(tmp_path / "m.1001.exr"))).startswith(
        f".m.1001{fs.TEMP_MARKER}{here}-{os.getpid()}-")
    just_killed = _plant(tmp_path, f".m.1001{fs.TEMP_MARKER}{here}-{dead}-0123abcd.exr", age=1.0)
    old_elsewhere = _plant(tmp_path, f".m.1002{fs.TEMP_MARKER}h0badf00d-{os.getpid()}-0123abcd.exr",
                           age=3600.0)
    kept = [
        _plant(tmp_path, f".m.1003{fs.TEMP_MARKER}{here}-{os.getpid()}-0123abcd.exr", age=3600.0),
        _plant(tmp_path, f".m.1004{fs.TEMP_MARKER}h0badf00d-{dead}-0123abcd.exr", age=1.0),
    ]
    assert fs.remove_stale_temp_files(str(tmp_path), min_age=60) == 2
    assert not os.path.exists(just_killed) and not os.path.exists(old_elsewhere)
    assert all(os.path.exists(path) for path in kept)

KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from vrmbg.core import fs

    def write(tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"v/1\\x01" + b"\\0" * 60000)
        print(tmp, flush=True)
        time.sleep(120)

    fs.atomic_write(sys.argv[1], write)
""")


def test_temp_files_of_a_killed_writer_are_swept_when_a_render_starts(tmp_path, model,
                                                                       capsys):
    plates = make_plates(str(tmp_path / "plates"), FRAMES)
    out = tmp_path / "out"
    out.mkdir()
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER,
                              str(out / "sh010.1002.exr")],
                             stdout=subprocess.PIPE, text=True, env=clean_env())
    try:
        left = child.stdout.readline().strip()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert left and os.path.exists(left) and fs.is_temp_name(os.path.basename(left))
    old = time.time() - 3600  # a later render: the leftover is an hour old
    os.utime(left, (old, old))
    decoy = _plant(out, "x.vrmbg-tmp-keep.exr", age=3600)

    summary = run_json(render_args(plates, str(out / "sh010.####.exr"), model,
                                   cache=str(tmp_path / "cache")), capsys)
    assert summary["frames_written"] == "1001-1004"
    assert not os.path.exists(left)
    assert os.path.exists(decoy)
    assert sorted(os.listdir(out)) == sorted(
        ["x.vrmbg-tmp-keep.exr"] + [f"sh010.{f}.exr" for f in FRAMES])


# =========================================================================== case 4: movies

def _movie_frames(path: str) -> int:
    with av.open(path) as container:
        return sum(1 for _ in container.decode(video=0))


def test_a_partial_range_never_writes_a_movie(tmp_path, model, capsys):
    plates = make_plates(str(tmp_path / "plates"), range(FIRST, FIRST + 6))
    movie = str(tmp_path / "out" / "sh010.mov")
    cache = str(tmp_path / "cache")
    code, _, err = run_cli(render_args(plates, movie, model, "--frames", "1003-1004",
                                       cache=cache), capsys)
    assert code == EXIT_USAGE, err
    line = one_error_line(err)
    assert "1001-1006" in line and "movie" in line, line
    assert not os.path.exists(movie)

    run_json(render_args(plates, movie, model, cache=cache), capsys)
    assert _movie_frames(movie) == 6
    before = _sha(movie)
    for frames in ("1003-1004", "1001-1005", "1001-1006x2"):
        code, _, err = run_cli(render_args(plates, movie, model, "--frames", frames,
                                           "--overwrite", cache=cache), capsys)
        assert code == EXIT_USAGE, (frames, err)
    assert _sha(movie) == before and _movie_frames(movie) == 6
    again = run_json(render_args(plates, movie, model, "--frames", "1001-1006", cache=cache),
                     capsys)
    assert again["frames_requested"] == 6 and _movie_frames(movie) == 6


# =========================================================================== case 13: chains

SHOT = ShotOutputs(label="sh010.####.exr", plate_id="aaaa", layer="", part="", start=1001,
                   chain_id="c2", identity={"model": "m", "device": "cpu",
                                            "compute": "cpu:threads=2:AVX2"},
                   output_type="alpha", exact=True)
OTHER = json.dumps({"model": "m", "device": "cpu", "compute": "cpu:threads=1:AVX2"},
                   sort_keys=True, separators=(",", ":"))


def _stamp(frame: int, **changes) -> dict:
    return {**SHOT.stamp(), "key": f"k{frame}", "exact": 1, **changes}


def test_the_plan_names_another_chain_beside_the_frames_it_adds():
    from vrmbg.core.render.output_plan import mixing_message

    existing = {f: _stamp(f, chain="c1", identity=OTHER) for f in (1001, 1002)}
    keys = {f: f"k{f}" for f in range(1001, 1005)}
    plan = plan_outputs([1003, 1004], existing, keys, SHOT, {1001: "aaaa"})
    assert [(c.frame, c.kind) for c in plan.mixed] == [(1001, OTHER_SETTINGS),
                                                       (1002, OTHER_SETTINGS)]
    text = mixing_message(plan.mixed, SHOT, plan.todo)
    assert "1001" in text and "cpu:threads=1:AVX2" in text and "cpu:threads=2:AVX2" in text
    assert "--overwrite" in text

    forced = plan_outputs([1003, 1004], existing, keys, SHOT, {1001: "aaaa"}, overwrite=True,
                          shot_frames=range(1001, 1005))
    assert forced.todo == (1001, 1002, 1003, 1004) and forced.replaced == (1001, 1002)
    assert forced.mixed == () and forced.uncovered == ()
    short = plan_outputs([1003, 1004], existing, keys, SHOT, {1001: "aaaa"}, overwrite=True,
                         shot_frames=range(1002, 1005))
    assert [c.frame for c in short.uncovered] == [1001]


def test_a_chunk_of_other_settings_stops_before_writing_beside_another_chain(tmp_path, model,
                                                                           capsys):
    plates = make_plates(str(tmp_path / "plates"), FRAMES)
    out = tmp_path / "out"
    output = str(out / "sh010.####.exr")
    cache = str(tmp_path / "cache")
    first = run_json(render_args(plates, output, model, "--frames", "1001-1002", cache=cache),
                     capsys)
    before = _hashes(out)

    chunk = render_args(plates, output, model, "--frames", "1003-1004", "--content-hash",
                        cache=cache)
    code, _, err = run_cli(chunk, capsys)
    assert code == EXIT_RETRY, err
    line = one_error_line(err)
    assert "sh010.1001.exr" in line and "plate_fingerprint" in line, line
    assert "cpu:threads=" in line, line
    assert _hashes(out) == before  # nothing written beside the other chain

    summary = run_json(chunk + ["--overwrite"], capsys)
    assert summary["frames_rewritten"] == "1001-1002"
    assert summary["frames_written"] == "1001-1004"
    chains = {read_matte_stamp(frame_file(output, f))["chain"] for f in FRAMES}
    assert chains == {summary["chain_id"]} != {first["chain_id"]}


def test_chunks_on_hosts_with_other_core_counts_never_mix(tmp_path, model):
    from vrmbg.core.cpu import usable_cores

    if usable_cores() < 2:
        pytest.skip("needs two cores")
    plates = make_plates(str(tmp_path / "plates"), FRAMES)
    out = tmp_path / "out"
    output = str(out / "sh010.####.exr")
    cache = str(tmp_path / "cache")
    one = run_process(render_args(plates, output, model, "--frames", "1001-1002",
                                  "--threads", "1", cache=cache))
    assert one.returncode == EXIT_OK, one.stderr
    two = run_process(render_args(plates, output, model, "--frames", "1003-1004",
                                  "--threads", "2", cache=cache))
    assert two.returncode == EXIT_RETRY, two.stderr
    line = one_error_line(two.stderr)
    assert "cpu:threads=1:" in line and "cpu:threads=2:" in line, line
    assert frames_on_disk(str(out)) == [1001, 1002]


def test_a_preroll_chunk_beside_exact_frames_of_its_settings_is_no_mix(tmp_path, model,
                                                                      capsys):
    """The exact chain and its --preroll approximations share a folder by design (each frame
    says which it is): only another chain of other settings is refused."""
    plates = make_plates(str(tmp_path / "plates"), range(FIRST, FIRST + 8))
    out = tmp_path / "out"
    output = str(out / "sh010.####.exr")
    run_json(render_args(plates, output, model, "--frames", "1001-1003",
                         cache=str(tmp_path / "c1")), capsys)
    summary = run_json(render_args(plates, output, model, "--frames", "1007-1008",
                                   "--preroll", "2", cache=str(tmp_path / "c2")), capsys)
    assert summary["exact"] is False
    assert frames_on_disk(str(out)) == [1001, 1002, 1003, 1007, 1008]
    code, _, err = run_cli(render_args(plates, output, model, "--frames", "1005-1006",
                                       "--preroll", "2", "--content-hash",
                                       cache=str(tmp_path / "c2")), capsys)
    assert code == EXIT_RETRY, err  # exact frames of other settings beside it: a mix
