"""Fast half <-> float32 copies must give the same bits as numpy's own casts.

Plates and mattes pass through these copies on every frame; a single differing bit would change
mattes against earlier renders and break cached chains.
"""

from __future__ import annotations

import numpy as np

from vrmbg.core.io.halfs import copy_into, to_half


def _every_half() -> np.ndarray:
    return np.arange(65536, dtype=np.uint16).view(np.float16).reshape(256, 256)


def test_every_half_widens_to_the_same_float32_bits() -> None:
    halves = _every_half()
    out = np.empty(halves.shape, np.float32)
    copy_into(out, halves)
    nan = np.isnan(halves)
    # Signalling-NaN payloads come back quieted; a NaN stays a NaN, and every other half
    # (subnormals, infinities, signed zeros) widens to exactly numpy's bits.
    assert np.array_equal(np.isnan(out), nan)
    assert np.array_equal(out.view(np.uint32)[~nan], halves.astype(np.float32).view(np.uint32)[~nan])


def test_float32s_narrow_to_the_same_halves_including_ties_and_overflow() -> None:
    rng = np.random.default_rng(7)
    wide = np.concatenate([
        rng.normal(0.0, 4.0, 40000).astype(np.float32),
        rng.uniform(-70000, 70000, 4000).astype(np.float32),   # beyond half's range: inf
        rng.uniform(-1e-7, 1e-7, 4000).astype(np.float32),     # subnormal halves
        # exact midpoints between neighbouring halves: round half to even
        ((_every_half().ravel()[:30000:7].astype(np.float64)
          + _every_half().ravel()[1:30001:7].astype(np.float64)) / 2).astype(np.float32),
        np.array([np.nan, np.inf, -np.inf, -0.0, 0.0], np.float32),
    ])
    with np.errstate(over="ignore"):
        expected = wide.astype(np.float16)
    assert np.array_equal(to_half(wide).view(np.uint16), expected.view(np.uint16))


def test_views_torch_cannot_share_still_copy_correctly() -> None:
    halves = _every_half()[:64, :64]
    flipped = halves[::-1, :]
    read_only = halves.copy()
    read_only.setflags(write=False)
    swapped = halves.astype(np.float32).astype(">f4")
    for src in (flipped, read_only):
        out = np.empty(src.shape, np.float32)
        copy_into(out, src)
        assert np.array_equal(out, src.astype(np.float32), equal_nan=True)
    narrowed = np.empty(swapped.shape, np.float16)
    copy_into(narrowed, swapped)
    assert np.array_equal(narrowed.view(np.uint16), halves.view(np.uint16))


def test_strided_destination_rows_are_filled_in_place() -> None:
    plate = np.zeros((8, 10, 4), np.float32)
    rgb = plate[:, :, :3]
    src = np.linspace(0, 1, 8 * 10 * 3, dtype=np.float32).astype(np.float16).reshape(8, 10, 3)
    copy_into(rgb, src)
    assert np.array_equal(plate[:, :, :3], src.astype(np.float32))
    assert not plate[:, :, 3].any()


def test_overlapping_source_and_destination_copy_every_value() -> None:
    buffer = np.zeros(64, np.float32)
    src = buffer.view(np.float16)[:64]  # the halves live in the float32s' first half
    src[:] = np.arange(64, dtype=np.float16)
    expected = src.astype(np.float32)
    copy_into(buffer, src)
    assert np.array_equal(buffer, expected)


def test_negative_halves_and_the_overflow_band_narrow_as_numpy_does() -> None:
    halves = _every_half().ravel()
    finite = halves[np.isfinite(halves)].astype(np.float64)
    finite.sort()
    ties = ((finite[:-1] + finite[1:]) / 2).astype(np.float32)  # both signs
    band = np.linspace(65504, 65536, 4001, dtype=np.float32)   # max half .. first inf
    wide = np.concatenate([ties, band, -band])
    with np.errstate(over="ignore"):
        expected = wide.astype(np.float16)
    assert np.array_equal(to_half(wide).view(np.uint16), expected.view(np.uint16))


def test_frame_copies_take_the_fast_path(monkeypatch) -> None:
    """A plate-shaped copy goes through torch (else it costs numpy's software cast)."""
    import torch

    calls = []
    real = torch.Tensor.copy_

    def spy(self, other, *args, **kwargs):
        calls.append((self.dtype, other.dtype))
        return real(self, other, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "copy_", spy)
    plate = np.zeros((6, 8, 4), np.float16)[:, :, :3]  # RGB of an RGBA buffer
    out = np.empty((6, 8, 3), np.float32)
    copy_into(out, plate)
    to_half(out)
    assert calls == [(torch.float32, torch.float16), (torch.float16, torch.float32)]
