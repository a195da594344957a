"""Matte EXRs: channels, compression, windows, metadata carried from the plate, atomic writes."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import OpenImageIO as oiio
import pytest
from plate_factory import TIMECODE_01, ramp_rgb, write_dpx, write_exr

from vrmbg.core.io import exr_writer
from vrmbg.core.io import mattes as mattes_module
from vrmbg.core.fs import atomic_write
from vrmbg.core.errors import InputError, OutputError, UsageError
from vrmbg.core.io.mattes import COMPRESSIONS, read_matte, write_matte
from vrmbg.core.io.plates import PlateSequence

CHROMATICITIES = (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767)


def header(path) -> oiio.ImageSpec:
    image = oiio.ImageInput.open(str(path))
    assert image is not None, oiio.geterror()
    spec = image.spec()
    image.close()
    return spec


def raw_pixels(path) -> np.ndarray:
    image = oiio.ImageInput.open(str(path))
    pixels = image.read_image(oiio.HALF)
    image.close()
    return pixels


def half_alpha(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Alpha values exactly representable in half, so round trips can be bit-exact."""
    alpha = np.random.default_rng(seed).random((height, width), dtype=np.float32)
    return alpha.astype(np.float16).astype(np.float32)


@pytest.fixture
def plate_info(tmp_path):
    attributes = {
        "smpte:TimeCode": ("timecode", TIMECODE_01),
        "FramesPerSecond": ("rational", (24000, 1001)),
        "chromaticities": ("float[8]", CHROMATICITIES),
        "studio:shot": ("string", "sh010"),
        "studio:take": ("int", 3),
        "studio:focus": ("float", 2.5),
        "worldToCamera": ("matrix", tuple(float(i) for i in range(16))),
        "oiio:ColorSpace": ("string", "ACEScg"),
    }
    path = write_exr(tmp_path / "plate.1001.exr", ramp_rgb(10, 16), compression="piz",
                     attributes=attributes)
    return PlateSequence(path).info(1001)


def test_alpha_round_trip_is_bit_exact(tmp_path):
    alpha = half_alpha(20, 30)
    path = tmp_path / "m.exr"
    write_matte(str(path), alpha)
    spec = header(path)
    assert spec.channelnames == ("A",)
    assert str(spec.format) == "half"
    assert spec.get_string_attribute("compression") == "zip"
    back = read_matte(str(path))
    assert back.dtype == np.float32 and back.shape == (20, 30)
    assert np.array_equal(back.view(np.uint32), alpha.view(np.uint32))


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression(tmp_path, compression):
    alpha = half_alpha(24, 40)
    path = tmp_path / "m.exr"
    write_matte(str(path), alpha, compression=compression)
    assert header(path).get_string_attribute("compression") == compression
    tolerance = 0.05 if compression.startswith("dwa") else 0.0
    np.testing.assert_allclose(read_matte(str(path)), alpha, atol=tolerance, rtol=0)


def test_unknown_compression_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="b44"):
        write_matte(str(tmp_path / "m.exr"), half_alpha(4, 4), compression="b44")
    assert os.listdir(tmp_path) == []


def test_rgba_is_premultiplied(tmp_path):
    alpha = half_alpha(8, 12)
    rgb = ramp_rgb(8, 12) * 3.0
    path = tmp_path / "rgba.exr"
    write_matte(str(path), alpha, rgb=rgb)
    assert header(path).channelnames == ("R", "G", "B", "A")
    pixels = raw_pixels(path).astype(np.float32)
    np.testing.assert_array_equal(pixels[..., 3], alpha)
    expected = (rgb * alpha[..., None]).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(pixels[..., :3], expected)
    assert np.array_equal(read_matte(str(path)), alpha)


def test_plate_metadata_survives_onto_the_matte(tmp_path, plate_info):
    path = tmp_path / "m.1001.exr"
    write_matte(str(path), half_alpha(10, 16), like=plate_info,
                attributes={"frame": 1001, "model": "demo", "threshold": 0.5})
    spec = header(path)
    assert spec.getattribute("smpte:TimeCode") == TIMECODE_01
    assert spec.getattribute("FramesPerSecond") == (24000, 1001)
    assert spec.getattribute("studio:shot") == "sh010"
    assert spec.getattribute("studio:take") == 3
    assert spec.getattribute("studio:focus") == 2.5
    assert spec.getattribute("worldToCamera") == tuple(float(i) for i in range(16))
    assert spec.getattribute("vrmbg:frame") == 1001
    assert spec.getattribute("vrmbg:model") == "demo"
    assert spec.getattribute("vrmbg:threshold") == 0.5
    # What described the source file, not the matte, is not carried over.
    assert spec.get_string_attribute("compression") == "zip"  # the plate was PIZ
    assert spec.getattribute("oiio:ColorSpace") is None
    assert spec.getattribute("colorInteropID") is None
    assert spec.getattribute("chromaticities") is None  # an alpha matte is data


