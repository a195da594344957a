"""Reading plates: EXR/DPX/PNG/TIFF/JPEG pixels, windows, parts/layers, metadata, bad input."""

from __future__ import annotations

import os
import shutil

import numpy as np
import OpenImageIO as oiio
import pytest
from plate_factory import (TIMECODE_01, Part, frame_path, ramp_rgb, write_dpx,
                           write_dpx_sequence, write_exr, write_exr_sequence, write_parts,
                           write_plain)

from vrmbg.core.errors import InputError
from vrmbg.core.io.plate_info import describe
from vrmbg.core.io.plate_types import ImageInfo, Plate
from vrmbg.core.io.plates import PlateSequence


def as_half(pixels: np.ndarray) -> np.ndarray:
    """What a half EXR stores for float pixels, back as float32."""
    return pixels.astype(np.float16).astype(np.float32)


# --- EXR pixels -----------------------------------------------------------------------------

@pytest.mark.parametrize("tiled", [False, True])
def test_half_zip_round_trip_is_bit_exact(tmp_path, tiled):
    pattern = write_exr_sequence(tmp_path, [1001, 1002], tiled=tiled)
    sequence = PlateSequence(pattern)
    assert sequence.frames == [1001, 1002]
    assert sequence.first_frame == 1001
    plate = sequence.read(1002)
    assert isinstance(plate, Plate)
    assert plate.frame == 1002 and plate.path == frame_path(pattern, 1002)
    assert plate.rgb.dtype == np.float32 and plate.rgb.flags["C_CONTIGUOUS"]
    assert plate.rgb.shape == (32, 48, 3)
    expected = as_half(ramp_rgb(32, 48, 1002))
    assert np.array_equal(plate.rgb.view(np.uint32), expected.view(np.uint32))
    assert not np.array_equal(plate.rgb, as_half(ramp_rgb(32, 48, 1001)))


@pytest.mark.parametrize("compression", ["piz", "zips", "rle", "none", "dwaa"])
def test_other_compressions_read(tmp_path, compression):
    pixels = ramp_rgb(40, 64)
    path = write_exr(tmp_path / "a.exr", pixels, compression=compression)
    rgb = PlateSequence(path).read(1).rgb
    tolerance = 0.02 if compression == "dwaa" else 0.0
    np.testing.assert_allclose(rgb, as_half(pixels), atol=tolerance, rtol=0)


def test_float_exr_keeps_float_values(tmp_path):
    pixels = ramp_rgb(16, 16) + np.float32(1e-7)
    path = write_exr(tmp_path / "f.exr", pixels, pixel_type="float")
    plate = PlateSequence(path).read(1)
    assert np.array_equal(plate.rgb, pixels)
    assert plate.info.pixel_type == "float" and plate.info.bit_depth == 32


def test_nan_inf_negative_values_stay_raw(tmp_path):
    pixels = ramp_rgb(8, 8)
    pixels[0, 0] = [np.nan, np.inf, -np.inf]
    pixels[1, 1] = [-0.5, -2.0, 65504.0]
    path = write_exr(tmp_path / "n.exr", pixels)
    rgb = PlateSequence(path).read(1).rgb
    assert np.isnan(rgb[0, 0, 0]) and rgb[0, 0, 1] == np.inf and rgb[0, 0, 2] == -np.inf
    assert rgb[1, 1].tolist() == [-0.5, -2.0, 65504.0]


def test_channels_are_selected_by_name_not_position(tmp_path):
    # EXR sorts channels alphabetically on disk; values identify which channel is which.
    pixels = np.zeros((4, 6, 4), np.float32)
    for index, value in enumerate([0.25, 0.5, 0.75, 1.0]):
        pixels[..., index] = value
    path = write_exr(tmp_path / "o.exr", pixels, channels=("B", "A", "R", "G"))
    rgb = PlateSequence(path).read(1).rgb
    assert rgb[0, 0].tolist() == [0.75, 1.0, 0.25]


