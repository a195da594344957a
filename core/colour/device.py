"""The plate colour conversion rebuilt to run on the inference device.

On a GPU host the OCIO CPU processor is the largest CPU cost of a frame after the decode
(~35 ms of CPU per 2K frame against ~50 ms to decode it), and the resize that follows already
runs on the GPU. `DeviceColour` does the same conversion on the device, still at plate size
before the resize as the card's loop has it:

- the transform's ops come from OCIO's optimised processor for the plate's conversion;
- a matrix is applied as OCIO's CPU processor applies it, product by product in float32
  (the same bits; no matrix-multiply kernel, so no reduced-precision matmul mode touches it);
- a run of per-channel ops (log, exponent, range, 1D LUT...) becomes one table per channel,
  filled by OCIO itself at knots spaced on the float's own bits (every float whose low 16, 13
  or 10 bits are zero, the coarsest that passes), read back by linear interpolation: the same
  relative spacing at every magnitude, from denormals to 1e38;
- on half plates the first such run is looked up exactly: OCIO fills an entry for every half
  value, so a log plate's curve into scene-linear is OCIO's own result;
- NaN/Inf pixels become black and values are clamped to [0, 1], as on the CPU path.

A transform with any other op (a 3D LUT, the fixed functions of the ACES output transforms)
has no device form, and a conversion that does not match OCIO's CPU processor within
`TOLERANCE` on probe pixels is never used: `build_device_colour` returns None and the engine
keeps the CPU path.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Sequence

import numpy as np
import PyOpenColorIO as OCIO
import torch

from .probes import probe_pixels

# The largest difference from the OCIO CPU processor allowed on the model input on the probe
# pixels (the budget is 1e-4; half plates of every studio-config space measured <= 5.5e-6).
TOLERANCE = 5e-5
# Identity of this conversion in chain hashes: mattes made through it are kept apart from the
# CPU path's (their model inputs differ by up to TOLERANCE).
DEVICE_COLOUR_ID = "device-tables/v1"

# Ops that act on each channel alone: a run of them is one table per channel.
_PER_CHANNEL_OPS = (OCIO.ExponentTransform, OCIO.ExponentWithLinearTransform,
                    OCIO.LogTransform, OCIO.LogAffineTransform, OCIO.LogCameraTransform,
                    OCIO.RangeTransform, OCIO.Lut1DTransform)
# Knots of the tables, coarsest first: the floats whose low 16 bits are zero (the bfloat16
# values, 65536 knots a channel), then 13 and 10 (4M knots a channel). Interpolation between
# knots costs about (step / 8) squared of a curve's relative output: fine for a display curve
# at the coarsest, while a log plate's exponential into scene-linear needs the finest.
_SHIFTS = (16, 13, 10)
_HALF_KNOTS = 1 << 16  # every half bit pattern
# Pixels converted at once (a 4K frame goes in bands of 512 rows).
_BAND_PIXELS = 1 << 21


class DeviceColour:
    """Plate RGB -> model RGB on a torch device: matrices and per-channel tables in order."""

    def __init__(self, steps: Sequence[tuple[str, np.ndarray, Any]],
                 device: torch.device | str, description: str = "",
                 half_first: np.ndarray | None = None) -> None:
        """`steps` in order: ("matrix", 3x3, offset) and ("tables", (3, knots + 1) float32,
        shift), the table's knots being the floats whose low `shift` bits are zero.
        `half_first` ((3, 65536) float32, the first step's ops at every half value) replaces
        the first table for half plates, exactly: a half plate's value is one of its entries."""
        self.device = torch.device(device)
        self.description = description
        self.inputs: frozenset[str] = frozenset({"half", "float"})  # set by the builder
        self._steps: list[tuple[str, Any, Any]] = []
        for kind, values, extra in steps:
            if kind == "matrix":  # plain numbers: each is one scalar multiply on the device
                self._steps.append((kind, np.asarray(values, dtype=np.float32).tolist(),
                                    np.asarray(extra, dtype=np.float32).tolist()))
            else:
                self._steps.append((kind, self._flat(values), extra))
        self._half_first = None if half_first is None else self._flat(half_first)
        self._identity: str | None = None

    def _flat(self, table: np.ndarray) -> torch.Tensor:
        """A (3, n) table as one flat float32 tensor on the device (channel c at c * n)."""
        return torch.as_tensor(np.ascontiguousarray(table, dtype=np.float32).reshape(-1),
                               device=self.device)

    @property
    def identity(self) -> str:
        """Text for chain identities (the CPU path has none, so older chains still match):
        the plates it takes and a digest of every step, tables included (OCIO fills them on
        this host's CPU), so a chain is only continued by the same conversion."""
        if self._identity is None:
            digest = hashlib.sha256(",".join(sorted(self.inputs)).encode())
            for kind, values, extra in self._steps:
                digest.update(kind.encode())
                digest.update(repr(extra).encode())
                digest.update(values.cpu().numpy().tobytes() if torch.is_tensor(values)
                              else repr(values).encode())
            if self._half_first is not None:
                digest.update(self._half_first.cpu().numpy().tobytes())
            self._identity = f"{DEVICE_COLOUR_ID}:{digest.hexdigest()[:16]}"
        return self._identity

    def handles(self, dtype: Any) -> bool:
        """Whether plates decoded as `dtype` (numpy or torch float16/float32) convert here
        within TOLERANCE; the others keep the CPU path."""
        half = dtype in (np.float16, torch.float16) or str(dtype).endswith("float16")
        return ("half" if half else "float") in self.inputs

    def convert(self, rgb: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Plate RGB (H, W, 3), half or float, on any device -> ((3, H, W) float32 model RGB
        in [0, 1] on this device, NaN/Inf pixel count).

        Planar, as the model's resize wants it. The count is of pixels that held NaN/Inf before
        or after conversion (set to 0; the caller warns about them), as on the CPU path.
        """
        if rgb.dim() != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected (H, W, 3) RGB, got shape {tuple(rgb.shape)}")
        with torch.inference_mode():
            source = rgb.to(self.device).permute(2, 0, 1).contiguous()
            out = torch.empty(source.shape, dtype=torch.float32, device=self.device)
            rows = max(1, _BAND_PIXELS // max(1, source.shape[2]))
            bad = 0
            for top in range(0, source.shape[1], rows):
                bad += self._convert_band(source[:, top:top + rows], out[:, top:top + rows])
            return out, bad

    def _convert_band(self, source: torch.Tensor, out: torch.Tensor) -> int:
        """Convert one band of rows of `source` into `out` (clamped); returns its bad pixels.

        Bands keep the tables' index tensors small: a whole 4K frame would need ~0.5 GB of
        them at once, on every reader thread."""
        finite_in = torch.isfinite(source).all(dim=0)
        steps = self._steps
        if source.dtype == torch.float16 and self._half_first is not None:
            planes, steps = self._half_lookup(source), steps[1:]
        else:
            planes = source.to(torch.float32)
        for kind, values, extra in steps:
            planes = (self._matrix(planes, values, extra) if kind == "matrix"
                      else self._tables(planes, values, extra))
        good = finite_in & torch.isfinite(planes).all(dim=0)
        bad = int((~good).sum().item())
        if bad:
            planes = torch.where(good, planes, torch.zeros((), device=self.device))
        torch.clamp(planes, 0.0, 1.0, out=out)
        return bad

    def _channel_starts(self, size: int) -> torch.Tensor:
        """Where each channel's table begins in a flat table of 3 x `size` entries."""
        return torch.arange(3, dtype=torch.int64, device=self.device).view(3, 1, 1) * size

    def _half_lookup(self, planes: torch.Tensor) -> torch.Tensor:
        """The first step on half planes: each value's own entry (no interpolation)."""
        index = planes.view(torch.int16).to(torch.int64) & 0xFFFF
        return self._half_first[index + self._channel_starts(_HALF_KNOTS)]

    @staticmethod
    def _matrix(planes: torch.Tensor, m: list, o: list) -> torch.Tensor:
        """out[c] = ((m[c][0] * r + m[c][1] * g) + m[c][2] * b) + o[c] in float32, each
        product rounded on its own: the OCIO CPU processor's order, so the same bits."""
        rows = []
        for c in range(3):
            row = planes[0] * m[c][0] + planes[1] * m[c][1]
            row = row + planes[2] * m[c][2]
            rows.append(row + o[c] if o[c] else row)
        return torch.stack(rows)

    def _tables(self, planes: torch.Tensor, table: torch.Tensor, shift: int) -> torch.Tensor:
        """Each channel through its table, interpolated between the two neighbouring knots
        (the floats whose low `shift` bits are zero)."""
        bits = planes.view(torch.int32)
        knot = ((bits >> shift) & ((1 << (32 - shift)) - 1)).to(torch.int64)
        knot += self._channel_starts(table.numel() // 3)
        frac = (bits & ((1 << shift) - 1)).to(torch.float32).mul_(1.0 / (1 << shift))
        low = table[knot]
        high = table[knot + 1]
        between = low + (high - low) * frac
        # a knot itself, or an interval whose ends are equal (both Inf where OCIO overflows),
        # is its entry: Inf - Inf or Inf * 0 would make a NaN that OCIO does not
        return torch.where((frac == 0) | (high == low), low, between)


_BUILT: dict[tuple[str, str], "DeviceColour | None"] = {}
_BUILT_LOCK = threading.Lock()


def device_colour_for(colour: Any, device: torch.device | str) -> DeviceColour | None:
    """`build_device_colour`, built once per colour identity and device in this process (a
    worker opens many sessions of the same shot; building the finest tables takes ~1 s)."""
    identity = getattr(colour, "identity", None)
    if identity is None:  # a stand-in transform (tests, the demo's checks): nothing to share
        return _built_or_none(colour, device)
    key = (str(identity), str(torch.device(device)))
    with _BUILT_LOCK:
        if key not in _BUILT:
            _BUILT[key] = _built_or_none(colour, device)
        return _BUILT[key]


def _built_or_none(colour: Any, device: torch.device | str) -> DeviceColour | None:
    """`build_device_colour`, with a failure of the device itself (out of memory, a driver
    error) meaning the CPU path, never a session that cannot open."""
    try:
        return build_device_colour(colour, device)
    except (RuntimeError, MemoryError):
        return None


def build_device_colour(colour: Any, device: torch.device | str) -> DeviceColour | None:
    """The device form of `colour` (a ColourTransform), or None when it has none.

    None when an op of the transform is neither a matrix nor per-channel. Otherwise the
    coarsest tables that bring half and float plates within TOLERANCE of the OCIO CPU
    processor on probe pixels, run on `device` itself; when no density does for float plates
    (a log plate's exponential feeding a matrix that cancels large values), a converter for
    half plates alone, whose first table is exact; None when neither passes.
    """
    try:
        processor = colour.processor().getOptimizedProcessor(OCIO.OPTIMIZATION_DEFAULT)
    except Exception:  # the CPU path reports OCIO's own error
        return None
    transforms = list(processor.createGroupTransform())
    probe = probe_pixels()
    halves = probe.astype(np.float16)
    halves_only = None
    for shift in _SHIFTS:
        steps = _steps(colour.config, transforms, shift)
        if steps is None:
            return None
        first = bool(steps) and steps[0][0] == "tables" and _first_run(transforms)
        converter = DeviceColour(steps, device, colour.describe(),
                                 half_first=_sample_halves(colour.config, first)
                                 if first else None)
        half_ok = largest_difference(converter, colour, halves) <= TOLERANCE
        if half_ok and largest_difference(converter, colour, probe) <= TOLERANCE:
            return converter
        if half_ok and halves_only is None:
            converter.inputs = frozenset({"half"})
            halves_only = converter
        if not any(kind == "tables" for kind, _, _ in steps):
            break  # matrices alone: finer tables cannot help
    return halves_only


def largest_difference(converter: DeviceColour, colour: Any,
                       pixels: np.ndarray | None = None) -> float:
    """Largest absolute difference between `converter` and the OCIO CPU path of `colour` on
    `pixels` ((N, 1, 3) half or float; the probe pixels by default). Non-finite pixels are
    zeroed by both, so they compare as equal."""
    pixels = probe_pixels() if pixels is None else pixels
    reference, _ = colour.convert(pixels, threads=1)
    ours, _ = converter.convert(torch.from_numpy(pixels))
    ours = ours.permute(1, 2, 0).cpu().numpy()
    return float(np.abs(ours - reference).max())


def _steps(config: "OCIO.Config", transforms: list, shift: int) -> list | None:
    """The optimised ops as device steps, consecutive per-channel ops merged into one table
    with knots every 2**shift float bit patterns; None when an op has no device form."""
    steps: list = []
    run: list = []
    for transform in transforms:
        if isinstance(transform, OCIO.MatrixTransform):
            matrix = _matrix(transform)
            if matrix is None:
                return None
            if run:
                steps.append(("tables", _sample(config, run, shift), shift))
                run = []
            steps.append(("matrix", *matrix))
        elif _per_channel(transform):
            run.append(transform)
        else:
            return None
    if run:
        steps.append(("tables", _sample(config, run, shift), shift))
    return steps


def _per_channel(transform: Any) -> bool:
    """True for an op whose output channel depends on that channel alone."""
    if not isinstance(transform, _PER_CHANNEL_OPS):
        return False
    if isinstance(transform, OCIO.Lut1DTransform):
        return transform.getHueAdjust() == OCIO.HUE_NONE
    return True


def _matrix(transform: "OCIO.MatrixTransform") -> tuple[np.ndarray, np.ndarray] | None:
    """The RGB part of a 4x4 matrix op (inverted when the op runs backwards), or None when it
    mixes alpha into RGB (a plate's RGB has no alpha to give)."""
    full = np.array(transform.getMatrix(), dtype=np.float64).reshape(4, 4)
    offset = np.array(transform.getOffset(), dtype=np.float64)
    if transform.getDirection() == OCIO.TRANSFORM_DIR_INVERSE:
        full = np.linalg.inv(full)
        offset = -full @ offset
    if np.any(full[:3, 3] != 0.0):
        return None
    return full[:3, :3], offset[:3]


def _first_run(transforms: list) -> list:
    """The per-channel ops before the first matrix (the first step's ops)."""
    run = []
    for transform in transforms:
        if isinstance(transform, OCIO.MatrixTransform):
            break
        run.append(transform)
    return run


def _apply(config: "OCIO.Config", run: list, knots: np.ndarray) -> np.ndarray:
    """(3, len(knots)) float32: the run of per-channel ops applied by OCIO to each knot."""
    values = np.ascontiguousarray(np.repeat(knots.astype(np.float32)[:, None, None], 3, axis=2))
    group = OCIO.GroupTransform()
    for transform in run:
        group.appendTransform(transform)
    config.getProcessor(group).getDefaultCPUProcessor().applyRGB(values)
    return np.ascontiguousarray(values[:, 0, :].T)


def _sample(config: "OCIO.Config", run: list, shift: int) -> np.ndarray:
    """(3, knots + 1) float32: the run applied to every float whose low `shift` bits are 0.

    The Inf/NaN bit patterns are sampled at the largest finite knot of their sign, so no
    interpolation meets a NaN: non-finite inputs are found and zeroed apart from the tables.
    The last entry repeats the one before, the upper neighbour of the last knot.
    """
    knots = 1 << (32 - shift)
    patterns = np.arange(knots, dtype=np.uint32) << shift
    non_finite = (patterns & 0x7F800000) == 0x7F800000
    largest = (patterns & 0x80000000) | (0x7F7FFFFF >> shift << shift)
    patterns = np.where(non_finite, largest, patterns).astype(np.uint32)
    table = np.empty((3, knots + 1), dtype=np.float32)
    table[:, :knots] = _apply(config, run, patterns.view(np.float32))
    table[:, knots] = table[:, knots - 1]
    return table


def _sample_halves(config: "OCIO.Config", run: list) -> np.ndarray:
    """(3, 65536) float32: the run applied to every half value, by bit pattern (Inf/NaN
    patterns at the largest finite half of their sign, as in `_sample`)."""
    patterns = np.arange(_HALF_KNOTS, dtype=np.uint32)
    non_finite = (patterns & 0x7C00) == 0x7C00
    patterns = np.where(non_finite, (patterns & 0x8000) | 0x7BFF, patterns).astype(np.uint16)
    return _apply(config, run, patterns.view(np.float16))

