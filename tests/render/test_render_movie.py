"""`vrmbg render` with movies: a ProRes plate in (frames numbered from 1001, explicit colour
space) and a ProRes 4444 matte movie out.

Movies are written and decoded here with PyAV directly, independently of core/movie.py.
"""

from __future__ import annotations

import os

import av
import numpy as np

from movie_plates import COUNT, H, W, source_rgb, write_prores_422
from plate_factory import write_exr
from render_helpers import (assert_same_mattes, debris, frame_file, frames_on_disk, read_frames,
                            render_args, run_json)

REC709_VIDEO = "Rec.1886 Rec.709 - Display"
# ProRes 4444 alpha (10-12 bits) plus the encoder's rounding: a couple of 10-bit code
# values; neighbouring frames of the moving-disc shot differ by far more (~0.1).
ALPHA_TOL = 2.0 / 1023.0


def decode_rgb(path: str) -> list[np.ndarray]:
    """Every frame as float32 RGB code values 0..1 (16-bit decode)."""
    with av.open(path) as container:
        return [np.ascontiguousarray(f.to_ndarray(format="rgb48le").astype(np.float32)
                                     * np.float32(1.0 / 65535.0))
                for f in container.decode(video=0)]


def test_movie_plate_renders_numbered_from_1001(tmp_path, model, capsys):
    movie = write_prores_422(str(tmp_path / "sh040.mov"))
    frames = list(range(1001, 1001 + COUNT))
    output = str(tmp_path / "M" / "sh040.####.exr")
    summary = run_json(render_args(movie, output, model, "--input-colorspace", REC709_VIDEO,
                                   cache=str(tmp_path / "c")), capsys)
    assert summary["frames_requested"] == COUNT
    assert summary["frames_computed"] == COUNT
    assert frames_on_disk(str(tmp_path / "M"), prefix="sh040.") == frames

    # The same pixels as an EXR sequence 1001-1008 with the same colour space give the same
    # mattes: movie frame i is plate frame 1001 + i, in order.
    exr_folder = tmp_path / "exr"
    exr_folder.mkdir()
    exr_pattern = str(exr_folder / "sh040.####.exr")
    for index, rgb in enumerate(decode_rgb(movie)):
        write_exr(frame_file(exr_pattern, 1001 + index), rgb, pixel_type="float")
    expected = str(tmp_path / "E" / "sh040.####.exr")
    run_json(render_args(exr_pattern, expected, model, "--input-colorspace", REC709_VIDEO,
                         cache=str(tmp_path / "c2")), capsys)
    assert read_frames(output, [1001])[1001].shape == (H, W)
    assert_same_mattes(expected, output, frames)

    # A later chunk of the movie (decoder seeks) matches the straight run bit for bit.
    chunk = str(tmp_path / "K" / "sh040.####.exr")
    run_json(render_args(movie, chunk, model, "--input-colorspace", REC709_VIDEO,
                         "--frames", "1005-1007", cache=str(tmp_path / "c3")), capsys)
    assert frames_on_disk(str(tmp_path / "K"), prefix="sh040.") == [1005, 1006, 1007]
    assert_same_mattes(output, chunk, [1005, 1006, 1007])


def test_movie_start_renumbers_movie_frames(tmp_path, model, capsys):
    movie = write_prores_422(str(tmp_path / "sh050.mov"), count=3)
    output = str(tmp_path / "M" / "sh050.####.exr")
    run_json(render_args(movie, output, model, "--input-colorspace", REC709_VIDEO,
                         "--movie-start", "86400", "--frames", "86401-86402",
                         cache=str(tmp_path / "c")), capsys)
    assert frames_on_disk(str(tmp_path / "M"), prefix="sh050.") == [86401, 86402]