def test_greyscale_y_is_repeated_to_rgb(tmp_path):
    grey = ramp_rgb(8, 10, channels=1)
    path = write_exr(tmp_path / "y.exr", grey, channels=("Y",))
    rgb = PlateSequence(path).read(1).rgb
    for channel in range(3):
        assert np.array_equal(rgb[..., channel], as_half(grey)[..., 0])


# --- data and display windows ----------------------------------------------------------------

@pytest.mark.parametrize("compression", ["zip", "piz"])
def test_overscan_is_cropped_to_the_display_window(tmp_path, compression):
    pixels = ramp_rgb(14, 20)  # data window (-4,-3) 20x14 around a 12x8 display window
    path = write_exr(tmp_path / "over.exr", pixels, data_window=(-4, -3, 20, 14),
                     display_window=(0, 0, 12, 8), compression=compression)
    plate = PlateSequence(path).read(1)
    assert plate.rgb.shape == (8, 12, 3)
    assert np.array_equal(plate.rgb, as_half(pixels)[3:11, 4:16])
    assert plate.info.display_window == (0, 0, 12, 8)
    assert plate.info.data_window == (-4, -3, 20, 14)
    assert (plate.info.width, plate.info.height) == (12, 8)


def test_cropped_data_window_is_padded_with_zeros(tmp_path):
    pixels = ramp_rgb(4, 5) + 1.0
    path = write_exr(tmp_path / "crop.exr", pixels, data_window=(3, 2, 5, 4),
                     display_window=(0, 0, 10, 8))
    rgb = PlateSequence(path).read(1).rgb
    assert rgb.shape == (8, 10, 3)
    assert np.array_equal(rgb[2:6, 3:8], as_half(pixels))
    outside = np.ones((8, 10), bool)
    outside[2:6, 3:8] = False
    assert np.all(rgb[outside] == 0.0)


def test_offset_display_window_and_partial_overlap(tmp_path):
    pixels = ramp_rgb(6, 6) + 1.0  # data (8,10) 6x6 overlaps display (10,12) 8x8 at its corner
    path = write_exr(tmp_path / "off.exr", pixels, data_window=(8, 10, 6, 6),
                     display_window=(10, 12, 8, 8))
    rgb = PlateSequence(path).read(1).rgb
    assert rgb.shape == (8, 8, 3)
    assert np.array_equal(rgb[0:4, 0:4], as_half(pixels)[2:6, 2:6])
    assert np.all(rgb[4:, :] == 0) and np.all(rgb[:, 4:] == 0)


def test_tiled_overscan(tmp_path):
    pixels = ramp_rgb(40, 70)
    path = write_exr(tmp_path / "t.exr", pixels, data_window=(-5, -4, 70, 40),
                     display_window=(0, 0, 60, 30), tiled=True)
    rgb = PlateSequence(path).read(1).rgb
    assert np.array_equal(rgb, as_half(pixels)[4:34, 5:65])


# --- multi-part and layers -------------------------------------------------------------------

@pytest.fixture
def multipart(tmp_path):
    rgba = ramp_rgb(12, 16, 1, channels=4)
    beauty = ramp_rgb(12, 16, 2, channels=4) + 10.0
    diffuse = ramp_rgb(12, 16, 3, channels=3) + 20.0
    path = write_parts(tmp_path / "mp.0001.exr", [
        Part(("R", "G", "B", "A"), rgba, name="rgba"),
        Part(("beauty.R", "beauty.G", "beauty.B", "Z"), beauty, name="beauty"),
        Part(("diffuse.R", "diffuse.G", "diffuse.B"), diffuse, name="aovs"),
    ])
    return path, rgba[..., :3], beauty[..., :3], diffuse


def test_multipart_default_reads_plain_rgb(multipart):
    path, rgba, _, _ = multipart
    plate = PlateSequence(path).read(1)
    assert np.array_equal(plate.rgb, as_half(rgba))
    assert plate.info.parts == ("rgba", "beauty", "aovs")
    assert plate.info.channels == ("R", "G", "B", "A")


