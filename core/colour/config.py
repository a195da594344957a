"""The OCIO config and its names: which config, which colour spaces, and the bridges between
configs.

The model was trained on ordinary display-referred video, so every plate is converted from its
own colour space (scene-linear EXR, log DPX, Rec.709 movies...) to the model space, by default
'sRGB Encoded Rec.709 (sRGB)', or through an OCIO display/view (tone-mapped) when asked. This
module decides *what* is converted to what; `transform.ColourTransform` does the conversion.

- Config resolution: the explicit argument > $OCIO > the built-in studio config, each with an
  identity text that changes with the config's contents (part of chain hashes).
- Colour-space names: names, aliases and roles resolved to the canonical name, with close
  matches offered for a typo; a plate's default input space from its file kind
  (`io.formats`).
- Bridges: hosts hand over their own config (Blender's, Nuke's `nuke-default`...), which
  usually has no 'sRGB Encoded Rec.709 (sRGB)'. The plate is then converted in the host's
  config and carried into the built-in config's model space: through the configs' interchange
  roles (OCIO 2.2+), or, for OCIO v1 configs without them, through a standard space known to
  exist in both (`V1_STANDARD_SPACES`). Any other config is refused with a ColourError.

OpenImageIO's own colour functions are never used: its wheel bundles an older OCIO that cannot
read configs written by OCIO 2.6 and silently falls back to a tiny built-in config.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
from typing import Any

import numpy as np
import PyOpenColorIO as OCIO

from ..errors import ColourError, first_line
from ..io.formats import DISPLAY, FORMATS, SCENE_LINEAR, is_movie

BUILTIN_CONFIG = "ocio://studio-config-latest"
DEFAULT_MODEL_SPACE = "sRGB Encoded Rec.709 (sRGB)"
# Examples shown to users who must name their plate's colour space.
INPUT_SPACE_EXAMPLES = ("ACEScct", "ARRI LogC4", "Rec.1886 Rec.709 - Display")

_FLOAT_PIXEL_TYPES = frozenset({"half", "float", "double"})

# Roles through which OCIO 2.2+ converts between two configs (scene- and display-referred).
INTERCHANGE_ROLES = ("aces_interchange", "cie_xyz_d65_interchange")
# OCIO v1 configs have no interchange roles. Each family listed here has pairs of (a space of
# that config, the same space in the built-in config). Plates are converted to the first pair's
# space in their own config, then from its twin to the model space in the built-in config. The
# other pairs are checked on test values before a config is trusted (a config that only borrows
# the names is refused); at least one of them must be present.
V1_STANDARD_SPACES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("nuke-default", (("linear", "Linear Rec.709 (sRGB)"),
                      ("sRGB", "sRGB Encoded Rec.709 (sRGB)"),
                      ("rec709", "Camera Rec.709"))),
    ("ACES 1.x", (("ACES - ACES2065-1", "ACES2065-1"),
                  ("ACES - ACEScg", "ACEScg"),
                  ("Utility - sRGB - Texture", "sRGB Encoded Rec.709 (sRGB)"))),
)
# Largest difference allowed between a v1 config's standard space and the built-in one on the
# test values (the configs' 1D LUTs and curve constants differ by up to ~3e-4).
_STANDARD_SPACE_TOLERANCE = 1e-3


# --------------------------------------------------------------------------- config

def config_source(explicit: str) -> tuple[str, str]:
    """Which config to load and why: (source, origin) with origin in argument/$OCIO/built-in."""
    if explicit:
        return explicit, "argument"
    env = os.environ.get("OCIO", "")
    if env:
        return env, "$OCIO"
    return BUILTIN_CONFIG, "built-in"


def _load_config(source: str, origin: str) -> "OCIO.Config":
    """Load one config from a file path or an ocio:// URI, as a ColourError when it fails."""
    is_uri = source.startswith("ocio://")
    if not is_uri and not os.path.isfile(source):
        raise ColourError(f"OCIO config not found (from {origin})", path=source,
                          hint="give a config.ocio file or a built-in URI such as "
                               f"{BUILTIN_CONFIG}")
    try:
        return OCIO.Config.CreateFromFile(source)
    except Exception as exc:  # OCIO raises its own Exception subclass with a long text
        raise ColourError(f"cannot read OCIO config (from {origin}): {first_line(exc)}",
                          path=source) from exc


def _config_identity(config: "OCIO.Config", source: str) -> str:
    """Stable text that changes whenever the config's contents (or OCIO's version) change."""
    digest = hashlib.sha256()
    digest.update(config.serialize().encode("utf-8"))
    if not source.startswith("ocio://") and os.path.isfile(source):
        with open(source, "rb") as handle:  # the file itself, in case serialisation drops detail
            digest.update(handle.read())
    return f"ocio:{config.getName() or os.path.basename(source)}:{digest.hexdigest()[:20]}" \
           f":v{OCIO.GetVersion()}"