def test_rgba_matte_keeps_chromaticities(tmp_path, plate_info):
    path = tmp_path / "rgba.exr"
    write_matte(str(path), half_alpha(10, 16), like=plate_info, rgb=ramp_rgb(10, 16))
    np.testing.assert_allclose(header(path).getattribute("chromaticities"), CHROMATICITIES,
                               rtol=1e-6)


def test_dpx_plate_timecode_and_rate_reach_the_matte(tmp_path):
    dpx = write_dpx(tmp_path / "s.dpx", np.full((6, 8, 3), 0.5, np.float32),
                    attributes={"smpte:TimeCode": ("timecode", TIMECODE_01),
                                "dpx:FrameRate": ("float", 25.0)})
    info = PlateSequence(dpx).info(1)
    path = tmp_path / "m.exr"
    write_matte(str(path), half_alpha(6, 8), like=info)
    spec = header(path)
    assert spec.getattribute("smpte:TimeCode") == TIMECODE_01
    assert spec.getattribute("framesPerSecond") == (25, 1)
    assert not [p.name for p in spec.extra_attribs if p.name.startswith("dpx:")]


def test_display_and_cropped_data_window_are_kept(tmp_path):
    plate = write_exr(tmp_path / "p.exr", ramp_rgb(4, 6) + 1, data_window=(13, 22, 6, 4),
                      display_window=(10, 20, 12, 8))
    info = PlateSequence(plate).info(1)
    alpha = half_alpha(8, 12)
    path = tmp_path / "m.exr"
    write_matte(str(path), alpha, like=info)
    spec = header(path)
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (10, 20, 12, 8)
    assert (spec.x, spec.y, spec.width, spec.height) == (13, 22, 6, 4)
    back = read_matte(str(path))
    assert np.array_equal(back[2:6, 3:9], alpha[2:6, 3:9])
    outside = np.ones(alpha.shape, bool)
    outside[2:6, 3:9] = False
    assert np.all(back[outside] == 0)


def test_overscan_plate_gives_a_display_window_matte(tmp_path):
    plate = write_exr(tmp_path / "p.exr", ramp_rgb(12, 16), data_window=(-2, -2, 16, 12),
                      display_window=(0, 0, 12, 8))
    info = PlateSequence(plate).info(1)
    alpha = half_alpha(8, 12)
    path = tmp_path / "m.exr"
    write_matte(str(path), alpha, like=info)
    spec = header(path)
    assert (spec.x, spec.y, spec.width, spec.height) == (0, 0, 12, 8)
    assert np.array_equal(read_matte(str(path)), alpha)


def test_size_mismatch_names_the_path(tmp_path, plate_info):
    path = str(tmp_path / "m.exr")
    with pytest.raises(OutputError) as caught:
        write_matte(path, half_alpha(5, 5), like=plate_info)
    assert path in str(caught.value)
    assert not os.path.exists(path)


def test_unwritable_destination_names_the_path(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_bytes(b"x")
    path = str(blocker / "m.exr")
    with pytest.raises(OutputError) as caught:
        write_matte(path, half_alpha(4, 4))
    assert path in str(caught.value)
    assert os.listdir(tmp_path) == ["not_a_folder"]


def test_missing_folders_are_created(tmp_path):
    path = tmp_path / "a" / "b" / "m.exr"
    write_matte(str(path), half_alpha(4, 4))
    assert path.exists()


def test_non_exr_name_is_refused(tmp_path):
    with pytest.raises(OutputError, match="EXR"):
        write_matte(str(tmp_path / "m.png"), half_alpha(4, 4))


def test_read_matte_of_a_missing_file(tmp_path):
    path = str(tmp_path / "gone.exr")
    with pytest.raises(InputError) as caught:
        read_matte(path)
    assert path in str(caught.value)


def test_read_matte_without_alpha(tmp_path):
    path = write_exr(tmp_path / "rgb.exr", ramp_rgb(4, 4))
    with pytest.raises(InputError, match="alpha"):
        read_matte(path)


# --- atomic writes -----------------------------------------------------------------------------

def test_atomic_write_uses_a_temp_file_with_the_same_extension(tmp_path):
    seen = []
    target = tmp_path / "m.exr"

    def write(tmp):
        seen.append(tmp)
        assert not target.exists()  # nothing visible under the final name while writing
        with open(tmp, "wb") as handle:
            handle.write(b"new")

    atomic_write(str(target), write)
    assert target.read_bytes() == b"new"
    assert os.path.dirname(seen[0]) == str(tmp_path) and seen[0].endswith(".exr")
    assert os.listdir(tmp_path) == ["m.exr"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt(), OSError(28, "full")])
def test_atomic_write_failure_leaves_no_temp_and_keeps_the_old_file(tmp_path, error):
    target = tmp_path / "m.exr"
    target.write_bytes(b"old")

    def write(tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"partial")
        raise error

    expected = OutputError if isinstance(error, OSError) else type(error)
    with pytest.raises(expected):
        atomic_write(str(target), write)
    assert os.listdir(tmp_path) == ["m.exr"]
    assert target.read_bytes() == b"old"