def test_layer_finds_its_part(multipart):
    path, _, beauty, diffuse = multipart
    assert np.array_equal(PlateSequence(path, layer="beauty").read(1).rgb, as_half(beauty))
    plate = PlateSequence(path, layer="diffuse").read(1)
    assert np.array_equal(plate.rgb, as_half(diffuse))
    assert plate.info.selected_channels == ("diffuse.R", "diffuse.G", "diffuse.B")


@pytest.mark.parametrize("part", ["aovs", "2"])
def test_part_by_name_or_index(multipart, part):
    path, _, _, diffuse = multipart
    plate = PlateSequence(path, part=part, layer="diffuse").read(1)
    assert np.array_equal(plate.rgb, as_half(diffuse))
    assert plate.info.part_index == 2


def test_part_named_like_the_layer_without_layer(multipart):
    path, _, beauty, _ = multipart
    assert np.array_equal(PlateSequence(path, part="beauty").read(1).rgb, as_half(beauty))


def test_unknown_layer_lists_the_available_ones(multipart):
    path = multipart[0]
    with pytest.raises(InputError) as caught:
        PlateSequence(path, layer="specular").read(1)
    text = str(caught.value)
    assert path in text and "frame 1" in text and "'specular'" in text
    assert "beauty" in text and "diffuse" in text


def test_unknown_part_lists_the_parts(multipart):
    path = multipart[0]
    with pytest.raises(InputError) as caught:
        PlateSequence(path, part="nope").read(1)
    assert "rgba, beauty, aovs" in str(caught.value) and "frame 1" in str(caught.value)


def test_layer_missing_in_the_chosen_part(multipart):
    with pytest.raises(InputError, match="diffuse"):
        PlateSequence(multipart[0], part="rgba", layer="diffuse").read(1)


def test_layered_single_part(tmp_path):
    pixels = ramp_rgb(6, 8, channels=6)
    path = write_exr(tmp_path / "l.exr", pixels, channels=(
        "R", "G", "B", "spec.R", "spec.G", "spec.B"))
    plate = PlateSequence(path, layer="spec").read(1)
    assert np.array_equal(plate.rgb, as_half(pixels)[..., 3:])


# --- metadata ----------------------------------------------------------------------------------

def test_info_reports_windows_and_metadata(tmp_path):
    attributes = {"smpte:TimeCode": ("timecode", TIMECODE_01),
                  "FramesPerSecond": ("rational", (24000, 1001)),
                  "studio:shot": ("string", "sh010")}
    pattern = write_exr_sequence(tmp_path, [5], attributes=attributes)
    info = PlateSequence(pattern).info(5)
    assert isinstance(info, ImageInfo)
    assert info.file_format == "openexr" and info.pixel_type == "half" and info.bit_depth == 16
    assert info.metadata["smpte:TimeCode"] == TIMECODE_01
    assert info.metadata["FramesPerSecond"] == (24000, 1001)
    assert info.metadata["studio:shot"] == "sh010"
    assert info.attribute_types["smpte:TimeCode"] == "timecode"


def test_describe_summarises_a_sequence(tmp_path, multipart):
    pattern = write_exr_sequence(tmp_path, [1001, 1002, 1005], attributes={
        "smpte:TimeCode": ("timecode", TIMECODE_01), "FramesPerSecond": ("rational", (25, 1))})
    facts = describe(pattern)
    assert facts["frames"] == "1001-1002,1005"
    assert facts["gaps"] == [[1003, 1004]] and facts["missing_count"] == 2
    assert facts["resolution"] == [48, 32]
    assert facts["timecode"] == "01:00:00:00" and facts["fps"] == 25.0
    parts = describe(multipart[0], layer="diffuse")["parts"]
    assert [p["name"] for p in parts] == ["rgba", "beauty", "aovs"]
    assert parts[2]["layers"] == ["diffuse"]


# --- DPX and other formats ----------------------------------------------------------------------

