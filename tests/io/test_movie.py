"""Movie plates and movie output through PyAV: numbering, random access, ProRes round trips."""

from __future__ import annotations

import os

import av
import numpy as np
import OpenImageIO as oiio
import PyOpenColorIO as OCIO
import pytest
from plate_factory import VIDEO_709, write_video

from vrmbg.core.colour.transform import ColourTransform
from vrmbg.core.errors import InputError, OutputError, UsageError
from vrmbg.core.io.movie import MOVIE_DEFAULT_COLORSPACE, MovieSequence, read_movie_frames
from vrmbg.core.io.movie_writer import write_movie
from vrmbg.core.io.plates import open_plates

W, H, COUNT = 64, 48, 40
CODEC_TOL = 0.006  # 10-bit limited-range YUV through ProRes: a few code values


def source_frame(i: int) -> np.ndarray:
    """Frame i of the synthetic shot: RGBA ramps, blue and alpha encode the frame index."""
    rgba = np.zeros((H, W, 4), np.float32)
    rgba[..., 0] = np.linspace(0.05, 0.95, W, dtype=np.float32)[None, :]
    rgba[..., 1] = np.linspace(0.9, 0.1, H, dtype=np.float32)[:, None]
    rgba[..., 2] = 0.1 + 0.8 * i / (COUNT - 1)
    rgba[..., 3] = 1.0 - 0.5 * i / (COUNT - 1)
    return rgba


def write_prores_4444(path, count: int = COUNT, timecode: str = "") -> str:
    """A ProRes 4444 .mov written with PyAV directly (independent of write_movie)."""
    frames = (np.round(source_frame(i) * 65535).astype(np.uint16) for i in range(count))
    return write_video(path, frames, codec="prores_ks", pix_fmt="yuva444p10le",
                       frame_format="rgba64le", options={"profile": "4444"},
                       reformat=VIDEO_709, timecode=timecode)


def write_h264(path, count: int = COUNT) -> str:
    """A long-GOP 8-bit H.264 .mp4 with B-frames (key frame every 10 frames)."""
    frames = (np.round(source_frame(i)[..., :3] * 255).astype(np.uint8) for i in range(count))
    return write_video(path, frames, codec="libx264", pix_fmt="yuv420p", frame_format="rgb24",
                       rate=25, options={"g": "10", "bf": "2", "crf": "10",
                                         "preset": "ultrafast"})


@pytest.fixture(scope="module")
def prores(tmp_path_factory):
    return write_prores_4444(tmp_path_factory.mktemp("movie") / "plate.mov",
                             timecode="01:00:00:00")


# ---------------------------------------------------------------- reading

def test_frames_are_numbered_from_1001_and_hold_the_plate(prores):
    movie = MovieSequence(prores)
    assert movie.frames == list(range(1001, 1001 + COUNT))
    assert movie.first_frame == 1001
    plate = movie.read(1001)
    assert plate.frame == 1001 and plate.path == prores
    assert plate.rgb.shape == (H, W, 3) and plate.rgb.dtype == np.float32
    assert plate.rgb.flags["C_CONTIGUOUS"]
    for frame in (1001, 1011, 1040):
        rgb = movie.read(frame).rgb
        np.testing.assert_allclose(rgb, source_frame(frame - 1001)[..., :3], atol=CODEC_TOL)
    info = movie.info(1001)
    assert (info.width, info.height) == (W, H)
    assert info.display_window == info.data_window == (0, 0, W, H)
    assert info.channels == ("R", "G", "B")
    assert info.metadata["framesPerSecond"] == (24, 1)


def test_custom_start_and_out_of_range_frames(prores):
    movie = MovieSequence(prores, start=1)
    assert movie.frames[0] == 1 and movie.frames[-1] == COUNT
    with pytest.raises(InputError) as info:
        movie.read(COUNT + 1)
    assert info.value.frame == COUNT + 1 and info.value.path == prores
    with pytest.raises(InputError):
        movie.read(0)


