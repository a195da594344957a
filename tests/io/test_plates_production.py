"""Plates studios have: luminance/chroma and Y-only EXRs (also in layers and views),
multi-view files, deep EXRs (refused), and plates that deserve a warning."""

from __future__ import annotations

import struct

import numpy as np
import OpenEXR
import OpenImageIO as oiio
import pytest
from plate_factory import ramp_rgb, write_exr, write_parts, write_raw_exr, Part
from render_helpers import render_args, run_cli

from vrmbg.core.errors import InputError
from vrmbg.core.io.exr_yca import luminance_weights, reconstruct_chroma
from vrmbg.core.io.plate_info import describe
from vrmbg.core.io.plates import PlateSequence

XYZ = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1 / 3, 1 / 3)


def chromaticities(values) -> tuple[str, str, bytes]:
    """A raw `chromaticities` header attribute."""
    return ("chromaticities", "chromaticities", struct.pack("<8f", *values))


def encode_yca(rgb: np.ndarray, weights: np.ndarray, prefix: str = "") -> dict:
    """RGB -> Y full size and RY/BY taken at even rows and columns (OpenEXR's definition of
    the channels; the file keeps chroma samples where x and y are even)."""
    luma = rgb @ weights
    ry = (rgb[..., 0] - luma) / luma
    by = (rgb[..., 2] - luma) / luma
    return {prefix + "Y": luma.astype(np.float16), prefix + "RY": ry[::2, ::2].astype(np.float16),
            prefix + "BY": by[::2, ::2].astype(np.float16)}


def write_yca(path, rgb, *, prefix="", attributes=(), weights=None):
    """A luminance/chroma EXR of `rgb` (chroma 2x2 subsampled)."""
    weights = luminance_weights(None) if weights is None else weights
    planes = encode_yca(rgb, weights, prefix)
    sampling = {prefix + "RY": (2, 2), prefix + "BY": (2, 2)}
    return write_raw_exr(path, planes, sampling=sampling, size=(rgb.shape[1], rgb.shape[0]),
                         attributes=attributes)


