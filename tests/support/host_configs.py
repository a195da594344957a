"""OCIO configs like the ones hosts hand over, and the check that a host config feeds the model
exactly what the built-in config would.

`write_nuke_like_config` writes an OCIO v1 config in the manner of Nuke's `nuke-default` (a
scene-linear Rec.709 reference, 1D LUT files for sRGB and Rec.709, no interchange roles);
`write_aces_v1_like_config` one named like Nuke's `aces_1.2`;
`write_blender_like_config` builds an OCIO v2 config in the manner of Blender's (reference
'Linear Rec.709', 'sRGB', 'Non-Color' and the interchange roles) with PyOpenColorIO's API.
`model_input_differences` is what a test with a real host config calls, e.g. Blender's
(`BLENDER_STANDARD_SPACES`).
"""

from __future__ import annotations

import os

import numpy as np
import PyOpenColorIO as OCIO

from vrmbg.core.colour.config import BUILTIN_CONFIG, builtin_config
from vrmbg.core.colour.transform import ColourTransform

# (space in Blender's own config, the same space in the built-in config).
BLENDER_STANDARD_SPACES = (("Linear Rec.709", "Linear Rec.709 (sRGB)"),
                           ("sRGB", "sRGB Encoded Rec.709 (sRGB)"))
# (space in Nuke's aces_1.x configs, the same space in the built-in config).
ACES_V1_STANDARD_SPACES = (("ACES - ACEScg", "ACEScg"),
                           ("Utility - sRGB - Texture", "sRGB Encoded Rec.709 (sRGB)"))
# (space in nuke-default, the same space in the built-in config).
NUKE_STANDARD_SPACES = (("linear", "Linear Rec.709 (sRGB)"),
                        ("sRGB", "sRGB Encoded Rec.709 (sRGB)"))

# CIE xy chromaticities of Rec.709 / sRGB and of the D65 white.
REC709_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
D65_WHITE = (0.3127, 0.3290)


