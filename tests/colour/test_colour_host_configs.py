"""Hosts' own OCIO configs: the model sees what the built-in config would give it.

Nuke's `nuke-default` (OCIO v1, no interchange roles) and Blender's config (OCIO v2, interchange
roles) have no 'sRGB Encoded Rec.709 (sRGB)'. Their plates are converted in their own config and
carried into the built-in config's model space.
"""

from __future__ import annotations

import numpy as np
import PyOpenColorIO as OCIO
import pytest

from host_configs import (ACES_V1_STANDARD_SPACES, BLENDER_STANDARD_SPACES,
                          NUKE_STANDARD_SPACES, full_range_plate, model_input_differences,
                          rec709_decode, write_aces_v1_like_config, write_blender_like_config,
                          write_nuke_like_config)
from vrmbg.core.colour.config import BUILTIN_CONFIG, DEFAULT_MODEL_SPACE
from vrmbg.core.colour.transform import ColourTransform
from vrmbg.core.errors import ColourError, EXIT_INPUT


@pytest.fixture(scope="module")
def nuke_config(tmp_path_factory) -> str:
    return write_nuke_like_config(str(tmp_path_factory.mktemp("nuke default")))


@pytest.fixture(scope="module")
def blender_config(tmp_path_factory) -> str:
    return write_blender_like_config(str(tmp_path_factory.mktemp("blender")))


def builtin_model_input(space: str, plate: np.ndarray) -> np.ndarray:
    return ColourTransform(ocio=BUILTIN_CONFIG, input_space=space, threads=1).to_model(plate)


# ---------------------------------------------------------------- same model input

def test_v1_config_standard_spaces_give_the_built_in_model_input(nuke_config):
    differences = model_input_differences(nuke_config, NUKE_STANDARD_SPACES)
    assert set(differences) == {"linear", "sRGB"}
    assert max(differences.values()) < 1e-4, differences
    colour = ColourTransform(ocio=nuke_config, input_space="linear")
    assert colour.route == "standard" and colour.bridge == ("linear", "Linear Rec.709 (sRGB)")
    assert colour.model_space == DEFAULT_MODEL_SPACE


def test_v1_config_rec709_plate_matches_the_built_in_camera_rec709(nuke_config):
    # nuke-default's rec709 curve (break at 0.081) and OCIO's continuous 'Camera Rec.709'
    # differ by up to ~3e-4 in code values; the conversion itself adds nothing.
    plate = full_range_plate(encoded=True)
    ours = ColourTransform(ocio=nuke_config, input_space="rec709").to_model(plate)
    np.testing.assert_allclose(ours, builtin_model_input("Camera Rec.709", plate), atol=1e-3)
    linear = rec709_decode(plate).astype(np.float32)  # the config's own curve, decoded here
    np.testing.assert_allclose(ours, builtin_model_input("Linear Rec.709 (sRGB)", linear),
                               atol=3e-4)  # the config samples its curve in a 1D LUT


def test_v1_config_other_spaces_convert_in_the_host_config_first(nuke_config):
    plate = full_range_plate(encoded=True)
    ours = ColourTransform(ocio=nuke_config, input_space="compositing_log").to_model(plate)
    assert ColourTransform(ocio=nuke_config, input_space="compositing_log").input_space == "log10"
    linear = np.power(10.0, plate.astype(np.float64)).astype(np.float32)  # its LogTransform
    np.testing.assert_allclose(ours, builtin_model_input("Linear Rec.709 (sRGB)", linear),
                               atol=1e-4)


def test_aces_v1_config_reaches_the_model_space_through_aces2065_1(tmp_path):
    config = write_aces_v1_like_config(str(tmp_path))
    differences = model_input_differences(config, ACES_V1_STANDARD_SPACES)
    assert max(differences.values()) < 1e-4, differences
    colour = ColourTransform(ocio=config, input_space="scene_linear")
    assert colour.input_space == "ACES - ACEScg"
    assert colour.route == "standard" and colour.bridge == ("ACES - ACES2065-1", "ACES2065-1")


def test_interchange_config_gives_the_built_in_model_input(blender_config):
    differences = model_input_differences(blender_config, BLENDER_STANDARD_SPACES)
    assert max(differences.values()) < 1e-4, differences
    colour = ColourTransform(ocio=blender_config, input_space="sRGB")
    assert colour.route == "interchange" and colour.model_space == DEFAULT_MODEL_SPACE
    assert "interchange" in colour.describe()


