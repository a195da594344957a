"""`vrmbg render` end to end with the tiny random model on small EXR plates.

What a farm and an artist rely on: chunks and re-runs give the mattes of one straight run bit
for bit, the `--json` summary and the progress lines parse, SIGTERM keeps finished frames and
resumes exactly, exit codes are distinct and leave nothing half-written, RGBA output is the
premultiplied plate, mattes keep the plate's frame numbers and windows, and `--preroll` chunks
are labelled approximate unless the cache lets them be exact.

The reference for every comparison is one straight render of the whole shot.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import OpenImageIO as oiio
import pytest

from plate_factory import ramp_rgb, write_exr
from render_helpers import (FIRST, SIZE, all_files, assert_same_mattes, clean_env, debris,
                            exr_pixels, exr_spec, frame_file, frames_on_disk, make_other_plates, make_plates, one_error_line, read_frames,
                            render_args, run_cli, run_json, run_process)
from vrmbg.core.cli import main
from vrmbg.core.errors import (EXIT_CANCELLED, EXIT_INPUT, EXIT_MODEL, EXIT_OK, EXIT_OUTPUT,
                               EXIT_USAGE)

FRAMES = list(range(FIRST, FIRST + 10))  # 1001-1010
DEADLINE = re.compile(r"Progress: (\d+)%")
OPENJD = re.compile(r"openjd_progress: (\d+)")
SUMMARY_KEYS = ("frames_requested", "frames_computed", "frames_from_cache",
                "frames_skipped_existing", "seconds_per_computed_frame", "device", "precision",
                "model_fingerprint", "chain_id")


@pytest.fixture(scope="module")
def plates(tmp_path_factory) -> str:
    return make_plates(str(tmp_path_factory.mktemp("plates")), FRAMES)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, model, plates) -> dict:
    """One straight render of 1001-1010 (output A and its cache); used read-only."""
    root = tmp_path_factory.mktemp("reference")
    output = str(root / "A" / "sh010.####.exr")
    cache = str(root / "cacheA")
    code = main(render_args(plates, output, model, "--json", "--progress", "quiet",
                             cache=cache))
    assert code == 0
    return {"output": output, "cache": cache, "folder": str(root / "A")}


def _sha(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _copy_outputs(src_folder: str, dst_folder: str) -> None:
    """The reference's output frames copied into a new output folder (no cache)."""
    os.makedirs(dst_folder, exist_ok=True)
    for name in os.listdir(src_folder):
        if name.endswith(".exr"):
            shutil.copy2(os.path.join(src_folder, name), os.path.join(dst_folder, name))


# --------------------------------------------------------------------------- chunks, resume

def test_chunks_in_reverse_order_match_a_single_run(tmp_path, model, plates, reference, capsys):
    output = str(tmp_path / "B" / "sh010.####.exr")
    cache = str(tmp_path / "cacheB")

    late = run_json(render_args(plates, output, model, "--frames", "1006-1010", cache=cache),
                    capsys)
    assert late["frames_requested"] == 5
    assert late["frames_computed"] == 10  # 1001-1005 computed into the cache as lead-in
    assert frames_on_disk(str(tmp_path / "B")) == FRAMES[5:]  # lead-in not written out

    early = run_json(render_args(plates, output, model, "--frames", "1001-1005", cache=cache),
                     capsys)
    assert early["frames_requested"] == 5
    assert early["frames_computed"] == 0
    assert early["frames_from_cache"] == 5
    assert frames_on_disk(str(tmp_path / "B")) == FRAMES

    assert_same_mattes(reference["output"], output, FRAMES)


