"""The script's colour management as the engine's `ocio` and `input_colorspace` settings.

The Root node says which OCIO config the script uses (Nuke's own named configs, the OCIO
built-ins Nuke calls `fn-nuke_...`, a custom config path, or `$OCIO`); a Read node's
`colorspace` knob names the plate's space in it ('ACEScg', 'default (ACEScg)', a role...).
`plugin.host_colour` turns those strings into settings; this module only reads the knobs.
"""

from __future__ import annotations

import os
from typing import Any, Dict

import nuke

from .plugin import host_colour

ROOT_KNOBS = ("colorManagement", "OCIO_config", "customOCIOConfigPath")
# The Root knob giving the default colour space of each kind of file (a Read on 'default').
_DEFAULT_KNOB_BY_EXTENSION = {".exr": "floatLut", ".hdr": "floatLut", ".sxr": "floatLut",
                              ".dpx": "logLut", ".cin": "logLut",
                              ".tif": "int16Lut", ".tiff": "int16Lut", ".png": "int8Lut",
                              ".jpg": "int8Lut", ".jpeg": "int8Lut"}


def _root_value(name: str) -> str:
    knob = nuke.root().knob(name)
    return str(knob.value()) if knob is not None else ""


def _root_knobs() -> Dict[str, str]:
    return {name: _root_value(name) for name in ROOT_KNOBS}


def _nuke_dir() -> str:
    return os.path.dirname(nuke.EXE_PATH) if nuke.EXE_PATH else ""


def read_colour(read: Any) -> Dict[str, str]:
    """`ocio` and `input_colorspace` for the plate a Read node reads; ValueError explains."""
    path = nuke.filename(read) or ""
    extension = os.path.splitext(path)[1].lower()
    default_knob = _DEFAULT_KNOB_BY_EXTENSION.get(extension, "")
    if read["raw"].value():  # raw data: the comp sees the file's values as the working space
        space = _root_value("workingSpaceLUT")
    else:
        space = read["colorspace"].value()
    return host_colour.nuke_colour_settings(
        _root_knobs(), space, nuke_dir=_nuke_dir(),
        file_default=_root_value(default_knob) if default_knob else "")


def working_colour() -> Dict[str, str]:
    """`ocio` and `input_colorspace` for pixels in the script's working space (scene-linear)."""
    return host_colour.nuke_colour_settings(_root_knobs(), _root_value("workingSpaceLUT"),
                                            nuke_dir=_nuke_dir())
