"""Colour conversion: checked against PyOpenColorIO's own processors and analytic curves."""

from __future__ import annotations

import numpy as np
import PyOpenColorIO as OCIO
import pytest

from vrmbg.core.colour.config import DEFAULT_MODEL_SPACE, default_input_space, resolve_config
from vrmbg.core.colour.transform import ColourTransform
from vrmbg.core.errors import ColourError, EXIT_INPUT

STUDIO = "ocio://studio-config-latest"
CG = "ocio://cg-config-latest"
SDR_VIEW = "ACES 2.0 - SDR 100 nits (Rec.709)"


@pytest.fixture(autouse=True)
def _no_env_ocio(monkeypatch):
    """Tests start without $OCIO, whatever the machine running them has."""
    monkeypatch.delenv("OCIO", raising=False)


def reference(src: str, dst: str, rgb: np.ndarray, uri: str = STUDIO) -> np.ndarray:
    """`rgb` converted by a processor built here directly from PyOCIO."""
    config = OCIO.Config.CreateFromFile(uri)
    cpu = config.getProcessor(src, dst).getDefaultCPUProcessor()
    out = np.ascontiguousarray(rgb, dtype=np.float32).copy()
    cpu.applyRGB(out)
    return out


def srgb_oetf(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding."""
    linear = np.asarray(linear, dtype=np.float64)
    return np.where(linear <= 0.0031308, 12.92 * linear,
                    1.055 * np.power(np.maximum(linear, 0.0), 1 / 2.4) - 0.055)


def write_config(path, uri: str = CG, description: str = "") -> str:
    """A config file on disk: a built-in config serialised, optionally with a new description."""
    config = OCIO.Config.CreateFromFile(uri)
    if description:
        config.setDescription(description)
    path.write_text(config.serialize())
    return str(path)


# ---------------------------------------------------------------- conversions

def test_acescg_mid_grey_matches_pyocio_processor():
    grey = np.full((2, 3, 3), 0.18, np.float32)
    out = ColourTransform(input_space="ACEScg").to_model(grey)
    expected = reference("ACEScg", DEFAULT_MODEL_SPACE, grey)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert 0.45 < out[0, 0, 0] < 0.48  # ~0.46 in sRGB code values: not a pass-through


def test_large_frame_uses_blocks_and_threads_with_identical_results():
    rng = np.random.default_rng(1)
    plate = rng.random((301, 517, 3), dtype=np.float32) * 0.9
    expected = np.clip(reference("ACEScg", DEFAULT_MODEL_SPACE, plate), 0, 1)
    one = ColourTransform(input_space="ACEScg", threads=1).to_model(plate)
    two = ColourTransform(input_space="ACEScg", threads=2).to_model(plate)
    np.testing.assert_allclose(one, expected, atol=1e-6)
    assert np.array_equal(one, two)


def test_linear_rec709_to_srgb_follows_the_analytic_oetf():
    ramp = np.linspace(0.0, 1.0, 64, dtype=np.float32)
    plate = np.repeat(ramp[None, :, None], 3, axis=2)
    out = ColourTransform(input_space="Linear Rec.709 (sRGB)").to_model(plate)
    np.testing.assert_allclose(out[0, :, 0], srgb_oetf(ramp), atol=2e-4)


def test_roles_and_aliases_resolve_to_the_same_conversion():
    plate = np.full((1, 1, 3), 0.3, np.float32)
    by_role = ColourTransform(input_space="scene_linear", model_space="color_picking")
    by_alias = ColourTransform(input_space="acescg", model_space="srgb_tx")
    assert by_role.input_space == by_alias.input_space == "ACEScg"
    assert np.array_equal(by_role.to_model(plate), by_alias.to_model(plate))
    assert by_role.identity == by_alias.identity


def test_input_array_is_not_modified_and_output_is_float32_contiguous():
    plate = np.full((4, 4, 3), 0.5, np.float64)
    before = plate.copy()
    out = ColourTransform(input_space="ACEScg").to_model(plate)
    assert np.array_equal(plate, before)
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"] and out.shape == (4, 4, 3)


# ---------------------------------------------------------------- sanitising

def test_nan_and_inf_become_black_and_are_counted():
    plate = np.full((4, 5, 3), 0.18, np.float32)
    plate[0, 0, 0] = np.nan
    plate[1, 2] = np.inf
    plate[3, 4, 2] = -np.inf
    colour = ColourTransform(input_space="ACEScg")
    out = colour.to_model(plate)
    assert np.isfinite(out).all()
    assert colour.last_bad_pixels == 3
    for y, x in ((0, 0), (1, 2), (3, 4)):
        assert np.array_equal(out[y, x], np.zeros(3, np.float32))
    assert out[2, 2, 0] > 0.4  # good pixels are converted normally
    colour.to_model(np.full((4, 5, 3), 0.18, np.float32))
    assert colour.last_bad_pixels == 0


def test_concurrent_calls_keep_their_own_bad_pixel_count():
    from concurrent.futures import ThreadPoolExecutor

    colour = ColourTransform(input_space="ACEScg", threads=2)
    clean = np.full((300, 300, 3), 0.18, np.float32)
    dirty = clean.copy()
    dirty[:7, 0, 0] = np.nan
    expected = colour.to_model(clean)

    def convert(plate):
        out = colour.to_model(plate)
        return out, colour.last_bad_pixels

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(convert, [clean, dirty] * 8))
    for i, (out, bad) in enumerate(results):
        assert bad == (7 if i % 2 else 0)
        if not i % 2:
            assert np.array_equal(out, expected)


def test_values_are_clamped_after_conversion():
    plate = np.array([[[5.0, 5.0, 5.0], [-1.0, -1.0, -1.0], [0.18, 0.18, 0.18]]], np.float32)
    raw = reference("ACEScg", DEFAULT_MODEL_SPACE, plate)
    assert raw.max() > 1.0 and raw.min() < 0.0  # OCIO itself does not clamp
    out = ColourTransform(input_space="ACEScg").to_model(plate)
    np.testing.assert_allclose(out, np.clip(raw, 0.0, 1.0), atol=1e-6)
    assert out.min() >= 0.0 and out.max() <= 1.0


# ---------------------------------------------------------------- display / view

def test_display_view_path_matches_pyocio_and_differs_from_plain_conversion():
    plate = np.array([[[0.18, 0.18, 0.18], [0.9, 0.5, 0.1], [4.0, 4.0, 4.0]]], np.float32)
    tone = ColourTransform(input_space="ACEScg", display="sRGB - Display", view=SDR_VIEW)
    plain = ColourTransform(input_space="ACEScg")
    config = OCIO.Config.CreateFromFile(STUDIO)
    dvt = OCIO.DisplayViewTransform(src="ACEScg", display="sRGB - Display", view=SDR_VIEW)
    expected = plate.copy()
    config.getProcessor(dvt).getDefaultCPUProcessor().applyRGB(expected)
    out = tone.to_model(plate)
    np.testing.assert_allclose(out, np.clip(expected, 0, 1), atol=1e-5)
    assert np.abs(out - plain.to_model(plate)).max() > 0.02
    assert out[0, 2, 0] < 1.0  # tone mapping keeps highlights below clipping


def test_unknown_display_or_view_lists_choices():
    with pytest.raises(ColourError, match="sRGB - Display"):
        ColourTransform(input_space="ACEScg", display="sRGB")
    with pytest.raises(ColourError, match="Un-tone-mapped"):
        ColourTransform(input_space="ACEScg", display="sRGB - Display", view="Filmic")


# ---------------------------------------------------------------- errors

def test_unknown_colour_space_lists_close_matches():
    with pytest.raises(ColourError) as info:
        ColourTransform(input_space="ARRI LogC")
    text = str(info.value)
    assert "ARRI LogC" in text and "'ARRI LogC4'" in text and "ARRI LogC3 (EI800)" in text
    assert "\n" not in text and info.value.exit_code == EXIT_INPUT


def test_unknown_model_space_is_a_colour_error():
    with pytest.raises(ColourError, match="model colour space 'sRGB Encoded Rec.709'"):
        ColourTransform(input_space="ACEScg", model_space="sRGB Encoded Rec.709")


@pytest.mark.parametrize("plate", ["shot.####.dpx", "shot.mov", "shot.cin"])
def test_plates_without_a_default_space_ask_for_input_colorspace(plate):
    with pytest.raises(ColourError, match="--input-colorspace") as info:
        ColourTransform(plate_path=plate)
    assert "ARRI LogC4" in str(info.value)
    assert ColourTransform(plate_path=plate, input_space="ACEScct").input_space == "ACEScct"


def test_default_input_space_by_plate_type():
    config, _ = resolve_config()
    assert default_input_space("a.####.exr", config) == "scene_linear"
    assert default_input_space("a.%04d.png", config) == "color_picking"
    assert default_input_space("a.jpg", config) == "color_picking"
    assert default_input_space("a.dpx", config) is None
    assert default_input_space("a.mov", config) is None

    class Info:  # an ImageInfo-like header of a float TIFF: not display-encoded
        path, file_format, pixel_type = "a.0001.tif", "tiff", "float"

    assert default_input_space(Info(), config) is None
    Info.pixel_type = "uint16"
    assert default_input_space(Info(), config) == "color_picking"
    assert ColourTransform(plate_path="a.####.exr").input_space == "ACEScg"
    assert ColourTransform(plate_path="a.####.png").input_space == DEFAULT_MODEL_SPACE


# ---------------------------------------------------------------- config resolution

def test_config_precedence_explicit_then_env_then_builtin(tmp_path, monkeypatch):
    builtin_name = OCIO.Config.CreateFromFile(STUDIO).getName()
    env_file = write_config(tmp_path / "env.ocio", CG, "from env")
    arg_file = write_config(tmp_path / "arg.ocio", CG, "from argument")

    config, _ = resolve_config()
    assert config.getName() == builtin_name
    monkeypatch.setenv("OCIO", env_file)
    config, _ = resolve_config()
    assert config.getDescription() == "from env"
    config, _ = resolve_config(arg_file)
    assert config.getDescription() == "from argument"
    config, _ = resolve_config(STUDIO)
    assert config.getName() == builtin_name


def test_missing_or_unreadable_config_is_a_colour_error(tmp_path, monkeypatch):
    missing = str(tmp_path / "nope.ocio")
    with pytest.raises(ColourError, match="not found") as info:
        resolve_config(missing)
    assert info.value.path == missing
    monkeypatch.setenv("OCIO", missing)
    with pytest.raises(ColourError, match=r"\$OCIO"):
        ColourTransform(input_space="ACEScg")
    garbage = tmp_path / "garbage.ocio"
    garbage.write_text("this is: [not an ocio config\n")
    with pytest.raises(ColourError, match="cannot read OCIO config"):
        resolve_config(str(garbage))


def test_identity_follows_config_contents(tmp_path):
    path = tmp_path / "show.ocio"
    write_config(path, CG, "version one")
    first = resolve_config(str(path))[1]
    assert resolve_config(str(path))[1] == first  # stable
    write_config(path, CG, "version two")
    assert resolve_config(str(path))[1] != first
    assert resolve_config(STUDIO)[1] != resolve_config(CG)[1]


def test_identity_changes_with_every_colour_setting():
    base = dict(input_space="ACEScg")
    variants = [
        base,
        dict(input_space="ACEScct"),
        dict(input_space="ACEScg", model_space="Gamma 2.2 Encoded Rec.709"),
        dict(input_space="ACEScg", display="sRGB - Display", view=SDR_VIEW),
        dict(input_space="ACEScg", display="sRGB - Display", view="Un-tone-mapped"),
        dict(input_space="ACEScg", ocio=CG),
    ]
    identities = [ColourTransform(**kw).identity for kw in variants]
    assert len(set(identities)) == len(identities)
    assert ColourTransform(**base).identity == identities[0]
    assert "0x" not in identities[0]  # no object addresses: stable across processes