def resolve_config(explicit: str = "") -> tuple["OCIO.Config", str]:
    """Load the OCIO config to use and return it with its identity text.

    Precedence: the explicit argument (a config file or an ocio:// URI) > $OCIO > the built-in
    ``ocio://studio-config-latest``. The identity covers the config contents, so a cache built
    with one config is never reused under another. Raises ColourError for a missing or
    unreadable config.
    """
    source, origin = config_source(explicit)
    config = _load_config(source, origin)
    return config, _config_identity(config, source)


@functools.lru_cache(maxsize=1)
def builtin_config() -> tuple["OCIO.Config", str]:
    """The built-in config that defines the model space, with its identity (loaded once)."""
    config = _load_config(BUILTIN_CONFIG, "built-in")
    return config, _config_identity(config, BUILTIN_CONFIG)


def config_label(config: "OCIO.Config", source: str = "") -> str:
    """How messages name a config: its name and where it came from (v1 configs have no name)."""
    name = config.getName()
    if name and source and name not in source:
        return f"{name!r} ({source})"
    return repr(name or source or "unnamed")


# --------------------------------------------------------------------------- colour spaces

def space_candidates(config: "OCIO.Config") -> list[str]:
    """Every name a user may type for a colour space: names, aliases and roles."""
    names: list[str] = []
    for name in config.getColorSpaceNames(OCIO.SEARCH_REFERENCE_SPACE_ALL, OCIO.COLORSPACE_ALL):
        names.append(name)
        names.extend(config.getColorSpace(name).getAliases())
    names.extend(role for role, _ in config.getRoles())
    return list(dict.fromkeys(names))


def close_matches(wanted: str, candidates: list[str], limit: int = 6) -> list[str]:
    """Candidates that look like `wanted`: substring hits first, then difflib's similar names."""
    low = wanted.lower()
    by_low = {c.lower(): c for c in candidates}
    hits = [c for c in candidates if low and low in c.lower()]
    fuzzy = difflib.get_close_matches(low, list(by_low), n=limit, cutoff=0.5)
    hits.extend(by_low[f] for f in fuzzy)
    return list(dict.fromkeys(hits))[:limit]


def resolve_space(config: "OCIO.Config", name: str, *, what: str = "colour space",
                  label: str = "") -> str:
    """The canonical colour-space name for a name, alias or role; ColourError listing matches.

    `label` names the config in the message (default: its name, see `config_label`).
    """
    space = config.getColorSpace(name) if name else None
    if space is not None:
        return space.getName()
    matches = _canonical(config, close_matches(name, space_candidates(config), limit=12))[:6]
    hint = ("did you mean " + ", ".join(repr(m) for m in matches) + "?") if matches else \
        "run `ociocheck` or see the config's colour space list"
    raise ColourError(f"unknown {what} {name!r} in OCIO config {label or config_label(config)}",
                      hint=hint)


def _canonical(config: "OCIO.Config", names: list[str]) -> list[str]:
    """Names, aliases and roles replaced by the colour-space names they stand for, deduplicated."""
    out = []
    for name in names:
        space = config.getColorSpace(name)
        out.append(space.getName() if space is not None else name)
    return list(dict.fromkeys(out))


def _plate_kind(info_or_path: Any) -> tuple[str, str]:
    """(extension, pixel_type) of a plate from an ImageInfo-like object or a path/pattern."""
    path = getattr(info_or_path, "path", info_or_path)
    ext = os.path.splitext(os.fspath(path or ""))[1].lower()
    fmt = str(getattr(info_or_path, "file_format", "") or "").lower()
    if fmt in ("openexr", "exr"):
        ext = ".exr"
    elif fmt == "dpx":
        ext = ".dpx"
    return ext, str(getattr(info_or_path, "pixel_type", "") or "").lower()


def default_input_space(info_or_path: Any, config: "OCIO.Config") -> str | None:
    """The documented default colour space (a role name) of a plate, or None when it must be said.

    EXR -> the ``scene_linear`` role; 8/16-bit PNG/JPEG/TIFF -> the ``color_picking`` role
    (sRGB-encoded in ACES configs). DPX (often log), float TIFF, movies and anything else return
    None: the caller must demand an explicit --input-colorspace. A role missing from the config
    also returns None. `info_or_path` is an ImageInfo or a file path / sequence pattern.
    """
    ext, pixel_type = _plate_kind(info_or_path)
    kind = FORMATS.get(ext)
    encoding = kind.encoding if kind is not None else ""
    if encoding == SCENE_LINEAR:
        role = "scene_linear"
    elif encoding == DISPLAY and pixel_type not in _FLOAT_PIXEL_TYPES:
        role = "color_picking"
    else:
        return None
    return role if config.hasRole(role) else None


