"""The ruler itself: IoU, SAD and stability of core/demo/report.py on hand-made arrays whose
figures are worked out by hand here."""

from __future__ import annotations

import numpy as np
import pytest

from vrmbg.core.demo import report


def _mask(rows: slice, cols: slice, value: float = 1.0, shape=(4, 4)) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    out[rows, cols] = value
    return out


# alpha: rows 0-1 x cols 0-2 (6 px); truth: rows 0-2 x cols 1-2 (6 px).
# intersection rows 0-1 x cols 1-2 = 4 px; union 6 + 6 - 4 = 8 px; symmetric difference 4 px.
ALPHA = _mask(slice(0, 2), slice(0, 3))
TRUTH = _mask(slice(0, 3), slice(1, 3))


# ------------------------------------------------------------------------------------------ IoU
def test_iou_of_overlapping_squares():
    assert report.iou(ALPHA, TRUTH) == pytest.approx(4 / 8)
    assert report.iou(TRUTH, ALPHA) == pytest.approx(4 / 8)
    assert report.iou(TRUTH, TRUTH) == 1.0
    # disjoint: nothing shared
    assert report.iou(_mask(slice(0, 1), slice(0, 1)), _mask(slice(3, 4), slice(3, 4))) == 0.0


def test_iou_thresholds_strictly_above_one_half():
    soft = ALPHA * 0.5  # exactly 0.5 is background
    assert report.iou(soft, TRUTH) == 0.0
    assert report.iou(ALPHA * 0.51, TRUTH) == pytest.approx(0.5)
    # the truth is thresholded too; and another threshold can be asked for
    assert report.iou(ALPHA, TRUTH * 0.4) == 0.0
    assert report.iou(ALPHA * 0.3, TRUTH * 0.3, threshold=0.2) == pytest.approx(0.5)


def test_iou_empty_cases():
    empty = np.zeros((4, 4), np.float32)
    assert report.iou(empty, empty) == 1.0  # nothing to find, nothing found
    assert report.iou(empty, TRUTH) == 0.0
    assert report.iou(ALPHA, empty) == 0.0


# ------------------------------------------------------------------------------------------ SAD
def test_sad_is_the_sum_of_absolute_differences_in_thousands():
    assert report.sad(ALPHA, TRUTH) == pytest.approx(4 / 1000)  # 4 px off by 1
    assert report.sad(TRUTH, ALPHA) == pytest.approx(4 / 1000)
    assert report.sad(TRUTH, TRUTH) == 0.0
    quarter = np.full((4, 4), 0.25, np.float32)
    assert report.sad(quarter, np.zeros((4, 4))) == pytest.approx(16 * 0.25 / 1000)
    # a unit, not a mean: it grows with the plate (100 x 100 all wrong = 10 thousand)
    assert report.sad(np.ones((100, 100), np.float32), np.zeros((100, 100))) == pytest.approx(10.0)


# ------------------------------------------------------------------------------ MSE, gradient
def test_mse_is_the_mean_squared_difference():
    assert report.mse(ALPHA, TRUTH) == pytest.approx(4 / 16)  # 4 of 16 px off by 1
    assert report.mse(ALPHA * 0.5, np.zeros((4, 4))) == pytest.approx(6 * 0.25 / 16)


def test_gradient_of_a_unit_ramp_is_one_and_equal_mattes_score_zero():
    ramp = np.tile(np.arange(40, dtype=np.float64) / 100.0, (30, 1))  # slope 0.01 per pixel
    error = report.gradient_error(ramp, np.zeros_like(ramp))
    # |grad| = 0.01 exactly on the 30 columns 5 px or more from the sides (filter radius 5);
    # the repeated border pixels flatten the ramp on the others
    assert 30 * 30 * 0.01 ** 2 * 0.999 < error < 30 * 40 * 0.01 ** 2
    assert report.gradient_error(ramp, ramp) == 0.0


def test_gradient_error_grows_when_an_edge_is_blurred():
    step = np.zeros((32, 64))
    step[:, 32:] = 1.0
    soft = np.clip((np.arange(64) - 28) / 8.0, 0, 1) * np.ones((32, 1))
    softer = np.clip((np.arange(64) - 24) / 16.0, 0, 1) * np.ones((32, 1))
    assert 0 < report.gradient_error(soft, step) < report.gradient_error(softer, step)


def test_sad_of_half_floats_is_summed_in_double():
    alpha = np.full((64, 64), 0.1, np.float16)  # 0.1 in half is 0.0999755859375
    expected = 64 * 64 * float(np.float16(0.1)) / 1000
    assert report.sad(alpha, np.zeros((64, 64), np.float32)) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------------------ stability
def test_stability_counts_only_pixels_whose_truth_is_still():
    # 2 x 2 frames, pixels in reading order [p0, p1, p2, p3]
    gts = [np.array(v, np.float32).reshape(2, 2) for v in
           ([0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 0, 0])]
    mattes = [np.array(v, np.float32).reshape(2, 2) for v in
              ([0.1, 0.0, 0.9, 1.0], [0.3, 0.8, 0.9, 0.6], [0.9, 0.7, 0.0, 0.0])]
    # frames 0->1: p1's truth moved; static p0, p2, p3 change by 0.2, 0.0, 0.4 -> 0.6 over 3 px
    # frames 1->2: p0, p2, p3 moved; static p1 changes by 0.1 -> 0.1 over 1 px
    # pooled over pixels: (0.6 + 0.1) / (3 + 1) = 0.175 (not the mean of pair means, 0.15)
    assert report.stability(mattes, gts) == pytest.approx(0.175)


def test_stability_static_threshold_and_degenerate_cases():
    gts = [np.array([[0.5, 0.5]], np.float32), np.array([[0.5005, 0.503]], np.float32)]
    mattes = [np.array([[0.2, 0.2]], np.float32), np.array([[0.6, 0.9]], np.float32)]
    # p0's truth moved 5e-4 < 1e-3: static, its matte moved 0.4; p1's truth moved 3e-3: ignored
    assert report.stability(mattes, gts) == pytest.approx(0.4)
    assert report.stability(mattes, gts, eps=1e-4) == 0.0  # nothing static -> 0
    assert report.stability(mattes, gts, eps=1e-2) == pytest.approx((0.4 + 0.7) / 2)
    assert report.stability(mattes[:1], gts[:1]) == 0.0  # one frame: no pair
    still = [np.full((3, 3), 0.7, np.float32)] * 4
    assert report.stability(still, [np.zeros((3, 3))] * 4) == 0.0  # a still matte is stable


# ------------------------------------------------------------------------------------- quality
def test_quality_averages_per_frame_figures():
    # frame 0: ALPHA vs TRUTH; frame 1: a perfect matte (the truth moved to ALPHA's shape)
    figures = report.quality([ALPHA, ALPHA], [TRUTH, ALPHA])
    assert figures["iou"] == pytest.approx((0.5 + 1.0) / 2)
    assert figures["iou_min"] == pytest.approx(0.5)
    assert figures["iou_per_frame"] == [0.5, 1.0]
    assert figures["sad"] == pytest.approx((0.004 + 0.0) / 2)
    assert figures["mae"] == pytest.approx((4 / 16 + 0.0) / 2)
    # the matte did not change; 12 px of truth stayed still -> no flicker
    assert figures["stability"] == 0.0


def test_quality_needs_matching_non_empty_sequences():
    with pytest.raises(ValueError):
        report.quality([], [])
    with pytest.raises(ValueError):
        report.quality([ALPHA], [TRUTH, TRUTH])