def test_interchange_config_roles_and_other_model_spaces(blender_config):
    plate = full_range_plate(encoded=False)
    by_role = ColourTransform(ocio=blender_config, input_space="scene_linear")
    assert by_role.input_space == "Linear Rec.709"
    np.testing.assert_allclose(by_role.to_model(plate),
                               builtin_model_input("Linear Rec.709 (sRGB)", plate), atol=1e-4)
    gamma = ColourTransform(ocio=blender_config, input_space="ACES2065-1",
                            model_space="Gamma 2.2 Encoded Rec.709")
    reference = ColourTransform(input_space="ACES2065-1", model_space="Gamma 2.2 Encoded Rec.709")
    np.testing.assert_allclose(gamma.to_model(plate), reference.to_model(plate), atol=1e-4)


@pytest.mark.parametrize("which", ["nuke", "blender"])
def test_data_plates_pass_unchanged_as_within_one_config(which, nuke_config, blender_config):
    config, space = (nuke_config, "raw") if which == "nuke" else (blender_config, "Non-Color")
    plate = np.random.default_rng(3).random((4, 5, 3), dtype=np.float32)
    out = ColourTransform(ocio=config, input_space=space).to_model(plate)
    assert np.array_equal(out, builtin_model_input("Raw", plate))
    assert np.array_equal(out, plate)


def test_configs_with_the_model_space_keep_the_one_config_path(tmp_path):
    path = tmp_path / "cg.ocio"
    path.write_text(OCIO.Config.CreateFromFile("ocio://cg-config-latest").serialize())
    colour = ColourTransform(ocio=str(path), input_space="ACEScg")
    assert colour.route == "config" and colour.model_config is colour.config
    assert "model_config=" not in colour.identity and "via=" not in colour.identity


# ---------------------------------------------------------------- identity

def test_identity_tells_the_routes_apart(nuke_config, blender_config):
    identities = {
        "builtin": ColourTransform(input_space="Linear Rec.709 (sRGB)").identity,
        "standard": ColourTransform(ocio=nuke_config, input_space="linear").identity,
        "interchange": ColourTransform(ocio=blender_config, input_space="Linear Rec.709").identity,
    }
    assert len(set(identities.values())) == 3
    assert "via=standard:linear=Linear Rec.709 (sRGB)" in identities["standard"]
    assert "via=interchange" in identities["interchange"]
    assert "via=" not in identities["builtin"]
    again = ColourTransform(ocio=nuke_config, input_space="linear").identity
    assert again == identities["standard"]  # stable: caches are found again


# ---------------------------------------------------------------- errors

def test_v1_config_without_known_spaces_is_a_colour_error_naming_config_and_space(tmp_path):
    config = OCIO.Config.CreateRaw()
    config.setMajorVersion(1)
    config.addColorSpace(OCIO.ColorSpace(name="lin_srgb"))
    path = tmp_path / "show.ocio"
    path.write_text(config.serialize())
    with pytest.raises(ColourError) as info:
        ColourTransform(ocio=str(path), input_space="lin_srgb")
    text = str(info.value)
    assert str(path) in text and repr(DEFAULT_MODEL_SPACE) in text and "interchange" in text
    assert "\n" not in text and info.value.exit_code == EXIT_INPUT


def test_v1_config_borrowing_standard_names_with_other_maths_is_refused(tmp_path):
    gamma22 = lambda code: np.power(np.maximum(code, 0.0), 2.2)  # noqa: E731 - not sRGB
    path = write_nuke_like_config(str(tmp_path), srgb_decode_curve=gamma22)
    with pytest.raises(ColourError, match=r"its 'sRGB' is not the standard "
                                          r"'sRGB Encoded Rec.709 \(sRGB\)'") as info:
        ColourTransform(ocio=path, input_space="linear")
    assert path in str(info.value)


def test_unknown_space_in_a_host_config_names_that_config(nuke_config, blender_config):
    with pytest.raises(ColourError, match="unknown input colour space 'srgb_tx'") as info:
        ColourTransform(ocio=blender_config, input_space="srgb_tx")
    assert "blender-like" in str(info.value) and "'sRGB'" in str(info.value)
    with pytest.raises(ColourError, match="unknown input colour space 'Linear Rec.709'") as info:
        ColourTransform(ocio=nuke_config, input_space="Linear Rec.709")
    assert nuke_config in str(info.value) and "'linear'" in str(info.value)
    with pytest.raises(ColourError, match="unknown model colour space 'sRGB Encoded'"):
        ColourTransform(ocio=blender_config, input_space="sRGB", model_space="sRGB Encoded")