def test_rerun_skips_finished_frames_and_no_resume_recomputes_the_same(tmp_path, model, plates,
                                                                       reference, capsys):
    folder = tmp_path / "R"
    output = str(folder / "sh010.####.exr")
    cache = str(tmp_path / "cacheR")
    args = render_args(plates, output, model, cache=cache)

    first = run_json(args, capsys)
    assert (first["frames_computed"], first["frames_skipped_existing"]) == (10, 0)
    stamps = {f: os.stat(frame_file(output, f)).st_mtime_ns for f in FRAMES}

    again = run_json(args, capsys)
    assert again["frames_computed"] == 0
    assert again["frames_skipped_existing"] == 10
    assert again["frames_requested"] == 10
    assert {f: os.stat(frame_file(output, f)).st_mtime_ns for f in FRAMES} == stamps

    for frame in (1004, 1007):  # an artist deleted two output frames
        os.remove(frame_file(output, frame))
    patched = run_json(args, capsys)
    assert patched["frames_skipped_existing"] == 8
    assert patched["frames_computed"] == 0
    assert patched["frames_from_cache"] == 2
    assert_same_mattes(reference["output"], output, FRAMES)

    fresh = run_json(args + ["--no-resume"], capsys)
    assert fresh["frames_computed"] == 10
    assert fresh["frames_skipped_existing"] == 0
    assert_same_mattes(reference["output"], output, FRAMES)


def test_rerun_with_a_fresh_cache_skips_valid_outputs(tmp_path, model, plates, reference,
                                                     capsys):
    """Finished output frames carry their chain key: a re-queued job on a machine with its own
    (empty) cache must not recompute the whole shot to rewrite identical frames."""
    folder = tmp_path / "F"
    _copy_outputs(reference["folder"], str(folder))
    output = str(folder / "sh010.####.exr")
    summary = run_json(render_args(plates, output, model, cache=str(tmp_path / "fresh")),
                       capsys)
    assert summary["frames_skipped_existing"] == 10, summary
    assert summary["frames_computed"] == 0, summary


# --------------------------------------------------------------------------- summary, progress

def test_json_summary_is_the_only_thing_on_stdout(tmp_path, model, plates):
    output = str(tmp_path / "J" / "sh010.####.exr")
    result = run_process(render_args(plates, output, model, "--frames", "1001-1004", "--json",
                                     "--precision", "auto", cache=str(tmp_path / "cacheJ")))
    assert result.returncode == EXIT_OK, result.stderr
    summary = json.loads(result.stdout)  # the whole of stdout is one JSON object
    assert isinstance(summary, dict)
    assert result.stdout.strip().count("\n") == 0
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    assert not missing, f"summary lacks {missing}"
    assert summary["frames_requested"] == 4
    assert summary["frames_computed"] == 4
    assert summary["frames_from_cache"] == 0
    assert summary["frames_skipped_existing"] == 0
    assert summary["seconds_per_computed_frame"] > 0
    assert summary["device"] == "cpu"
    assert summary["precision"] == "bfloat16"  # what --precision auto means on the CPU

    from vrmbg.core.model.loader import load_model
    assert summary["model_fingerprint"] == load_model(model, device="cpu").fingerprint
    chains = {exr_spec(frame_file(output, f)).getattribute("vrmbg:chain")
              for f in range(1001, 1005)}
    assert chains == {summary["chain_id"]}
    # with --json the farm progress lines go to stderr, still parseable
    assert DEADLINE.findall(result.stderr)[-1] == "100"


def test_threads_sets_the_cpu_threads_and_mattes_agree_within_rounding(tmp_path, model, plates,
                                                                        reference):
    output = str(tmp_path / "T" / "sh010.####.exr")
    result = run_process(render_args(plates, output, model, "--frames", "1001-1004", "--json",
                                     "--threads", "1", cache=str(tmp_path / "cacheT")))
    assert result.returncode == EXIT_OK, result.stderr
    summary = json.loads(result.stdout)
    assert summary["cpu_threads"] == 1 and summary["frames_computed"] == 4
    # another thread count rounds differently (README), and never by more than that
    want, got = read_frames(reference["output"], FRAMES[:4]), read_frames(output, FRAMES[:4])
    assert max(float(np.abs(want[f] - got[f]).max()) for f in want) < 0.01
    result = run_process(render_args(plates, str(tmp_path / "U" / "sh010.####.exr"), model,
                                     "--frames", "1001", "--json",
                                     cache=str(tmp_path / "cacheU")))
    fresh = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                           capture_output=True, text=True, env=clean_env(), check=True)
    assert json.loads(result.stdout)["cpu_threads"] == int(fresh.stdout)  # torch's own default