def test_matte_movie_out_is_prores_4444_with_the_matte_in_alpha(tmp_path, model, capsys):
    frames = list(range(1001, 1011))
    (tmp_path / "plates").mkdir()
    plates = str(tmp_path / "plates" / "sh010.####.exr")
    for index, frame in enumerate(frames):  # a moving disc: frames differ clearly
        write_exr(frame_file(plates, frame), source_rgb(index))
    cache = str(tmp_path / "c")
    movie = str(tmp_path / "out" / "sh010_matte.mov")
    summary = run_json(render_args(plates, movie, model, cache=cache), capsys)
    assert summary["frames_computed"] == len(frames)
    assert os.path.isfile(movie)
    assert debris(str(tmp_path / "out")) == []

    # EXR mattes of the same run, answered from its cache
    exrs = str(tmp_path / "exr" / "sh010.####.exr")
    again = run_json(render_args(plates, exrs, model, cache=cache), capsys)
    assert again["frames_computed"] == 0
    mattes = read_frames(exrs, frames)

    with av.open(movie) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "prores"
        assert "a" in stream.codec_context.format.name.split("p")[0], (  # yuva444p...
            stream.codec_context.format.name)
        assert (stream.codec_context.width, stream.codec_context.height) == (W, H)
        decoded = [f.to_ndarray(format="rgba64le").astype(np.float32) / 65535.0
                   for f in container.decode(video=0)]
    assert len(decoded) == len(frames)
    for frame, rgba in zip(frames, decoded):
        alpha = rgba[..., 3]
        error = float(np.abs(alpha - mattes[frame]).max())
        assert error <= ALPHA_TOL, f"frame {frame}: alpha off by {error}"


def test_movie_output_does_not_replace_a_foreign_file_without_overwrite(tmp_path, model, capsys):
    """`-o` pointing at an existing movie vrmbg did not write (the edit, another shot's movie)
    is an output conflict (exit 5) unless --overwrite is given."""
    from render_helpers import run_cli
    from vrmbg.core.errors import EXIT_OUTPUT

    plates = str(tmp_path / "sh010.####.exr")
    for index, frame in enumerate((1001, 1002)):
        write_exr(frame_file(plates, frame), source_rgb(index))
    edit = write_prores_422(str(tmp_path / "edit.mov"), count=2)
    with open(edit, "rb") as handle:
        before = handle.read()
    args = render_args(plates, edit, model, cache=str(tmp_path / "c"))
    code, _, err = run_cli(args, capsys)
    assert code == EXIT_OUTPUT, f"exit {code}: {err}"
    with open(edit, "rb") as handle:
        assert handle.read() == before
    assert run_json(args + ["--overwrite"], capsys)["frames_requested"] == 2
    with av.open(edit) as container:
        assert container.streams.video[0].codec_context.format.name.startswith("yuva")


def test_matte_movie_keeps_the_plate_rate_and_timecode_and_a_rerun_succeeds(tmp_path, model,
                                                                         capsys):
    """A 25 fps plate (the standard EXR `framesPerSecond`) with timecode: the matte movie of
    a shot starting later (`--shot-start`) plays at 25 fps from that frame's own timecode,
    and the same render run again (a farm retry) rewrites it instead of failing. (A movie
    holds a whole shot: `--frames 1003-1005` of a movie is refused, issue 25 case 4.)"""
    from plate_factory import TIMECODE_01

    plates = str(tmp_path / "plates" / "sh060.####.exr")
    (tmp_path / "plates").mkdir()
    for index, frame in enumerate(range(1001, 1007)):
        packed = TIMECODE_01[0] + index  # 01:00:00:00 + index frames (BCD, index < 10)
        write_exr(frame_file(plates, frame), source_rgb(index),
                  attributes={"framesPerSecond": ("rational", (25, 1)),
                              "smpte:TimeCode": ("timecode", (packed, 0))})
    movie = str(tmp_path / "out" / "sh060_matte.mov")
    args = render_args(plates, movie, model, "--shot-start", "1003",
                       cache=str(tmp_path / "c"))
    run_json(args, capsys)
    again = run_json(args, capsys)
    assert again["frames_requested"] == 4 and again["frames_computed"] == 0
    with av.open(movie) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 25
        assert stream.metadata.get("timecode") == "01:00:00:02"
        assert len(list(container.decode(video=0))) == 4