@pytest.mark.parametrize("bits", [10, 12, 16])
def test_dpx_bit_depths(tmp_path, bits):
    pattern = write_dpx_sequence(tmp_path, [1, 2], bits=bits)
    plate = PlateSequence(pattern).read(2)
    info = plate.info
    assert info.file_format == "dpx" and info.bit_depth == bits
    expected = np.clip(ramp_rgb(32, 48, 2), 0, 1)
    np.testing.assert_allclose(plate.rgb, expected, atol=1.0 / (2 ** bits - 1))
    reference = oiio.ImageInput.open(frame_path(pattern, 2))
    assert np.array_equal(plate.rgb, reference.read_image(oiio.FLOAT))  # OIIO's own scaling
    reference.close()


def test_dpx_timecode_metadata(tmp_path):
    path = write_dpx(tmp_path / "s.dpx", np.full((4, 4, 3), 0.5, np.float32),
                     attributes={"smpte:TimeCode": ("timecode", TIMECODE_01),
                                 "dpx:Transfer": ("string", "Logarithmic")})
    facts = describe(path)
    assert facts["timecode"] == "01:00:00:00"
    assert facts["colour"]["dpx:Transfer"] == "Logarithmic"


@pytest.mark.parametrize("name, pixel_type, tolerance", [
    ("p.png", "uint8", 1 / 255), ("p.tif", "uint16", 1 / 65535), ("p.tiff", "float", 0.0),
    ("p.jpg", "uint8", 0.08)])
def test_png_tiff_jpeg(tmp_path, name, pixel_type, tolerance):
    pixels = np.clip(ramp_rgb(16, 24), 0, 1)
    path = write_plain(tmp_path / name, pixels, pixel_type)
    rgb = PlateSequence(path).read(1).rgb
    np.testing.assert_allclose(rgb, pixels, atol=tolerance + 1e-6, rtol=0)
    reference = oiio.ImageInput.open(path)
    assert np.array_equal(rgb, reference.read_image(oiio.FLOAT))  # OIIO's own scaling
    reference.close()


def test_png_colour_is_not_premultiplied_by_its_alpha(tmp_path):
    pixels = np.zeros((4, 4, 4), np.float32)
    pixels[..., :3] = 0.8
    pixels[..., 3] = 0.5
    path = write_plain(tmp_path / "a.png", pixels, unassociated=True)
    rgb = PlateSequence(path).read(1).rgb
    np.testing.assert_allclose(rgb, np.round(0.8 * 255) / 255, atol=1e-6)


# --- bad input ---------------------------------------------------------------------------------

def _assert_names_file_and_frame(error: InputError, path: str, frame: int) -> None:
    text = str(error)
    assert path in text and f"frame {frame}" in text and "\n" not in text
    assert error.path == path and error.frame == frame


def test_missing_frame(tmp_path):
    pattern = write_exr_sequence(tmp_path, [1, 2, 4])
    sequence = PlateSequence(pattern, frames=range(1, 5))
    with pytest.raises(InputError, match="missing") as caught:
        sequence.read(3)
    _assert_names_file_and_frame(caught.value, frame_path(pattern, 3), 3)


def test_no_frames_at_all(tmp_path):
    with pytest.raises(InputError, match="no frames"):
        PlateSequence(str(tmp_path / "none.####.exr"))


@pytest.fixture
def good_sequence(tmp_path):
    pattern = write_exr_sequence(tmp_path, [1, 2, 3], size=(96, 64))
    return pattern, frame_path(pattern, 2)


def test_zero_byte_file(good_sequence):
    pattern, path = good_sequence
    open(path, "wb").close()
    with pytest.raises(InputError, match="empty") as caught:
        PlateSequence(pattern).read(2)
    _assert_names_file_and_frame(caught.value, path, 2)


def test_truncated_file(good_sequence):
    pattern, path = good_sequence
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) * 2 // 3])
    with pytest.raises(InputError) as caught:
        PlateSequence(pattern).read(2)
    _assert_names_file_and_frame(caught.value, path, 2)