def test_more_threads_than_cores_is_said_and_clamped(tmp_path, model, plates):
    from vrmbg.core.cpu import usable_cores

    wanted = usable_cores() + 62
    result = run_process(render_args(plates, str(tmp_path / "V" / "sh010.####.exr"), model,
                                     "--frames", "1001", "--json", "--threads", str(wanted),
                                     cache=str(tmp_path / "cacheV")))
    assert result.returncode == EXIT_OK, result.stderr
    summary = json.loads(result.stdout)
    assert summary["cpu_threads"] == usable_cores()
    assert any(f"--threads {wanted}" in w for w in summary["warnings"])
    assert f"--threads {wanted}" in result.stderr


def _percentages(pattern: re.Pattern, text: str) -> list[int]:
    return [int(value) for value in pattern.findall(text)]


def test_progress_lines_parse_for_deadline_and_openjd(tmp_path, model, plates, capsys):
    output = str(tmp_path / "P" / "sh010.####.exr")
    # a late chunk on a fresh cache: the lead-in frames are part of the progress
    code, out, err = run_cli(render_args(plates, output, model, "--frames", "1006-1010",
                                         cache=str(tmp_path / "cacheP")), capsys)
    assert code == EXIT_OK, err
    deadline, openjd = _percentages(DEADLINE, out), _percentages(OPENJD, out)
    assert deadline and openjd
    assert deadline == openjd
    assert all(0 <= p <= 100 for p in deadline)
    assert deadline == sorted(deadline), deadline  # never goes down
    assert deadline[-1] == 100
    assert len(deadline) >= 5  # at least one line per requested frame
    statuses = [line for line in out.splitlines() if line.startswith("openjd_status: ")]
    for frame in range(1006, 1011):
        assert any(str(frame) in line for line in statuses), (frame, statuses)
    # 100 is claimed only once the last frame is done
    first_full = next(i for i, p in enumerate(deadline) if p == 100)
    assert all("1010" in line or "frames" in line for line in statuses[first_full:]), statuses


# --------------------------------------------------------------------------- SIGTERM

def test_sigterm_keeps_finished_frames_and_resume_is_exact(tmp_path, model, capsys):
    frames = list(range(FIRST, FIRST + 6))
    plates = make_plates(str(tmp_path / "plates"), frames)
    # About 0.7 s per frame on a CPU at this model resolution: the signal, sent a moment after
    # a progress line, lands while the next frame is being computed.
    slow = ["--resolution", "1536"]
    out_folder = tmp_path / "S"
    output = str(out_folder / "sh010.####.exr")
    cache = str(tmp_path / "cacheS")
    command = [sys.executable, "-m", "vrmbg.core",
               *render_args(plates, output, model, *slow, "--progress", "plain", cache=cache)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=clean_env())
    try:
        reported = 0  # frames reported finished before the signal
        while reported < 2:
            line = child.stdout.readline()
            assert line, "render ended before two frames were reported: " + child.stderr.read()
            if DEADLINE.search(line):
                reported += 1
        time.sleep(0.15)  # well inside the next frame's computation
        child.send_signal(signal.SIGTERM)
        rest, err = child.communicate(timeout=90)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == EXIT_CANCELLED, err
    assert "Traceback" not in err, err

    written = frames_on_disk(str(out_folder))
    assert len(written) >= reported + 1, (
        f"{reported} frame(s) were reported before SIGTERM, so the frame in flight must be "
        f"finished and kept too; on disk: {written}")
    assert len(written) < len(frames), "SIGTERM came too late to test anything"
    assert written == frames[:len(written)], written
    for frame, alpha in read_frames(output, written).items():
        assert alpha.shape == (SIZE[1], SIZE[0]) and np.isfinite(alpha).all(), frame
    assert debris(str(out_folder)) == []
    assert debris(cache) == []

    resumed = run_json(render_args(plates, output, model, *slow, cache=cache), capsys)
    assert resumed["frames_skipped_existing"] == len(written)
    assert resumed["frames_computed"] <= len(frames) - len(written)
    assert frames_on_disk(str(out_folder)) == frames
    straight = str(tmp_path / "U" / "sh010.####.exr")
    assert main(render_args(plates, straight, model, *slow, "--progress", "quiet",
                             cache=str(tmp_path / "cacheU"))) == EXIT_OK
    assert_same_mattes(straight, output, frames)