def missing_space_error(plate_path: str) -> ColourError:
    """The ColourError for a plate whose colour space has no default: name it."""
    examples = ", ".join(repr(e) for e in INPUT_SPACE_EXAMPLES)
    ext = os.path.splitext(plate_path)[1].lower()
    kind = "movies" if is_movie(plate_path) else f"'{ext or '?'}' plates"
    return ColourError(f"the colour space of {kind} cannot be guessed; pass --input-colorspace",
                       path=plate_path or None, hint=f"e.g. {examples}")


# --------------------------------------------------------------------------- display / view

def resolve_display_view(config: "OCIO.Config", display: str, view: str) -> tuple[str, str]:
    """Validate a display/view pair, filling the config's default for the one left empty."""
    displays = list(config.getDisplays())
    display = display or config.getDefaultDisplay()
    if display not in displays:
        raise ColourError(f"unknown OCIO display {display!r}",
                          hint="choose one of " + ", ".join(repr(d) for d in displays))
    views = list(config.getViews(display))
    view = view or config.getDefaultView(display)
    if view not in views:
        raise ColourError(f"unknown view {view!r} for display {display!r}",
                          hint="choose one of " + ", ".join(repr(v) for v in views))
    return display, view


# --------------------------------------------------------------------------- between configs

CROSS_CONFIG_HINT = ("give the config aces_interchange / cie_xyz_d65_interchange roles "
                     "(OCIO 2.2+), name its sRGB-encoded Rec.709 space with "
                     f"--model-colorspace, or use {BUILTIN_CONFIG}")


def has_interchange_roles(config: "OCIO.Config") -> bool:
    """True when OCIO can carry colours from this config into another through its roles."""
    return any(config.hasRole(role) for role in INTERCHANGE_ROLES)


def _has_space(config: "OCIO.Config", name: str) -> bool:
    """True when `name` is a colour space of the config itself (not only an alias or role)."""
    space = config.getColorSpace(name)
    return space is not None and space.getName() == name


def _test_values() -> np.ndarray:
    """RGB test values in 0..1 (in gamut in any space): a grey ramp and saturated colours."""
    greys = [[v, v, v] for v in (0.0, 0.002, 0.02, 0.05, 0.18, 0.4, 0.7, 1.0)]
    colours = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.8, 0.3, 0.1], [0.1, 0.5, 0.9]]
    return np.array([greys + colours], dtype=np.float32)


def _largest_difference(config: "OCIO.Config", src: str, dst: str,
                        reference: "OCIO.Config", ref_src: str, ref_dst: str) -> float:
    """Largest difference between src -> dst in `config` and ref_src -> ref_dst in `reference`."""
    ours, theirs = _test_values(), _test_values()
    config.getProcessor(src, dst).getDefaultCPUProcessor().applyRGB(ours)
    reference.getProcessor(ref_src, ref_dst).getDefaultCPUProcessor().applyRGB(theirs)
    difference = np.abs(ours.astype(np.float64) - theirs)
    return float(difference.max()) if np.isfinite(difference).all() else float("inf")


def standard_bridge(config: "OCIO.Config", label: str = "") -> tuple[str, str] | None:
    """For an OCIO v1 config of a known family, (its space, the same space in the built-in
    config) that carries plates into the built-in config; None for any other config.

    A config that uses a family's names must also have its maths: each of the family's other
    standard spaces present is compared with the built-in one on test values, and a mismatch is
    a ColourError (a silently wrong conversion would be worse than none).
    """
    reference, _ = builtin_config()
    label = label or config_label(config)
    for family, pairs in V1_STANDARD_SPACES:
        (bridge, builtin_bridge), checks = pairs[0], pairs[1:]
        present = [(own, ref) for own, ref in checks if _has_space(config, own)]
        if not _has_space(config, bridge) or not present:
            continue
        for own, ref in present:
            try:
                difference = _largest_difference(config, own, bridge,
                                                 reference, ref, builtin_bridge)
            except Exception as exc:  # e.g. a LUT file of the config is missing
                raise ColourError(f"OCIO config {label}: cannot convert {own!r} to {bridge!r}: "
                                  f"{first_line(exc)}") from exc
            if difference > _STANDARD_SPACE_TOLERANCE:
                raise ColourError(
                    f"OCIO config {label} names its colour spaces like {family}, but its {own!r} "
                    f"is not the standard {ref!r} (differs by {difference:.3g})",
                    hint=CROSS_CONFIG_HINT)
        return bridge, builtin_bridge
    return None