def srgb_decode(code: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB code values -> linear (extended linearly below 0)."""
    code = np.asarray(code, dtype=np.float64)
    return np.where(code <= 0.04045, code / 12.92,
                    np.power((np.maximum(code, 0.0) + 0.055) / 1.055, 2.4))


def rec709_decode(code: np.ndarray) -> np.ndarray:
    """ITU-R BT.709 camera (OETF) code values -> scene linear."""
    code = np.asarray(code, dtype=np.float64)
    return np.where(code < 0.081, code / 4.5,
                    np.power((np.maximum(code, 0.0) + 0.099) / 1.099, 1 / 0.45))


def write_spi1d(path: str, decode, low: float = -0.125, high: float = 4.875,
                size: int = 16384) -> None:
    """A Sony Imageworks 1D LUT (the format nuke-default uses) sampling `decode`."""
    codes = np.linspace(low, high, size)
    with open(path, "w", encoding="ascii") as handle:
        handle.write(f"Version 1\nFrom {low} {high}\nLength {size}\nComponents 1\n{{\n")
        handle.writelines(f"    {value:.9g}\n" for value in decode(codes))
        handle.write("}\n")


NUKE_LIKE_CONFIG = """ocio_profile_version: 1
search_path: luts
strictparsing: true
luma: [0.2126, 0.7152, 0.0722]
roles:
  color_picking: sRGB
  compositing_log: log10
  data: raw
  default: raw
  reference: linear
  scene_linear: linear
  texture_paint: sRGB
displays:
  default:
    - !<View> {name: None, colorspace: raw}
  sRGB:
    - !<View> {name: Film, colorspace: sRGB}
colorspaces:
  - !<ColorSpace>
    name: linear
    family: ""
    bitdepth: 32f
    isdata: false
    allocation: lg2
    allocationvars: [-15, 6]
  - !<ColorSpace>
    name: sRGB
    bitdepth: 32f
    isdata: false
    to_reference: !<FileTransform> {src: srgb.spi1d, interpolation: linear}
  - !<ColorSpace>
    name: rec709
    bitdepth: 32f
    isdata: false
    to_reference: !<FileTransform> {src: rec709.spi1d, interpolation: linear}
  - !<ColorSpace>
    name: log10
    bitdepth: 32f
    isdata: false
    to_reference: !<LogTransform> {base: 10, direction: inverse}
  - !<ColorSpace>
    name: raw
    bitdepth: 32f
    isdata: true
"""


def write_nuke_like_config(folder: str, *, srgb_decode_curve=srgb_decode) -> str:
    """An OCIO v1 config file like nuke-default (its LUTs beside it); returns its path.

    `srgb_decode_curve` replaces the sRGB curve, to make a config that only borrows the names.
    """
    luts = os.path.join(folder, "luts")
    os.makedirs(luts, exist_ok=True)
    write_spi1d(os.path.join(luts, "srgb.spi1d"), srgb_decode_curve)
    write_spi1d(os.path.join(luts, "rec709.spi1d"), rec709_decode)
    path = os.path.join(folder, "config.ocio")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(NUKE_LIKE_CONFIG)
    return path


def builtin_matrix(src: str, dst: str) -> np.ndarray:
    """The 3x3 matrix of a linear conversion in the built-in config (rows: output channels)."""
    basis = np.eye(3, dtype=np.float32)[None].copy()
    builtin_config()[0].getProcessor(src, dst).getDefaultCPUProcessor().applyRGB(basis)
    return basis[0].T.astype(np.float64)


def _yaml_matrix(matrix3: np.ndarray) -> str:
    full = np.eye(4)
    full[:3, :3] = matrix3
    return "[" + ", ".join(f"{v:.12g}" for v in full.ravel()) + "]"


ACES_V1_LIKE_CONFIG = """ocio_profile_version: 1
search_path: luts
strictparsing: true
roles:
  color_picking: Utility - sRGB - Texture
  data: Utility - Raw
  reference: ACES - ACES2065-1
  scene_linear: ACES - ACEScg
displays:
  ACES:
    - !<View> {{name: Raw, colorspace: Utility - Raw}}
colorspaces:
  - !<ColorSpace>
    name: ACES - ACES2065-1
    isdata: false
  - !<ColorSpace>
    name: ACES - ACEScg
    isdata: false
    to_reference: !<MatrixTransform> {{matrix: {ap1_to_ap0}}}
  - !<ColorSpace>
    name: Utility - sRGB - Texture
    isdata: false
    to_reference: !<GroupTransform>
      children:
        - !<FileTransform> {{src: srgb.spi1d, interpolation: linear}}
        - !<MatrixTransform> {{matrix: {rec709_to_ap0}}}
  - !<ColorSpace>
    name: Utility - Raw
    isdata: true
"""


def write_aces_v1_like_config(folder: str) -> str:
    """An OCIO v1 config named like Nuke's aces_1.x (ACES2065-1 reference); returns its path."""
    luts = os.path.join(folder, "luts")
    os.makedirs(luts, exist_ok=True)
    write_spi1d(os.path.join(luts, "srgb.spi1d"), srgb_decode)
    text = ACES_V1_LIKE_CONFIG.format(
        ap1_to_ap0=_yaml_matrix(builtin_matrix("ACEScg", "ACES2065-1")),
        rec709_to_ap0=_yaml_matrix(builtin_matrix("Linear Rec.709 (sRGB)", "ACES2065-1")))
    path = os.path.join(folder, "config.ocio")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def rgb_to_xyz_matrix(primaries=REC709_PRIMARIES, white=D65_WHITE) -> np.ndarray:
    """The 3x3 RGB -> CIE XYZ matrix of a set of primaries and white point."""
    def xyz(xy):
        x, y = xy
        return np.array([x / y, 1.0, (1 - x - y) / y])

    columns = np.stack([xyz(p) for p in primaries], axis=1)
    scale = np.linalg.solve(columns, xyz(white))
    return columns * scale


def _matrix_transform(matrix3: np.ndarray) -> "OCIO.MatrixTransform":
    full = np.eye(4)
    full[:3, :3] = matrix3
    return OCIO.MatrixTransform(matrix=[float(v) for v in full.ravel()])


def blender_like_config() -> "OCIO.Config":
    """An OCIO v2 config like Blender's: reference 'Linear Rec.709', interchange roles, no
    'sRGB Encoded Rec.709 (sRGB)'."""
    config = OCIO.Config.CreateRaw()
    config.setName("blender-like")
    config.setMajorVersion(2)
    config.setMinorVersion(0)
    xyz_to_rec709 = np.linalg.inv(rgb_to_xyz_matrix())

    linear = OCIO.ColorSpace(OCIO.REFERENCE_SPACE_SCENE, "Linear Rec.709")
    srgb = OCIO.ColorSpace(OCIO.REFERENCE_SPACE_SCENE, "sRGB")
    srgb.setTransform(OCIO.ExponentWithLinearTransform(gamma=[2.4, 2.4, 2.4, 1.0],
                                                      offset=[0.055, 0.055, 0.055, 0.0]),
                      OCIO.COLORSPACE_DIR_TO_REFERENCE)
    xyz = OCIO.ColorSpace(OCIO.REFERENCE_SPACE_SCENE, "Linear CIE-XYZ D65")
    xyz.setTransform(_matrix_transform(xyz_to_rec709), OCIO.COLORSPACE_DIR_TO_REFERENCE)
    aces = OCIO.ColorSpace(OCIO.REFERENCE_SPACE_SCENE, "ACES2065-1")
    aces.setTransform(OCIO.GroupTransform([
        OCIO.BuiltinTransform("UTILITY - ACES-AP0_to_CIE-XYZ-D65_BFD"),
        _matrix_transform(xyz_to_rec709)]), OCIO.COLORSPACE_DIR_TO_REFERENCE)
    data = OCIO.ColorSpace(OCIO.REFERENCE_SPACE_SCENE, "Non-Color", isData=True)
    for space in (linear, srgb, xyz, aces, data):
        config.addColorSpace(space)
    for role, space in (("scene_linear", "Linear Rec.709"), ("color_picking", "sRGB"),
                        ("data", "Non-Color"), ("aces_interchange", "ACES2065-1"),
                        ("cie_xyz_d65_interchange", "Linear CIE-XYZ D65")):
        config.setRole(role, space)
    config.addDisplayView("sRGB", "Standard", "sRGB")
    config.validate()
    return config


def write_blender_like_config(folder: str) -> str:
    """`blender_like_config` written to a config file; returns its path."""
    path = os.path.join(folder, "config.ocio")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(blender_like_config().serialize())
    return path


def full_range_plate(encoded: bool) -> np.ndarray:
    """An (8, 64, 3) plate over the whole useful range: negatives, 0..1 and overs.

    Scene-linear plates reach 16; encoded ones (sRGB, Rec.709 code values) reach 1.5.
    """
    high = 1.5 if encoded else 16.0
    ramp = np.concatenate([np.linspace(-0.05, 1.0, 48), np.linspace(1.0, high, 16)])
    rng = np.random.default_rng(7)
    rows = [np.stack([ramp, ramp, ramp], axis=-1)]
    rows += [rng.permutation(ramp)[:, None] * rng.random(3)[None, :] * (1 + k) / 7
             for k in range(7)]
    return np.stack(rows).astype(np.float32)


def model_input_differences(host_config: str, pairs) -> dict[str, float]:
    """For each (host space, built-in space) pair: the largest difference between the model
    input from the host config and from the built-in config, on the same plate pixels.

    A host config is right for the model when every difference is below 1e-4.
    """
    differences = {}
    for host_space, builtin_space in pairs:
        theirs_space = builtin_config()[0].getColorSpace(builtin_space)
        plate = full_range_plate(encoded=theirs_space.getEncoding() != "scene-linear")
        ours = ColourTransform(ocio=host_config, input_space=host_space, threads=1)
        theirs = ColourTransform(ocio=BUILTIN_CONFIG, input_space=builtin_space, threads=1)
        differences[host_space] = float(np.abs(ours.to_model(plate)
                                               - theirs.to_model(plate)).max())
    return differences