def smooth_rgb(height: int, width: int) -> np.ndarray:
    """A slowly varying, strictly positive colour image (chroma filtering is near exact)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([0.4 + 0.2 * np.sin(xx / 9.0), 0.3 + 0.1 * np.cos(yy / 7.0),
                     0.2 + 0.1 * np.sin((xx + yy) / 11.0)], axis=-1).astype(np.float32)


# --- luminance/chroma ---------------------------------------------------------------------------

def test_the_test_file_really_is_subsampled_and_oiio_refuses_it(tmp_path):
    path = write_yca(tmp_path / "yca.exr", smooth_rgb(20, 30))
    channels = OpenEXR.File(str(path), separate_channels=True).channels()
    assert channels["RY"].pixels.shape == (10, 15) and channels["RY"].xSampling == 2
    assert oiio.ImageInput.open(str(path)) is None
    assert "Subsampled" in oiio.geterror()


def test_rec709_luminance_weights_by_default():
    np.testing.assert_allclose(luminance_weights(None), [0.2126, 0.7152, 0.0722], atol=2e-4)
    xyz = luminance_weights(XYZ)  # XYZ primaries: Y is the green primary alone
    np.testing.assert_allclose(xyz, [0.0, 1.0, 0.0], atol=1e-6)


def test_luminance_chroma_plate_reconstructs_rgb(tmp_path):
    rgb = smooth_rgb(40, 60)
    path = write_yca(tmp_path / "yca.0001.exr", rgb)
    plate = PlateSequence(str(path)).read(1)
    assert plate.rgb.shape == (40, 60, 3)
    # Inside, the filtered chroma matches; past the last sample OpenEXR repeats it.
    np.testing.assert_allclose(plate.rgb[2:-2, 2:-2], rgb[2:-2, 2:-2], atol=4e-3)
    np.testing.assert_allclose(plate.rgb, rgb, atol=0.03)
    assert describe(str(path))["luminance_chroma"] == "Y, RY, BY"


def test_grey_luminance_chroma_is_exactly_grey(tmp_path):
    grey = np.repeat(ramp_rgb(12, 16, channels=1), 3, axis=-1) + 0.1
    rgb = PlateSequence(write_yca(tmp_path / "g.exr", grey)).read(1).rgb
    for channel in range(3):
        assert np.array_equal(rgb[..., channel], as_half(grey[..., 0]))


def test_chroma_reconstruction_filters_between_samples():
    # A chroma step: samples 0 then 1; OpenEXR's half-band filter rings around the edge.
    samples = np.array([[0, 0, 0, 0, 1, 1, 1, 1]], np.float32).repeat(2, axis=0)
    full = reconstruct_chroma(samples.astype(np.float16), 4, 16)
    assert np.array_equal(full[0, ::2], samples[0])          # samples are kept
    assert 0.45 < full[0, 7] < 0.55                           # half way at the edge
    assert full[0, 5] < 0 and full[0, 9] > 1                  # the filter's ringing
    assert np.array_equal(full[1], full[0])                   # rows filled from rows


def test_chromaticities_decide_the_luminance_weights(tmp_path):
    rgb = smooth_rgb(16, 16)
    primaries = (0.7, 0.3, 0.2, 0.7, 0.15, 0.05, 0.3127, 0.329)
    weights = luminance_weights(primaries)
    path = write_yca(tmp_path / "c.exr", rgb, weights=weights,
                     attributes=[chromaticities(primaries)])
    np.testing.assert_allclose(PlateSequence(str(path)).read(1).rgb[2:-2, 2:-2],
                               rgb[2:-2, 2:-2], atol=4e-3)
    wrong = write_yca(tmp_path / "w.exr", rgb, weights=weights)  # no chromaticities: Rec.709
    assert np.abs(PlateSequence(str(wrong)).read(1).rgb - rgb).max() > 0.01


def test_luminance_chroma_in_a_layer(tmp_path):
    rgb = smooth_rgb(20, 24)
    path = write_yca(tmp_path / "l.exr", rgb, prefix="right.")
    plate = PlateSequence(str(path), layer="right").read(1)
    np.testing.assert_allclose(plate.rgb[2:-2, 2:-2], rgb[2:-2, 2:-2], atol=4e-3)
    assert plate.info.selected_channels == ("right.R", "right.G", "right.B")


def test_render_a_luminance_chroma_shot(tmp_path, capsys, model):
    for frame in (1001, 1002):
        write_yca(tmp_path / f"sh010.{frame}.exr", smooth_rgb(32, 48) * (frame - 1000))
    code, _out, err = run_cli(render_args(str(tmp_path / "sh010.####.exr"),
                                          str(tmp_path / "m" / "m.####.exr"), model,
                                          "--resolution", "64"), capsys)
    assert code == 0, err
    assert (tmp_path / "m" / "m.1002.exr").is_file()


def test_broken_luminance_chroma_file_is_one_clean_line(tmp_path):
    path = write_yca(tmp_path / "b.1001.exr", smooth_rgb(20, 20))
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) - 40])
    with pytest.raises(InputError) as caught:
        PlateSequence(str(tmp_path / "b.####.exr")).read(1001)
    text = str(caught.value)
    assert path in text and "frame 1001" in text and "\n" not in text


# --- Y-only, layers and views -----------------------------------------------------------------

def test_y_only_in_a_named_layer(tmp_path):
    grey = ramp_rgb(8, 10, channels=1)
    path = write_exr(tmp_path / "y.exr", np.concatenate([grey, grey * 2], axis=-1),
                     channels=("left.Y", "right.Y"))
    rgb = PlateSequence(path, layer="right").read(1).rgb
    expected = (grey * 2).astype(np.float16).astype(np.float32)[..., 0]
    for channel in range(3):
        assert np.array_equal(rgb[..., channel], expected)
    assert describe(path, layer="right")["selected_channels"] == ["right.Y"] * 3


def multiview_file(tmp_path):
    """A single-part stereo EXR: default view `left` unprefixed, `right.*` for the other."""
    left, right = ramp_rgb(8, 12, 1), ramp_rgb(8, 12, 2) + 1.0
    return write_exr(tmp_path / "stereo.exr", np.concatenate([left, right], axis=-1),
                     channels=("R", "G", "B", "right.R", "right.G", "right.B"),
                     attributes={"multiView": ("string[2]", ("left", "right"))}), left, right


def as_half(pixels):
    return pixels.astype(np.float16).astype(np.float32)


def test_multiview_picks_the_view_by_name(tmp_path):
    path, left, right = multiview_file(tmp_path)
    assert np.array_equal(PlateSequence(path).read(1).rgb, as_half(left))
    assert np.array_equal(PlateSequence(path, layer="left").read(1).rgb, as_half(left))
    assert np.array_equal(PlateSequence(path, layer="right").read(1).rgb, as_half(right))
    assert describe(path)["views"] == ["left", "right"]


def test_multipart_views_by_part(tmp_path):
    left, right = ramp_rgb(8, 12, 1), ramp_rgb(8, 12, 2) + 1.0
    view = {"left": ("string", "left"), "right": ("string", "right")}
    path = write_parts(tmp_path / "mp.exr", [
        Part(("R", "G", "B"), left, name="rgba_left", attributes={"view": view["left"]}),
        Part(("R", "G", "B"), right, name="rgba_right", attributes={"view": view["right"]})])
    assert np.array_equal(PlateSequence(path, part="right").read(1).rgb, as_half(right))
    assert np.array_equal(PlateSequence(path, layer="right").read(1).rgb, as_half(right))


def test_unknown_view_lists_what_there_is(tmp_path):
    path, _left, _right = multiview_file(tmp_path)
    with pytest.raises(InputError, match="right") as caught:
        PlateSequence(path, layer="centre").read(1)
    assert "'centre'" in str(caught.value)


# --- deep, warnings -------------------------------------------------------------------------------

def write_deep(path):
    spec = oiio.ImageSpec(4, 3, 4, oiio.FLOAT)
    spec.channelnames = ("R", "G", "B", "Z")
    spec.deep = True
    deep = oiio.DeepData()
    deep.init(spec)
    for pixel in range(12):
        deep.set_samples(pixel, 1)
        for channel in range(4):
            deep.set_deep_value(pixel, channel, 0, 0.5)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_deep_image(deep), out.geterror()
    out.close()
    return str(path)


def test_info_refuses_a_deep_exr_as_render_does(tmp_path, capsys):
    path = write_deep(tmp_path / "deep.1001.exr")
    code, out, err = run_cli(["info", path], capsys)
    assert code == 3 and "deep" in err and path in err and "frame 1001" in err
    assert "reading" not in out


def test_render_warns_when_the_display_window_holds_no_pixels(tmp_path, capsys, model):
    pixels = ramp_rgb(16, 16)
    for frame in (1001, 1002):
        write_exr(tmp_path / f"sh.{frame}.exr", pixels, data_window=(100, 100, 16, 16),
                  display_window=(0, 0, 32, 32))
    plates = str(tmp_path / "sh.####.exr")
    code, _out, err = run_cli(render_args(plates, str(tmp_path / "m" / "m.####.exr"), model,
                                          "--resolution", "64"), capsys)
    assert code == 0, err
    assert "black frame" in err and "sh.1001.exr" in err
    assert describe(plates)["warnings"]


def test_render_warns_when_chromaticities_contradict_the_colour_space(tmp_path, capsys, model):
    attributes = {"chromaticities": ("float[8]", XYZ)}
    write_exr(tmp_path / "sh.1001.exr", ramp_rgb(16, 16), attributes=attributes)
    plates = str(tmp_path / "sh.####.exr")
    out = str(tmp_path / "m" / "m.####.exr")
    code, _out, err = run_cli(render_args(plates, out, model, "--resolution", "64"), capsys)
    assert code == 0, err
    assert "CIE XYZ primaries" in err and "ACEScg" in err
    assert describe(plates)["colour"]["primaries"] == "CIE XYZ"
    code, _out, err = run_cli(render_args(plates, str(tmp_path / "n" / "m.####.exr"), model,
                                          "--resolution", "64", "--input-colorspace",
                                          "Linear Rec.709 (sRGB)"), capsys)
    assert code == 0 and "CIE XYZ primaries" in err  # Rec.709 is not XYZ either
    rec709 = {"chromaticities": ("float[8]", (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329))}
    write_exr(tmp_path / "ok.1001.exr", ramp_rgb(16, 16), attributes=rec709)
    code, _out, err = run_cli(render_args(str(tmp_path / "ok.####.exr"),
                                          str(tmp_path / "o" / "m.####.exr"), model,
                                          "--resolution", "64", "--input-colorspace",
                                          "Linear Rec.709 (sRGB)"), capsys)
    assert code == 0 and "chromaticities" not in err


# --- DPX packings --------------------------------------------------------------------------------

@pytest.mark.parametrize("bits, packing", [
    (10, "Packed"), (10, "Filled, method A"), (10, "Filled, method B"), (12, "Packed"),
    (12, "Filled, method A"), (16, "Packed"), (16, "Filled, method A"),
    (16, "Filled, method B")])
@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("endian", ["big", "little"])
def test_dpx_packings_read_the_written_codes(tmp_path, bits, packing, channels, endian):
    """Every packing OpenImageIO writes (it writes 12-bit "filled" requests as packed)."""
    rng = np.random.default_rng(bits * 10 + channels)
    codes = rng.integers(0, 2 ** bits, (5, 13, channels)).astype(np.uint32)
    spec = oiio.ImageSpec(13, 5, channels, oiio.UINT16)
    spec.attribute("oiio:BitsPerSample", bits)
    spec.attribute("dpx:Packing", packing)
    spec.attribute("oiio:Endian", endian)
    path = str(tmp_path / "scan.dpx")
    out = oiio.ImageOutput.create(path)
    assert out.open(path, spec), out.geterror()
    widened = (codes << (16 - bits)) | (codes >> max(2 * bits - 16, 0) if bits < 16 else 0)
    assert out.write_image(np.ascontiguousarray(widened.astype(np.uint16))), out.geterror()
    out.close()
    assert open(path, "rb").read(4) == (b"SDPX" if endian == "big" else b"XPDS")
    plate = PlateSequence(path).read(1)
    assert plate.info.bit_depth == bits
    assert np.array_equal(np.round(plate.rgb * (2 ** bits - 1)).astype(np.uint32),
                          codes[..., :3])
