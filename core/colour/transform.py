"""Colour conversion of plates into what the model sees, done entirely with PyOpenColorIO.

The model was trained on ordinary display-referred video, so every plate is converted from its
own colour space (scene-linear EXR, log DPX, Rec.709 movies...) to the model space, by default
'sRGB Encoded Rec.709 (sRGB)', or through an OCIO display/view (tone-mapped) when asked.
After conversion, NaN/Inf pixels become black and values are clamped to [0, 1].

Mattes are data: they are never colour-converted, by this module or anywhere else. Only the
plate RGB passed to `ColourTransform.to_model` is transformed.

Hosts hand over their own config (Blender's, Nuke's `nuke-default`...), which usually has no
'sRGB Encoded Rec.709 (sRGB)'. The plate is then converted in the host's config and carried
into the built-in config's model space: through the configs' interchange roles (OCIO 2.2+), or,
for OCIO v1 configs without them, through a standard space known to exist in both
(`V1_STANDARD_SPACES`). Any other config is refused with a ColourError.

OpenImageIO's own colour functions are never used: its wheel bundles an older OCIO that cannot
read configs written by OCIO 2.6 and silently falls back to a tiny built-in config.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import PyOpenColorIO as OCIO

from ..errors import ColourError, first_line
from ..io.halfs import copy_into
from ..io.formats import MOVIE_EXTENSIONS

BUILTIN_CONFIG = "ocio://studio-config-latest"
DEFAULT_MODEL_SPACE = "sRGB Encoded Rec.709 (sRGB)"
# Examples shown to users who must name their plate's colour space.
INPUT_SPACE_EXAMPLES = ("ACEScct", "ARRI LogC4", "Rec.1886 Rec.709 - Display")

_SCENE_LINEAR_EXTENSIONS = frozenset({".exr", ".sxr"})
_DISPLAY_IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
_FLOAT_PIXEL_TYPES = frozenset({"half", "float", "double"})

# Blocks of rows are shared among this many threads when applying a processor: OCIO releases
# the GIL, and on the 2-core reference machine two threads roughly halve the time of a 2K
# frame (measured: ACES 2.0 SDR display/view ~700 ms on 1 thread, ~340 ms on 2).
_DEFAULT_THREADS = max(1, min(2, os.cpu_count() or 1))
# Pixels per block of `to_model`: each block is cast, converted and clamped while it sits in
# the core's cache. Measured on 2K rows: blocks of 8-16 rows convert at ~8.6 ns/pixel, 32 rows
# at ~20 ns/pixel (beyond what the reference machine's 1 MB L2 holds together with OCIO's own
# working copy), and one call on a whole frame is slower still.
_PIXELS_PER_BLOCK = 16384
# Floats added before each OCIO call (see `_settle_vector_state`): enough for numpy's vector
# loop to run (an 8-float add takes the scalar path and leaves the registers as they were).
_SETTLE = np.ones(256, dtype=np.float32)
# Below this many pixels a frame is converted on the calling thread (thread overhead dominates).
_MIN_PIXELS_TO_SPLIT = 256 * 256
# Largest difference on the model input allowed between OCIO's half-input processor and its
# float processor (the budget for any conversion path is 1e-4).
HALF_TOLERANCE = 5e-5

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

def _config_source(explicit: str) -> tuple[str, str]:
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
    source, origin = _config_source(explicit)
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
    if ext in _SCENE_LINEAR_EXTENSIONS:
        role = "scene_linear"
    elif ext in _DISPLAY_IMAGE_EXTENSIONS and pixel_type not in _FLOAT_PIXEL_TYPES:
        role = "color_picking"
    else:
        return None
    return role if config.hasRole(role) else None


def _missing_space_error(plate_path: str) -> ColourError:
    examples = ", ".join(repr(e) for e in INPUT_SPACE_EXAMPLES)
    ext = os.path.splitext(plate_path)[1].lower()
    kind = "movies" if ext in MOVIE_EXTENSIONS else f"'{ext or '?'}' plates"
    return ColourError(f"the colour space of {kind} cannot be guessed; pass --input-colorspace",
                       path=plate_path or None, hint=f"e.g. {examples}")


# --------------------------------------------------------------------------- display / view

def _resolve_display_view(config: "OCIO.Config", display: str, view: str) -> tuple[str, str]:
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

_CROSS_CONFIG_HINT = ("give the config aces_interchange / cie_xyz_d65_interchange roles "
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
                    hint=_CROSS_CONFIG_HINT)
        return bridge, builtin_bridge
    return None


# --------------------------------------------------------------------------- transform

class ColourTransform:
    """Plate RGB -> model RGB in [0, 1], with one OCIO CPU processor built once and reused.

    input_space: name, alias or role of the plate's colour space; empty = the default for the
    plate type (`default_input_space`), or the scene_linear role when no plate path is given.
    model_space: what the model sees (default 'sRGB Encoded Rec.709 (sRGB)').
    display/view: when either is set, an OCIO DisplayViewTransform (tone-mapped) replaces the
    plain conversion and its display encoding is what the model sees (model_space is unused).

    When the config has no model space (a host's config), the model space is taken from the
    built-in config and `route` says how plates get there: "interchange" (the configs'
    interchange roles) or "standard" (through `bridge`, see `V1_STANDARD_SPACES`); "config"
    means the whole conversion stays in the one config.
    """

    def __init__(self, *, ocio: str = "", input_space: str = "",
                 model_space: str = DEFAULT_MODEL_SPACE, display: str = "", view: str = "",
                 plate_path: str = "", threads: int = 0) -> None:
        self.config, self.config_identity = resolve_config(ocio)
        self.config_label = config_label(self.config, _config_source(ocio)[0])
        self.model_config, self.model_config_identity = self.config, self.config_identity
        self.route = "config"
        self.bridge: tuple[str, str] = ("", "")
        self.input_space = self._input_space(input_space, plate_path)
        self.tone_mapped = bool(display or view)
        if self.tone_mapped:
            self.display, self.view = _resolve_display_view(self.config, display, view)
            self.model_space = ""
        else:
            self.display = self.view = ""
            self.model_space = self._model_space(model_space or DEFAULT_MODEL_SPACE)
        self._cpu = self._build_processor()
        self._half: "OCIO.CPUProcessor | bool | None" = None  # see `half_processor`
        self.threads = threads if threads > 0 else _DEFAULT_THREADS
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._local = threading.local()

    def _input_space(self, input_space: str, plate_path: str) -> str:
        """Canonical input colour-space name, from the user's choice or the plate type."""
        if not input_space:
            input_space = (default_input_space(plate_path, self.config) if plate_path
                           else ("scene_linear" if self.config.hasRole("scene_linear") else ""))
            if not input_space:
                raise _missing_space_error(plate_path)
        return resolve_space(self.config, input_space, what="input colour space",
                             label=self.config_label)

    def _model_space(self, name: str) -> str:
        """Canonical model-space name; switches to the built-in config when the config lacks it.

        Sets `model_config`, `route` and `bridge`. A config that has neither the space nor a way
        into the built-in config is a ColourError naming both.
        """
        reference, reference_identity = builtin_config()
        if self.config.getColorSpace(name) is not None or reference.getColorSpace(name) is None:
            return resolve_space(self.config, name, what="model colour space",
                                 label=self.config_label)
        self.model_config, self.model_config_identity = reference, reference_identity
        if has_interchange_roles(self.config):
            self.route = "interchange"
        else:
            bridge = standard_bridge(self.config, self.config_label)
            if bridge is None:
                raise ColourError(
                    f"OCIO config {self.config_label} has no model colour space {name!r} and no "
                    f"interchange roles or known standard spaces to reach it in {BUILTIN_CONFIG}",
                    hint=_CROSS_CONFIG_HINT)
            self.route, self.bridge = "standard", bridge
        return resolve_space(reference, name, what="model colour space")

    def processor(self) -> "OCIO.Processor":
        """The OCIO processor from the plate's space to what the model sees (before the NaN/Inf
        repair and the clamp), for callers that apply it themselves."""
        if self.tone_mapped:
            transform = OCIO.DisplayViewTransform(src=self.input_space, display=self.display,
                                                  view=self.view)
            return self.config.getProcessor(transform)
        if self.route == "config":
            return self.config.getProcessor(self.input_space, self.model_space)
        if self.config.getColorSpace(self.input_space).isData():
            # a data (non-colour) plate passes unchanged, as it would within one config
            return self.config.getProcessor(self.input_space, self.input_space)
        if self.route == "interchange":
            return OCIO.Config.GetProcessorFromConfigs(self.config, self.input_space,
                                                       self.model_config, self.model_space)
        own, builtin = self.bridge
        return OCIO.Config.GetProcessorFromConfigs(self.config, self.input_space, own,
                                                   self.model_config, self.model_space, builtin)

    def _build_processor(self) -> "OCIO.CPUProcessor":
        """The CPU processor for this transform, as a ColourError when OCIO refuses it."""
        try:
            return self.processor().getDefaultCPUProcessor()
        except Exception as exc:
            raise ColourError(f"OCIO cannot build the transform {self.describe()} from config "
                              f"{self.config_label}: {first_line(exc)}") from exc

    def describe(self) -> str:
        """Human-readable summary, e.g. "ACEScg -> sRGB Encoded Rec.709 (sRGB)"."""
        if self.tone_mapped:
            return f"{self.input_space} -> {self.display} / {self.view}"
        text = f"{self.input_space} -> {self.model_space}"
        if self.route == "interchange":
            return f"{text} ({BUILTIN_CONFIG}, through the interchange roles)"
        if self.route == "standard":
            return f"{text} ({BUILTIN_CONFIG}, through {self.bridge[0]!r} = {self.bridge[1]!r})"
        return text

    @property
    def identity(self) -> str:
        """Stable text covering config identity, spaces and view (part of chain hashes).

        A conversion into the built-in config also names that config and the route taken.
        """
        text = (f"colour/v1|{self.config_identity}|in={self.input_space}|model={self.model_space}"
                f"|display={self.display}|view={self.view}|nonfinite=0|clamp=0..1")
        if self.half_processor() is not None:
            text += "|half=ocio-f16"
        if self.route == "config":
            return text
        via = "interchange" if self.route == "interchange" else "standard:" + "=".join(self.bridge)
        return f"{text}|model_config={self.model_config_identity}|via={via}"

    # ---- applying

    def half_processor(self) -> "OCIO.CPUProcessor | None":
        """OCIO's processor that reads half plates as they are decoded, or None when it does
        not match the float processor within `HALF_TOLERANCE` (half plates then take the
        float path).

        Built for half input, OCIO turns the per-channel curves that come first into one
        table of every half value and skips the cast to float: a 2K linear Rec.709 plate
        converted in 19 ms of CPU instead of 38 on the reference machine. It is only used
        when it starts with such a table: where a matrix comes first (ACEScg) it computes in
        floats as the float path does, and measured slower (62 ms against 40). Checked once
        per transform on every half value of each channel, the grey axis and the probe
        pixels, as the model sees them (NaN/Inf zeroed, clamped); log curves (ACEScct, LogC)
        are refused: their tables saturate where the float path overflows to NaN.
        """
        if self._half is None:  # decided once; every block of every frame asks
            with self._pool_lock:
                if self._half is None:
                    self._half = _checked_half_processor(self.processor(), self._cpu) or False
        return self._half or None

    def _convert_block(self, src: np.ndarray, dst: np.ndarray) -> int:
        """Convert one block of rows of `src` into float32 `dst`; returns its NaN/Inf pixels.

        Everything a pixel goes through happens while the block is in cache: the cast to
        float32 (or OCIO's half processor reading the half block itself), the OCIO processor,
        the NaN/Inf repair and the clamp. The bad-pixel masks are only built for a block whose
        sum is not finite (almost never), so a clean frame costs one cheap reduction per pass
        instead of a full-frame `isfinite`.
        """
        half = self.half_processor() if src.dtype == np.float16 else None
        if half is not None:
            bad_in = _nonfinite_pixels(src)
            _settle_vector_state()
            _apply_half(half, src, dst)
        else:
            copy_into(dst, src)
            bad_in = _nonfinite_pixels(dst)
            _settle_vector_state()
            self._cpu.applyRGB(dst)
        bad = _nonfinite_pixels(dst)
        if bad_in is not None:
            bad = bad_in if bad is None else (bad | bad_in)
        count = 0
        if bad is not None:
            dst[bad] = 0.0
            count = int(bad.sum())
        np.clip(dst, 0.0, 1.0, out=dst)
        return count

    def _worker_pool(self) -> ThreadPoolExecutor:
        """The threads shared by every call (created on first use; calls may be concurrent)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="vrmbg-ocio")
            return self._pool

    @property
    def last_bad_pixels(self) -> int:
        """NaN/Inf pixel count of this thread's last `to_model` call (the caller warns)."""
        return getattr(self._local, "bad_pixels", 0)

    def to_model(self, rgb: np.ndarray, *, threads: int = 0) -> np.ndarray:
        """Convert plate RGB (H, W, 3) to model RGB: float32, NaN/Inf -> 0, clamped to [0, 1].

        As `convert`, for callers that only want the pixels; `last_bad_pixels` then holds
        this thread's count of NaN/Inf pixels.
        """
        out, bad = self.convert(rgb, threads=threads)
        self._local.bad_pixels = bad
        return out

    def convert(self, rgb: np.ndarray, *, threads: int = 0) -> tuple[np.ndarray, int]:
        """Plate RGB (H, W, 3) -> (model RGB in [0, 1] as float32, NaN/Inf pixel count).

        `rgb` may be float16 (a half plate as decoded) or float32 and is never modified.
        The count is of pixels that held NaN/Inf before or after conversion (set to 0; the
        caller warns about them). `threads` caps the threads used for this call (0 = the
        transform's own count; 1 = the calling thread only, for callers that already convert
        several frames at once). Safe to call from several threads at once (the OCIO CPU
        processor is thread-safe).
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected (H, W, 3) RGB, got shape {rgb.shape}")
        out = np.empty(rgb.shape, dtype=np.float32)
        height = rgb.shape[0]
        rows = max(1, _PIXELS_PER_BLOCK // max(1, rgb.shape[1]))
        bounds = list(range(0, height, rows)) + [height]
        pairs = [(rgb[a:b], out[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        threads = min(threads or self.threads, self.threads)
        if threads <= 1 or rgb.shape[0] * rgb.shape[1] < _MIN_PIXELS_TO_SPLIT:
            bad = sum(self._convert_block(src, dst) for src, dst in pairs)
        else:
            bad = sum(self._worker_pool().map(lambda pair: self._convert_block(*pair), pairs))
        return out, int(bad)

    def convert_pixels(self, rgb: np.ndarray, rows: np.ndarray, cols: np.ndarray, *,
                       threads: int = 0) -> tuple[np.ndarray, int]:
        """As `convert`, for the pixels at `rows` x `cols` only (what a resize reads): the
        (H, W, 3) result holds 0 everywhere else.

        The NaN/Inf count covers the whole plate as decoded, and the converted pixels after
        conversion too: a finite value that only turns into NaN in the conversion (a log code
        value far past its curve, say) is counted where it was converted, so the warning can
        name fewer pixels than a full conversion would.
        """
        part = _gather(rgb, rows, cols)
        converted, bad_part = self.convert(part, threads=threads)
        out = np.zeros(rgb.shape, np.float32)
        _scatter(out, rows, cols, converted)
        return out, _count(_nonfinite_pixels(rgb)) + bad_part - _count(_nonfinite_pixels(part))

    @property
    def scene_linear_space(self) -> str:
        """The config's scene-linear colour space (its `scene_linear` role), by name."""
        if not self.config.hasRole("scene_linear"):
            raise ColourError(f"OCIO config {self.config.getName()!r} has no scene_linear role",
                              hint="RGBA output is premultiplied in scene-linear")
        return resolve_space(self.config, "scene_linear")

    def to_scene_linear(self, rgb: np.ndarray) -> np.ndarray:
        """Plate RGB (H, W, 3) in the config's scene-linear space, float32, NaN/Inf -> 0.

        Premultiplying by a matte is only right on linear light: a log (ACEScct, LogC) or
        video plate is converted first; a plate already in scene-linear is only copied.
        Values are not clamped (scene-linear light goes above 1).
        """
        out = np.array(rgb, dtype=np.float32, copy=True, order="C")
        target = self.scene_linear_space
        if self.input_space != target:
            try:
                processor = self.config.getProcessor(self.input_space, target)
            except Exception as exc:
                raise ColourError(f"OCIO cannot convert {self.input_space} to {target}: "
                                  f"{first_line(exc)}") from exc
            processor.getDefaultCPUProcessor().applyRGB(out)
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return out

    def close(self) -> None:
        """Stop the worker threads (also done when the object is garbage collected)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)


def _settle_vector_state() -> None:
    """Leave the calling thread's AVX registers clean before OCIO runs.

    OCIO's CPU curves are SSE code. After an EXR decode on the same thread the upper halves
    of the AVX registers are left dirty, and every SSE instruction then pays for it: a 2K
    ACEScg -> sRGB conversion measured 74 ms instead of 27 ms on the reference machine. A
    numpy vector loop ends with the instruction that clears that state, so a small add does
    it in about a microsecond; no pixel value is involved.
    """
    _SETTLE + _SETTLE


def _apply_half(processor: "OCIO.CPUProcessor", src: np.ndarray, dst: np.ndarray) -> None:
    """Apply a half-input processor to (h, w, 3) half `src` into float32 `dst`.

    OCIO reads interleaved pixels with gaps (the RGB of an RGBA plate) in place; any other
    layout (planar, Fortran order, reversed axes) is copied to one it can read first.
    """
    height, width = src.shape[:2]
    ys, xs, cs = src.strides
    xs = xs if width > 1 else 3 * cs  # a length-1 axis may carry any stride in numpy
    ys = ys if height > 1 else width * xs
    if cs != src.itemsize or xs < 3 * cs or ys < width * xs:
        src = np.ascontiguousarray(src)
        ys, xs, cs = width * 3 * src.itemsize, 3 * src.itemsize, src.itemsize
    processor.apply(OCIO.PackedImageDesc(src, width, height, 3, OCIO.BIT_DEPTH_F16, cs, xs, ys),
                    OCIO.PackedImageDesc(dst, width, height, 3))


def half_check_pixels() -> np.ndarray:
    """(N, 1, 3) half pixels a half processor must get right: every half value in each
    channel alone (the others at a mid grey) and on the grey axis, and the probe pixels."""
    every = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    rows = [np.repeat(every[:, None], 3, axis=1)]
    for channel in range(3):
        row = np.full((every.size, 3), 0.18, np.float16)
        row[:, channel] = every
        rows.append(row)
    with np.errstate(over="ignore"):  # probes beyond the half range become Inf, as in a plate
        rows.append(probe_pixels()[:, 0, :].astype(np.float16))
    return np.ascontiguousarray(np.concatenate(rows)[:, None, :])


def _as_the_model_sees(values: np.ndarray, bad_in: np.ndarray) -> np.ndarray:
    """Converted float32 pixels with NaN/Inf (in or out) zeroed and clamped to [0, 1]."""
    out = np.where(bad_in[..., None] | ~np.isfinite(values), 0.0, values)
    return np.clip(out, 0.0, 1.0)


def _checked_half_processor(processor: "OCIO.Processor",
                            reference: "OCIO.CPUProcessor") -> "OCIO.CPUProcessor | None":
    """The half-input CPU processor of `processor` when it starts with a table of every half
    value (else it is no faster than the float path: measured slower on ACEScg plates) and
    agrees with `reference` (the float processor) within HALF_TOLERANCE on
    `half_check_pixels`; None otherwise."""
    depths = (OCIO.BIT_DEPTH_F16, OCIO.BIT_DEPTH_F32, OCIO.OPTIMIZATION_DEFAULT)
    try:
        ops = list(processor.getOptimizedProcessor(*depths).createGroupTransform())
        if not (ops and isinstance(ops[0], OCIO.Lut1DTransform)
                and ops[0].getInputHalfDomain()):
            return None
        half = processor.getOptimizedCPUProcessor(*depths)
    except Exception:  # noqa: BLE001 - no half processor: the float path serves half plates
        return None
    pixels = half_check_pixels()
    theirs = pixels.astype(np.float32)
    reference.applyRGB(theirs)
    ours = np.empty(pixels.shape, np.float32)
    _apply_half(half, pixels, ours)
    bad_in = ~np.isfinite(pixels).all(axis=2)
    with np.errstate(invalid="ignore"):
        difference = np.abs(_as_the_model_sees(ours, bad_in) - _as_the_model_sees(theirs, bad_in))
    return half if float(difference.max()) <= HALF_TOLERANCE else None


def probe_pixels() -> np.ndarray:
    """(N, 1, 3) float32 values spanning what plates hold: scene-linear light from 1e-6 to
    1e4 with its negatives, log and display code values, and random colours, so channels
    differ and the matrices mix them (saturated colours, in code values or in light, are where
    a matrix cancels large values, and the tables need the most care)."""
    rng = np.random.default_rng(20261203)
    magnitudes = np.geomspace(1e-6, 1e4, 4096, dtype=np.float64)
    ramps = [np.linspace(-0.25, 1.25, 8192), magnitudes, -magnitudes,
             rng.uniform(-0.1, 2.0, 8192), rng.uniform(0.0, 1.0, 8192),
             np.exp(rng.uniform(np.log(1e-4), np.log(64.0), 8192))]
    grey = np.concatenate(ramps).astype(np.float32)
    colours = np.stack([grey, rng.permutation(grey), rng.permutation(grey)], axis=-1)
    code_values = rng.uniform(-0.05, 1.4, (65536, 3))
    # each channel on its own from deep shadow to a bright highlight: saturated light that a
    # gamut matrix turns into small differences of large values
    saturated = np.exp(rng.uniform(np.log(1e-3), np.log(64.0), (65536, 3)))
    greys = np.repeat(grey[:, None], 3, axis=1)
    values = np.concatenate([greys, colours, code_values, saturated]).astype(np.float32)
    return np.ascontiguousarray(values[:, None, :])


def _gather(rgb: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The (len(rows), len(cols), 3) pixels of `rgb` at `rows` x `cols`, C-contiguous.

    Rows are taken first (whole rows, any layout), then columns with each pixel moved as one
    item, several times faster than numpy's two-axis fancy indexing.
    """
    picked = np.ascontiguousarray(np.take(rgb, rows, axis=0))
    pixel = np.dtype((np.void, 3 * picked.itemsize))
    flat = picked.view(pixel).reshape(picked.shape[:2])
    return np.take(flat, cols, axis=1).view(picked.dtype).reshape(len(rows), len(cols), 3)


def _scatter(out: np.ndarray, rows: np.ndarray, cols: np.ndarray, part: np.ndarray) -> None:
    """Put the (len(rows), len(cols), 3) `part` into C-contiguous `out` at `rows` x `cols`."""
    pixel = np.dtype((np.void, 3 * out.itemsize))
    target = out.view(pixel).reshape(out.shape[:2])
    target[rows[:, None], cols] = np.ascontiguousarray(part).view(pixel).reshape(part.shape[:2])


def _count(mask: np.ndarray | None) -> int:
    """Pixels set in a `_nonfinite_pixels` mask (0 for None)."""
    return 0 if mask is None else int(mask.sum())


def _nonfinite_pixels(rgb: np.ndarray) -> np.ndarray | None:
    """Boolean (H, W) mask of pixels with any NaN/Inf, or None when every value is finite."""
    if rgb.dtype == np.float16:  # NaN/Inf halves are the ones with every exponent bit set
        if int((rgb.view(np.uint16) & 0x7FFF).max(initial=0)) < 0x7C00:
            return None
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # huge or +/-inf: checked below
            total = rgb.sum()
        if np.isfinite(total):  # a finite sum means finite values; a huge one falls through
            return None
    finite = np.isfinite(rgb)
    if finite.all():
        return None
    return ~finite.all(axis=2)