def test_writer_that_writes_nothing(tmp_path):
    with pytest.raises(OutputError):
        atomic_write(str(tmp_path / "m.exr"), lambda tmp: None)
    assert os.listdir(tmp_path) == []


def test_write_matte_interrupted_leaves_nothing(tmp_path, monkeypatch):
    from vrmbg.core.io import mattes

    def interrupted(tmp, spec, pixels, path):
        with open(tmp, "wb") as handle:
            handle.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(mattes, "_write_exr", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_matte(str(tmp_path / "m.exr"), half_alpha(4, 4))
    assert os.listdir(tmp_path) == []


# ------------------------------------------------- written by OpenEXR, headed as OpenImageIO

def attributes_read(path) -> list:
    """What a host reading the matte through OpenImageIO sees, but the time of writing."""
    spec = header(path)
    return sorted((a.name, str(a.type), repr(a.value)) for a in spec.extra_attribs
                  if a.name != "DateTime") + [("windows", "", repr(
                      (spec.x, spec.y, spec.width, spec.height, spec.full_x, spec.full_y,
                       spec.full_width, spec.full_height, tuple(spec.channelnames))))]


@pytest.mark.parametrize("rgba", [False, True], ids=["alpha", "rgba"])
def test_openexr_written_matte_reads_as_the_openimageio_written_one(tmp_path, plate_info,
                                                                     monkeypatch, rgba):
    calls = []
    real = mattes_module.write_exr

    def written_by_openexr(*args):
        real(*args)
        calls.append(args[0])  # only once the OpenEXR write has succeeded

    monkeypatch.setattr(mattes_module, "write_exr", written_by_openexr)
    plate = write_exr(tmp_path / "p.1001.exr", ramp_rgb(7, 12), data_window=(3, 2, 12, 7),
                      display_window=(0, 0, 16, 10),
                      attributes={"smpte:TimeCode": ("timecode", TIMECODE_01),
                                  "FramesPerSecond": ("rational", (25, 1)),
                                  "chromaticities": ("float[8]", CHROMATICITIES),
                                  "studio:lens": ("string", "50mm"), "studio:take": ("int", 7),
                                  "worldToNDC": ("matrix", tuple(float(i) for i in range(16)))})
    info = PlateSequence(plate).info(1001)
    alpha, rgb = half_alpha(10, 16), (ramp_rgb(10, 16) if rgba else None)
    kwargs = dict(like=info, rgb=rgb, attributes={"frame": 1001, "chain": "ab12", "gain": 0.5})
    write_matte(str(tmp_path / "ours.exr"), alpha, **kwargs)
    assert calls, "the OpenEXR library wrote the matte"
    monkeypatch.setattr(mattes_module, "exr_header_for", lambda spec: None)
    write_matte(str(tmp_path / "theirs.exr"), alpha, **kwargs)
    assert len(calls) == 1
    assert attributes_read(tmp_path / "ours.exr") == attributes_read(tmp_path / "theirs.exr")
    assert np.array_equal(raw_pixels(tmp_path / "ours.exr"), raw_pixels(tmp_path / "theirs.exr"))
    assert header(tmp_path / "ours.exr").getattribute("smpte:TimeCode") == TIMECODE_01


def test_a_header_openexr_cannot_reproduce_is_written_by_openimageio(tmp_path, monkeypatch):
    monkeypatch.setattr(exr_writer, "_same_on_reading", lambda spec, header: False)
    calls = []
    monkeypatch.setattr(mattes_module, "write_exr", lambda *args: calls.append(args))
    path = tmp_path / "m.exr"
    write_matte(str(path), half_alpha(4, 6), attributes={"only_in_this_test": "x"})
    assert calls == []
    assert header(path).getattribute("vrmbg:only_in_this_test") == "x"
    assert np.array_equal(read_matte(str(path)), half_alpha(4, 6))


def test_header_templates_leave_nothing_in_the_temp_folder(tmp_path, monkeypatch):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    write_matte(str(tmp_path / "a.exr"), half_alpha(4, 6), attributes={"leak_check": 1})
    real = exr_writer._write_with_oiio
    calls = []

    def second_template_fails(path, spec):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("temp folder full")
        real(path, spec)

    monkeypatch.setattr(exr_writer, "_write_with_oiio", second_template_fails)
    write_matte(str(tmp_path / "b.exr"), half_alpha(4, 6), attributes={"leak_check_2": 1})
    assert len(calls) >= 2
    assert list(temp.iterdir()) == []
    assert np.array_equal(read_matte(str(tmp_path / "b.exr")), half_alpha(4, 6))
    monkeypatch.setattr(exr_writer, "_write_with_oiio", real)
    ok = []
    real_write = mattes_module.write_exr
    monkeypatch.setattr(mattes_module, "write_exr",
                        lambda *args: ok.append(args) or real_write(*args))
    write_matte(str(tmp_path / "c.exr"), half_alpha(4, 6), attributes={"leak_check_2": 1})
    assert ok, "a passing failure of the temp folder does not stop the OpenEXR writes"
