"""Colour conversion of plates into what the model sees, done entirely with PyOpenColorIO.

`ColourTransform` converts a plate from its own colour space to what the model sees (the model
space, or an OCIO display/view), on the CPU, with one OCIO processor built once and reused.
What is converted to what (the config, the names, the bridges between a host's config and the
built-in one) is decided in `config`; half plates may take OCIO's half-input processor
(`half`); large plates at a small inference size convert only what the resize reads
(`sparse`). After conversion, NaN/Inf pixels become black and values are clamped to [0, 1].

Mattes are data: they are never colour-converted, by this module or anywhere else. Only the
plate RGB passed to `ColourTransform.to_model` is transformed.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import PyOpenColorIO as OCIO

from ..errors import ColourError, first_line
from ..io.halfs import copy_into
from .config import (BUILTIN_CONFIG, CROSS_CONFIG_HINT, DEFAULT_MODEL_SPACE, builtin_config,
                     config_label, config_source, default_input_space, has_interchange_roles,
                     missing_space_error, resolve_config, resolve_display_view, resolve_space,
                     standard_bridge)
from .half import apply_half, checked_half_processor
from .sparse import gather, scatter

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
        self.config_label = config_label(self.config, config_source(ocio)[0])
        self.model_config, self.model_config_identity = self.config, self.config_identity
        self.route = "config"
        self.bridge: tuple[str, str] = ("", "")
        self.input_space = self._input_space(input_space, plate_path)
        self.tone_mapped = bool(display or view)
        if self.tone_mapped:
            self.display, self.view = resolve_display_view(self.config, display, view)
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
                raise missing_space_error(plate_path)
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
                    hint=CROSS_CONFIG_HINT)
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
        not match the float processor within `half.HALF_TOLERANCE` (half plates then take the
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
                    self._half = checked_half_processor(self.processor(), self._cpu) or False
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
            apply_half(half, src, dst)
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
        part = gather(rgb, rows, cols)
        converted, bad_part = self.convert(part, threads=threads)
        out = np.zeros(rgb.shape, np.float32)
        scatter(out, rows, cols, converted)
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