@pytest.mark.parametrize("kind", ["prores.mov", "h264.mp4", "h264.mkv"])
def test_random_access_gives_the_same_pixels_as_sequential(kind, prores, tmp_path):
    path = prores if kind == "prores.mov" else write_h264(tmp_path / f"plate.{kind}")
    assert MovieSequence(path).frames == list(range(1001, 1001 + COUNT))
    sequential = [p.rgb for p in map(MovieSequence(path).read, range(1001, 1001 + COUNT))]
    for i in range(1, COUNT):  # each frame is its own picture, in order
        assert not np.array_equal(sequential[i], sequential[i - 1])
    movie = MovieSequence(path)
    # far jumps forward (seek), backward jumps, short hops (decode forward), repeats
    for frame in (1035, 1004, 1040, 1001, 1022, 1023, 1023, 1012, 1039, 1002):
        assert np.array_equal(movie.read(frame).rgb, sequential[frame - 1001]), frame


def test_reads_from_two_threads_match_sequential(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = write_h264(tmp_path / "plate.mp4")
    sequential = [MovieSequence(path).read(f).rgb for f in range(1001, 1001 + COUNT)]
    movie = MovieSequence(path)
    with ThreadPoolExecutor(2) as pool:  # how the engine's reader threads use plates
        plates = list(pool.map(movie.read, range(1001, 1001 + COUNT)))
    for plate, expected in zip(plates, sequential):
        assert np.array_equal(plate.rgb, expected), plate.frame
    # two readers may ask for neighbours swapped (1002 before 1001): no seek back for that
    movie = MovieSequence(path)
    seeks = []
    original = movie._seek
    movie._seek = lambda index: (seeks.append(index), original(index))[1]
    swapped = [f + d for f in range(1001, 1001 + COUNT, 2) for d in (1, 0)]
    for frame in swapped:
        assert np.array_equal(movie.read(frame).rgb, sequential[frame - 1001]), frame
    assert seeks == []


def test_fingerprint_changes_with_frame_and_file(tmp_path):
    path = write_prores_4444(tmp_path / "a.mov", count=3)
    movie = MovieSequence(path)
    assert movie.fingerprint(1001) == movie.fingerprint(1001)
    assert movie.fingerprint(1001) != movie.fingerprint(1002)
    content = movie.fingerprint(1002, content=True)
    assert content != movie.fingerprint(1001, content=True)
    before = movie.fingerprint(1001)
    movie.close()
    write_prores_4444(tmp_path / "a.mov", count=4)
    os.utime(path, ns=(1, 1))
    assert MovieSequence(path).fingerprint(1001) != before


def test_bad_movies_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        MovieSequence(str(tmp_path / "missing.mov"))
    fake = tmp_path / "fake.mov"
    fake.write_bytes(b"not a movie at all" * 10)
    with pytest.raises(InputError) as info:
        MovieSequence(str(fake))
    assert info.value.path == str(fake)


def test_timecode_follows_the_frame_onto_mattes(prores, tmp_path):
    from vrmbg.core.io.mattes import write_matte

    movie = MovieSequence(prores)
    info = movie.info(1003)
    out = str(tmp_path / "matte.1003.exr")
    write_matte(out, np.ones((H, W), np.float32), like=info)
    spec = oiio.ImageInput.open(out).spec()
    values = {p.name: p for p in spec.extra_attribs}
    assert spec.metadata_val(values["smpte:TimeCode"], True) == "01:00:00:02"
    assert tuple(values["framesPerSecond"].value) == (24, 1)


def test_open_plates_picks_movies_and_image_sequences(prores, tmp_path):
    assert isinstance(open_plates(prores, movie_start=2001), MovieSequence)
    assert open_plates(prores, movie_start=2001).first_frame == 2001
    with pytest.raises(UsageError):
        open_plates(prores, layer="beauty")
    exr = tmp_path / "shot.1001.exr"
    out = oiio.ImageOutput.create(str(exr))
    out.open(str(exr), oiio.ImageSpec(8, 4, 3, oiio.HALF))
    out.write_image(np.full((4, 8, 3), 0.25, np.float16))
    out.close()
    plates = open_plates(str(tmp_path / "shot.####.exr"))
    assert not isinstance(plates, MovieSequence)
    assert plates.frames == [1001]
    assert plates.read(1001).rgb.shape == (4, 8, 3)


# ---------------------------------------------------------------- colour of movies

def test_movie_default_colourspace_is_rec709_video_in_builtin_configs():
    for uri in ("ocio://studio-config-latest", "ocio://cg-config-latest"):
        assert OCIO.Config.CreateFromFile(uri).getColorSpace(MOVIE_DEFAULT_COLORSPACE)
    code = np.full((1, 1, 3), 0.5, np.float32)
    out = ColourTransform(input_space=MOVIE_DEFAULT_COLORSPACE).to_model(code)
    linear = 0.5 ** 2.4  # BT.1886 display light
    srgb = 1.055 * linear ** (1 / 2.4) - 0.055
    np.testing.assert_allclose(out[0, 0], srgb, atol=2e-4)


# ---------------------------------------------------------------- writing

def mattes(count: int = 6) -> list[np.ndarray]:
    ramp = np.linspace(0.0, 1.0, W, dtype=np.float32)[None, :].repeat(H, axis=0)
    return [np.clip(ramp * (0.4 + 0.1 * i), 0.0, 1.0) for i in range(count)]


def test_write_matte_movie_is_prores_4444_with_alpha(tmp_path):
    path = str(tmp_path / "matte.mov")
    alphas = mattes()
    write_movie(path, alphas, fps=24, kind="matte")
    with av.open(path) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "prores"
        assert stream.codec_context.profile == "4444"
        assert stream.average_rate == 24
        assert "a" in stream.codec_context.pix_fmt.split("p")[0]  # yuva444p...: has alpha
    frames = read_movie_frames(path, alpha=True)
    assert len(frames) == len(alphas)
    for got, alpha in zip(frames, alphas):
        np.testing.assert_allclose(got[..., 3], alpha, atol=CODEC_TOL)
        for channel in range(3):  # the matte is also grey RGB
            np.testing.assert_allclose(got[..., channel], alpha, atol=CODEC_TOL)
    assert os.listdir(tmp_path) == ["matte.mov"]  # no temp left behind


def test_write_composite_movie_is_premultiplied_prores_422_hq(tmp_path):
    path = str(tmp_path / "comp.mov")
    rgba = [source_frame(i) for i in (0, 20, 39)]
    write_movie(path, rgba, fps="23.976", kind="composite")
    with av.open(path) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.profile == "HQ"
        assert stream.codec_context.pix_fmt.startswith("yuv422p10")
        assert stream.average_rate.numerator == 24000 and stream.average_rate.denominator == 1001
    for got, src in zip(read_movie_frames(path), rgba):
        premultiplied = src[..., :3] * src[..., 3:4]
        # 4:2:2 halves chroma horizontally; these ramps are smooth, so the tolerance stays small
        np.testing.assert_allclose(got, premultiplied, atol=0.02)


def test_write_movie_is_atomic_on_error(tmp_path):
    path = tmp_path / "matte.mov"
    path.write_bytes(b"previous good movie")

    def frames():
        yield mattes(1)[0]
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError):
        write_movie(str(path), frames(), fps=24, kind="matte")
    assert path.read_bytes() == b"previous good movie"
    assert os.listdir(tmp_path) == ["matte.mov"]
    with pytest.raises(OutputError, match="no frames"):
        write_movie(str(tmp_path / "empty.mov"), [], fps=24, kind="matte")
    with pytest.raises(OutputError):
        write_movie(str(tmp_path / "sizes.mov"), [np.zeros((4, 4)), np.zeros((8, 8))],
                    fps=24, kind="matte")
    assert os.listdir(tmp_path) == ["matte.mov"]


def test_write_movie_rejects_bad_requests(tmp_path):
    with pytest.raises(UsageError):
        write_movie(str(tmp_path / "m.mp4"), mattes(1), fps=24, kind="matte")
    with pytest.raises(UsageError):
        write_movie(str(tmp_path / "m.mov"), mattes(1), fps=24, kind="beauty")
    with pytest.raises(UsageError):
        write_movie(str(tmp_path / "m.mov"), mattes(1), fps=0, kind="matte")