# --------------------------------------------------------------------------- exit codes

def test_bad_frame_spec_is_a_usage_error(tmp_path, model, plates, capsys):
    out_folder = tmp_path / "out"
    code, _, err = run_cli(render_args(plates, str(out_folder / "m.####.exr"), model,
                                       "--frames", "1001-10x5y", cache=str(tmp_path / "c")),
                           capsys)
    assert code == EXIT_USAGE
    assert "1001-10x5y" in one_error_line(err)
    assert not out_folder.exists() and not (tmp_path / "c").exists()


def test_missing_plate_frame_in_the_middle_is_an_input_error(tmp_path, model):
    pattern = make_plates(str(tmp_path / "plates"), range(1001, 1007))
    os.remove(frame_file(pattern, 1004))
    out_folder = tmp_path / "out"
    result = run_process(render_args(pattern, str(out_folder / "m.####.exr"), model,
                                     cache=str(tmp_path / "c")))
    assert result.returncode == EXIT_INPUT, result.stderr
    line = one_error_line(result.stderr)
    assert "sh010.1004.exr" in line and "1004" in line.replace("sh010.1004.exr", ""), line
    assert all_files(str(tmp_path / "out")) == [] and all_files(str(tmp_path / "c")) == []


def test_zero_byte_plate_frame_is_an_input_error(tmp_path, model):
    pattern = make_plates(str(tmp_path / "plates"), range(1001, 1007))
    open(frame_file(pattern, 1004), "wb").close()
    out_folder = tmp_path / "out"
    cache = str(tmp_path / "c")
    result = run_process(render_args(pattern, str(out_folder / "m.####.exr"), model,
                                     cache=cache))
    assert result.returncode == EXIT_INPUT, result.stderr
    line = one_error_line(result.stderr)
    assert "sh010.1004.exr" in line and "1004" in line.replace("sh010.1004.exr", ""), line
    written = frames_on_disk(str(out_folder), prefix="m.")
    assert 1004 not in written and all(f < 1004 for f in written), written
    read_frames(str(out_folder / "m.####.exr"), written)  # what is there is complete
    assert debris(str(out_folder)) == [] and debris(cache) == []


@pytest.mark.parametrize("kind", ["missing-folder", "pickle-bin"])
def test_unusable_model_is_a_model_error(tmp_path, plates, kind, capsys):
    if kind == "missing-folder":
        model = str(tmp_path / "no-such-model")
    else:
        model = str(tmp_path / "pytorch_model.bin")
        with open(model, "wb") as handle:
            handle.write(b"\x80\x02}q\x00.")  # a tiny pickle: must never be loaded
    out_folder = tmp_path / "out"
    code, _, err = run_cli(render_args(plates, str(out_folder / "m.####.exr"), model,
                                       cache=str(tmp_path / "c")), capsys)
    assert code == EXIT_MODEL, err
    assert model in one_error_line(err) or os.path.basename(model) in err
    assert all_files(str(out_folder)) == [] and not (tmp_path / "c").exists()


def test_model_error_leaves_no_new_output_folder(tmp_path, plates, capsys):
    out_folder = tmp_path / "shots" / "sh010" / "mattes"
    code, _, err = run_cli(render_args(plates, str(out_folder / "m.####.exr"),
                                       str(tmp_path / "no-such-model"),
                                       cache=str(tmp_path / "c")), capsys)
    assert code == EXIT_MODEL, err
    assert not (tmp_path / "shots").exists(), "the output folder was created before failing"