def test_truncated_inside_the_header(good_sequence):
    pattern, path = good_sequence
    data = open(path, "rb").read()
    open(path, "wb").write(data[:40])
    with pytest.raises(InputError) as caught:
        PlateSequence(pattern).read(2)
    _assert_names_file_and_frame(caught.value, path, 2)


def test_corrupted_pixel_data(good_sequence):
    pattern, path = good_sequence
    data = bytearray(open(path, "rb").read())
    middle = len(data) // 2
    data[middle:middle + 256] = bytes(range(256))
    open(path, "wb").write(bytes(data))
    with pytest.raises(InputError, match="corrupt") as caught:
        PlateSequence(pattern).read(2)
    _assert_names_file_and_frame(caught.value, path, 2)


def test_not_an_image(good_sequence):
    pattern, path = good_sequence
    open(path, "wb").write(b"this is not an image at all" * 10)
    with pytest.raises(InputError) as caught:
        PlateSequence(pattern).read(2)
    _assert_names_file_and_frame(caught.value, path, 2)


def test_png_renamed_exr_is_refused(good_sequence, tmp_path):
    pattern, path = good_sequence
    png = write_plain(tmp_path / "x.png", np.clip(ramp_rgb(64, 96), 0, 1))
    shutil.copy(png, path)
    with pytest.raises(InputError, match="PNG") as caught:
        PlateSequence(pattern).read(2)
    _assert_names_file_and_frame(caught.value, path, 2)


def test_resolution_change_inside_a_sequence(tmp_path):
    pattern = write_exr_sequence(tmp_path, [1, 2])
    write_exr_sequence(tmp_path, [3], size=(40, 32))
    sequence = PlateSequence(pattern)
    sequence.read(1)
    with pytest.raises(InputError, match="resolution") as caught:
        sequence.read(3)
    _assert_names_file_and_frame(caught.value, frame_path(pattern, 3), 3)
    with pytest.raises(InputError, match="40x32"):
        PlateSequence(pattern).read(3)  # checked against the first frame even when read first


def test_wrong_layer_names_file_and_frame(good_sequence):
    pattern, path = good_sequence
    with pytest.raises(InputError) as caught:
        PlateSequence(pattern, layer="beauty").read(2)
    _assert_names_file_and_frame(caught.value, path, 2)
    assert "plain channels: R, G, B" in str(caught.value)


# --- fingerprints -----------------------------------------------------------------------------

def test_fingerprint_changes_when_a_frame_is_replaced(tmp_path):
    pattern = write_exr_sequence(tmp_path, [1, 2])
    sequence = PlateSequence(pattern)
    before = sequence.fingerprint(1)
    content = sequence.fingerprint(1, content=True)
    path = frame_path(pattern, 1)
    write_exr(path, ramp_rgb(32, 48, 99))
    os.utime(path, ns=(1, 1))
    assert sequence.fingerprint(1) != before
    assert sequence.fingerprint(1, content=True) != content
    shutil.copy(frame_path(pattern, 2), path)
    assert sequence.fingerprint(1, content=True) == sequence.fingerprint(2, content=True)
    with pytest.raises(InputError, match="missing"):
        sequence.fingerprint(7)


def test_large_frame_with_overscan_and_reordered_channels(tmp_path):
    # Big enough for the multi-threaded conversion path; checks every row band lands right.
    pixels = ramp_rgb(700, 1700, 3, channels=4)
    path = write_exr(tmp_path / "big.exr", pixels, channels=("B", "A", "R", "G"),
                     data_window=(-10, -6, 1700, 700), display_window=(0, 0, 1680, 690))
    rgb = PlateSequence(path).read(1).rgb
    expected = as_half(pixels)[6:696, 10:1690][..., [2, 3, 0]]
    assert np.array_equal(rgb, expected)


def test_empty_frame_list_is_a_usage_error(tmp_path):
    from vrmbg.core.errors import UsageError

    pattern = write_exr_sequence(tmp_path, [1])
    with pytest.raises(UsageError, match="no frames requested"):
        PlateSequence(pattern, frames=[])
