"""A host's colour settings turned into the engine's `ocio` and `input_colorspace` settings.

Nuke and Blender each have their own OCIO config and name a plate's colour space in it. The
engine takes that config and that name as they are (it reaches its own model space from any
config with interchange roles, or from Nuke's v1 configs through their standard spaces), so
the work here is finding which config the host uses and reading the host's way of writing a
colour space ('default (ACEScg)', roles...). Plain arguments only: the host glue reads its
knobs or properties and passes strings, and tests call these functions directly.

Standard library only, Python 3.9+.
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Dict, List, Mapping, Optional

OCIO_URI_PREFIX = "ocio://"
# Nuke names the OCIO built-in configs 'fn-nuke_<built-in name>'.
NUKE_BUILTIN_PREFIX = "fn-nuke_"
# Nuke's own named configs: <nuke install folder>/plugins/OCIOConfigs/configs/<name>/config.ocio
NUKE_CONFIGS_FOLDER = ("plugins", "OCIOConfigs", "configs")
# The config behind Nuke's own colour management (root colorManagement 'Nuke').
NUKE_DEFAULT_CONFIG = "nuke-default"
# Blender's own config, under bpy.utils.resource_path('LOCAL').
BLENDER_CONFIG_FOLDER = ("datafiles", "colormanagement")
# Roles defined by OCIO and the ACES configs, recognised in 'role (space)' menu values.
STANDARD_ROLES = ("aces_interchange", "cie_xyz_d65_interchange", "color_picking", "color_timing",
                  "compositing_linear", "compositing_log", "data", "default", "matte_paint",
                  "reference", "rendering", "scene_linear", "texture_paint")

_DEFAULT_VALUE = re.compile(r"^default\s*\((?P<space>.*)\)$")
_ROLE_VALUE = re.compile(r"^(?P<role>[A-Za-z_][A-Za-z0-9_]*)\s+\((?P<space>.+)\)$")


# --------------------------------------------------------------------------- configs

def _environ(environ: Optional[Mapping[str, str]]) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _existing_config(path: str, origin: str) -> str:
    """`path` when it is a config file or a built-in URI; ValueError saying where it came from."""
    if path.startswith(OCIO_URI_PREFIX) or os.path.isfile(path):
        return path
    raise ValueError(f"OCIO config not found: {path} (from {origin})")


def nuke_config(root_knobs: Mapping[str, str], nuke_dir: str = "",
                environ: Optional[Mapping[str, str]] = None) -> str:
    """The OCIO config a Nuke script uses: a config file path or an ocio:// URI.

    `root_knobs` holds the Root node's `colorManagement`, `OCIO_config` and
    `customOCIOConfigPath` values; `nuke_dir` is Nuke's install folder, where its named configs
    ('nuke-default', 'aces_1.2'...) live. `$OCIO` overrides the script, as it does in Nuke.
    A script without `colorManagement` (older Nuke) uses Nuke's own colour management, which is
    the 'nuke-default' config. Raises ValueError naming what is wrong or missing.
    """
    env = _environ(environ).get("OCIO", "")
    if env:
        return _existing_config(env, "$OCIO")
    management = str(root_knobs.get("colorManagement") or "Nuke")
    if management == "Nuke":
        name = NUKE_DEFAULT_CONFIG
    elif management == "OCIO":
        name = str(root_knobs.get("OCIO_config") or "")
    else:
        raise ValueError(f"unknown Nuke colorManagement {management!r} (expected 'Nuke' or 'OCIO')")
    if not name:
        raise ValueError("the Root node's OCIO_config is empty: choose an OCIO config in "
                         "Project Settings > Color")
    if name == "custom":
        path = os.path.expanduser(str(root_knobs.get("customOCIOConfigPath") or ""))
        if not path:
            raise ValueError("OCIO_config is 'custom' but customOCIOConfigPath is empty")
        return _existing_config(path, "customOCIOConfigPath")
    if name.startswith(OCIO_URI_PREFIX):
        return name
    if name.startswith(NUKE_BUILTIN_PREFIX):
        return OCIO_URI_PREFIX + name[len(NUKE_BUILTIN_PREFIX):]
    if not nuke_dir:
        raise ValueError(f"Nuke's install folder is needed to find its {name!r} OCIO config")
    path = os.path.join(nuke_dir, *NUKE_CONFIGS_FOLDER, name, "config.ocio")
    return _existing_config(path, f"Nuke's {name!r} config")


def blender_config(resource_local: str = "",
                   environ: Optional[Mapping[str, str]] = None) -> str:
    """The OCIO config Blender uses: `$OCIO` when set, else the one inside Blender.

    `resource_local` is `bpy.utils.resource_path('LOCAL')`. Raises ValueError when neither
    gives a config.
    """
    env = _environ(environ).get("OCIO", "")
    if env:
        return _existing_config(env, "$OCIO")
    if not resource_local:
        raise ValueError("Blender's resource folder is needed to find its OCIO config")
    path = os.path.join(resource_local, *BLENDER_CONFIG_FOLDER, "config.ocio")
    return _existing_config(path, "Blender's own config")


# --------------------------------------------------------------------------- colour spaces

def _section(line: str) -> Optional[str]:
    """The top-level YAML key a line opens ('roles', 'colorspaces'...), or None."""
    match = re.match(r"^([A-Za-z_]+):", line)
    return match.group(1) if match else None


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def config_names(path: str) -> Dict[str, List[str]]:
    """The colour-space names, aliases and roles a config file defines, read as text.

    Returns {"spaces": [...], "aliases": [...], "roles": [...]}. Hosts run without
    PyOpenColorIO, so this reads the YAML the way OCIO writes it (block style, one key a line);
    it is for early, clear messages only; the engine decides with OCIO itself.
    """
    names: Dict[str, List[str]] = {"spaces": [], "aliases": [], "roles": []}
    section = None
    key_indent = -1  # indentation of the keys of the colour space being read
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            section = _section(line) or section
            indent = len(line) - len(line.lstrip(" "))
            if section == "roles":
                role = re.match(r"^\s+([A-Za-z_][A-Za-z0-9_]*):\s*\S", line)
                if role:
                    names["roles"].append(role.group(1))
            elif section not in ("colorspaces", "display_colorspaces"):
                continue
            elif line.lstrip().startswith("- !<ColorSpace>"):
                key_indent = indent + 2
                inline = re.search(r"\{\s*name:\s*([^,}]+)", line)  # flow style: {name: ...}
                if inline:
                    names["spaces"].append(_unquote(inline.group(1)))
            elif indent == key_indent:  # a key of the colour space itself, not of a transform
                name = re.match(r"^\s*name:\s*(.+)$", line.rstrip("\r\n"))
                aliases = re.match(r"^\s*aliases:\s*\[(.*)\]", line)
                if name:
                    names["spaces"].append(_unquote(name.group(1)))
                elif aliases:
                    names["aliases"].extend(_unquote(a) for a in aliases.group(1).split(",")
                                            if a.strip())
    return names


def _known_name(value: str, config: str) -> str:
    """`value` as the config spells it (OCIO matches names without case); ValueError if absent.

    Built-in URIs cannot be read without OCIO: their names are left to the engine to check.
    """
    if not config or config.startswith(OCIO_URI_PREFIX) or not os.path.isfile(config):
        return value
    names = config_names(config)
    every = names["spaces"] + names["aliases"] + names["roles"]
    by_lower = {name.lower(): name for name in every}
    if value.lower() in by_lower:
        return by_lower[value.lower()]
    close = difflib.get_close_matches(value, every, n=5, cutoff=0.5)
    hint = (" (did you mean " + ", ".join(repr(c) for c in close) + "?)") if close else ""
    raise ValueError(f"colour space {value!r} is not in the OCIO config {config}{hint}")


def nuke_read_colorspace(value: str, *, config: str = "", file_default: str = "") -> str:
    """The colour-space name the engine needs for a Read node's `colorspace` knob value.

    Forms: a plain name ('ACEScg', 'Gamma1.8', 'ARRI LogC3 (EI800)'); 'default (ACEScg)',
    Nuke's default for that file type, gives the space in brackets; a bare 'default' takes
    `file_default` (the Root's default for that file type); a role ('scene_linear') or a role
    as Nuke lists it ('scene_linear (ACEScg)') gives the role. When `config` is a file, the
    name must be in it. Raises ValueError with a message the node can show.
    """
    text = str(value or "").strip()
    if not text:
        raise ValueError("the Read node has no colorspace")
    if text == "default":
        if not file_default:
            raise ValueError("the Read node's colorspace is 'default' but the default for its "
                             "file type is not known")
        text = file_default
    else:
        default = _DEFAULT_VALUE.match(text)
        role = _ROLE_VALUE.match(text)
        if default:
            text = default.group("space").strip()
            if not text:
                raise ValueError(f"the Read node's colorspace {value!r} names no colour space")
        elif role and role.group("role") in STANDARD_ROLES:
            text = role.group("role")
    return _known_name(text, config)


def nuke_colour_settings(root_knobs: Mapping[str, str], read_colorspace: str, *,
                         nuke_dir: str = "", file_default: str = "",
                         environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The engine's `ocio` and `input_colorspace` settings for a Read node in a Nuke script."""
    config = nuke_config(root_knobs, nuke_dir, environ)
    space = nuke_read_colorspace(read_colorspace, config=config, file_default=file_default)
    return {"ocio": config, "input_colorspace": space}


def blender_colour_settings(image_colorspace: str, *, resource_local: str = "",
                            environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The engine's `ocio` and `input_colorspace` settings for a Blender image.

    `image_colorspace` is the image's `colorspace_settings.name`; `resource_local` is
    `bpy.utils.resource_path('LOCAL')`. Raises ValueError for an empty or unknown name.
    """
    config = blender_config(resource_local, environ)
    name = str(image_colorspace or "").strip()
    if not name:
        raise ValueError("the image has no colour space")
    return {"ocio": config, "input_colorspace": _known_name(name, config)}