def test_output_of_other_settings_is_kept_unless_overwrite(tmp_path, model, plates, reference,
                                                          capsys):
    folder = tmp_path / "O"
    _copy_outputs(reference["folder"], str(folder))
    output = str(folder / "sh010.####.exr")
    before = {f: _sha(frame_file(output, f)) for f in FRAMES}
    cache = str(tmp_path / "cacheO")
    other = render_args(plates, output, model, "--resolution", "128", cache=cache)

    code, out, err = run_cli(other, capsys)
    assert code == EXIT_OUTPUT, err
    assert "overwrite" in one_error_line(err)
    assert {f: _sha(frame_file(output, f)) for f in FRAMES} == before
    assert debris(str(folder)) == []

    summary = run_json(other + ["--overwrite"], capsys)
    assert summary["frames_computed"] == 10
    assert {exr_spec(frame_file(output, f)).getattribute("vrmbg:chain") for f in FRAMES} == {
        summary["chain_id"]}
    assert summary["chain_id"] != exr_spec(frame_file(reference["output"], FIRST)).getattribute(
        "vrmbg:chain")


def test_output_of_another_shot_is_kept_unless_overwrite(tmp_path, model, reference, capsys):
    """Same settings, other plates (another shot rendered into the same output by mistake)."""
    folder = tmp_path / "O2"
    _copy_outputs(reference["folder"], str(folder))
    output = str(folder / "sh010.####.exr")
    before = {f: _sha(frame_file(output, f)) for f in FRAMES}
    other_plates = make_other_plates(str(tmp_path / "plates2"), FRAMES)
    code, _, err = run_cli(render_args(other_plates, output, model, "--frames", "1001-1003",
                                       cache=str(tmp_path / "cacheO2")), capsys)
    assert code == EXIT_OUTPUT, err
    assert {f: _sha(frame_file(output, f)) for f in FRAMES} == before


# --------------------------------------------------------------------------- output content

def _plate_rgb(pattern: str, frame: int) -> np.ndarray:
    image = oiio.ImageInput.open(frame_file(pattern, frame))
    try:
        return np.asarray(image.read_image(oiio.FLOAT), dtype=np.float32)[..., :3]
    finally:
        image.close()


def test_rgba_output_is_the_plate_premultiplied(tmp_path, model, plates, reference, capsys):
    output = str(tmp_path / "RGBA" / "sh010.####.exr")
    summary = run_json(render_args(plates, output, model, "--output-type", "rgba",
                                   "--frames", "1001-1003", cache=reference["cache"]), capsys)
    assert summary["frames_computed"] == 0  # same chain as the alpha render
    alphas = read_frames(reference["output"], range(1001, 1004))
    for frame in range(1001, 1004):
        channels, pixels = exr_pixels(frame_file(output, frame))
        assert channels == ("R", "G", "B", "A")
        assert exr_spec(frame_file(output, frame)).format == oiio.HALF
        alpha = pixels[..., 3]
        assert alpha.tobytes() == alphas[frame].tobytes()
        expected = _plate_rgb(plates, frame) * alpha[..., None]
        np.testing.assert_allclose(pixels[..., :3], expected, rtol=2 ** -10, atol=1e-6)


def test_switching_to_rgba_rewrites_alpha_only_outputs(tmp_path, model, plates, reference,
                                                       capsys):
    """An alpha-only frame is not a finished RGBA frame: it must not be skipped as done."""
    folder = tmp_path / "SW"
    _copy_outputs(reference["folder"], str(folder))
    output = str(folder / "sh010.####.exr")
    code, _, err = run_cli(render_args(plates, output, model, "--output-type", "rgba",
                                       "--frames", "1001-1002", cache=reference["cache"]),
                           capsys)
    assert code == EXIT_OK, err
    alphas = read_frames(reference["output"], (1001, 1002))
    for frame in (1001, 1002):
        channels, pixels = exr_pixels(frame_file(output, frame))
        assert channels == ("R", "G", "B", "A"), f"frame {frame} still {channels}"
        assert exr_spec(frame_file(output, frame)).format == oiio.HALF
        alpha = pixels[..., 3]
        assert alpha.tobytes() == alphas[frame].tobytes(), frame
        expected = _plate_rgb(plates, frame) * alpha[..., None]
        np.testing.assert_allclose(pixels[..., :3], expected, rtol=2 ** -10, atol=1e-6)
    for frame in FRAMES[2:]:  # frames outside --frames are left as they were
        assert exr_pixels(frame_file(output, frame))[0] == ("A",), frame


def test_mattes_keep_frame_numbers_windows_and_exact_label(tmp_path, model, capsys):
    """A shot starting at frame 95 with overscan: names, display window, data window kept."""
    display = (0, 0) + SIZE
    overscan = (-8, -4, SIZE[0] + 16, SIZE[1] + 8)
    folder = tmp_path / "plates"
    folder.mkdir()
    pattern = str(folder / "sh030.####.exr")
    frames = [95, 96, 97, 98]
    for frame in frames:
        pixels = ramp_rgb(overscan[3], overscan[2], frame)
        write_exr(frame_file(pattern, frame), pixels, data_window=overscan,
                  display_window=display,
                  attributes={"FramesPerSecond": ("rational", (24, 1))})
    out_folder = tmp_path / "M"
    output = str(out_folder / "sh030_matte.####.exr")
    summary = run_json(render_args(pattern, output, model, cache=str(tmp_path / "c")), capsys)
    assert summary["frames_requested"] == 4
    assert sorted(os.listdir(out_folder)) == [f"sh030_matte.{f:04d}.exr" for f in frames]
    for frame in frames:
        spec = exr_spec(frame_file(output, frame))
        assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == display
        assert spec.getattribute("vrmbg:exact") == 1
        assert spec.getattribute("vrmbg:chain") == summary["chain_id"]
        assert read_frames(output, [frame])[frame].shape == (SIZE[1], SIZE[0])


def test_reference_mattes_carry_plate_display_window_and_exact(reference, plates):
    plate = exr_spec(frame_file(plates, FIRST))
    for frame in FRAMES:
        spec = exr_spec(frame_file(reference["output"], frame))
        assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (
            plate.full_x, plate.full_y, plate.full_width, plate.full_height)
        assert spec.getattribute("vrmbg:exact") == 1
        assert tuple(spec.channelnames) == ("A",)
    assert frames_on_disk(reference["folder"]) == FRAMES


# --------------------------------------------------------------------------- preroll

def test_preroll_chunk_on_a_fresh_cache_is_labelled_approximate(tmp_path, model, plates,
                                                                capsys):
    output = str(tmp_path / "PR" / "sh010.####.exr")
    code, out, err = run_cli(render_args(plates, output, model, "--frames", "1006-1010",
                                         "--preroll", "2", "--json",
                                         cache=str(tmp_path / "c")), capsys)
    assert code == EXIT_OK, err
    summary = json.loads(out)
    assert summary["frames_computed"] == 7  # 1004-1010: two frames of pre-roll, not 1001-
    assert "approximate" in err.lower()
    assert frames_on_disk(str(tmp_path / "PR")) == FRAMES[5:]
    for frame in FRAMES[5:]:
        assert exr_spec(frame_file(output, frame)).getattribute("vrmbg:exact") == 0


def test_preroll_chunk_is_exact_when_the_cache_holds_the_previous_frame(tmp_path, model, plates,
                                                                       reference, capsys):
    output = str(tmp_path / "PX" / "sh010.####.exr")
    cache = str(tmp_path / "c")
    run_json(render_args(plates, output, model, "--frames", "1001-1005", cache=cache), capsys)
    code, out, err = run_cli(render_args(plates, output, model, "--frames", "1006-1010",
                                         "--preroll", "2", "--json", cache=cache), capsys)
    assert code == EXIT_OK, err
    assert json.loads(out)["frames_computed"] == 5
    assert "approximate" not in err.lower()
    for frame in FRAMES[5:]:
        assert exr_spec(frame_file(output, frame)).getattribute("vrmbg:exact") == 1
    assert_same_mattes(reference["output"], output, FRAMES)
