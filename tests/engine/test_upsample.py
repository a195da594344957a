"""The prediction back at plate size: the card's bilinear unchanged, the guided filters checked
against a numpy reference written here from the formulas, on flat regions and a hard edge."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vrmbg.core.demo import report
from vrmbg.core.engine.opening import stepper_for
from vrmbg.core.engine.step import FrameStepper
from vrmbg.core.engine.upsample import Upsampling, upsample
from vrmbg.core.errors import InputError, UsageError
from vrmbg.core.model import load_model
from vrmbg.core.model.loader import LoadedModel

H, W, R = 216, 384, 48  # a 16:9 plate over a square prediction, as in production
LUMA = np.array([0.2126, 0.7152, 0.0722])


@pytest.fixture(scope="module")
def demo() -> LoadedModel:
    return load_model("demo", device="cpu", precision="fp32")


def _random_case(seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    pred = torch.from_numpy(rng.random((1, 1, R, R), dtype=np.float32))
    return pred, rng.random((H, W, 3), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# numpy reference, float64, straight from the definitions
# --------------------------------------------------------------------------------------------
def _np_area(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Each output pixel averages the input pixels its footprint touches (rows then cols)."""
    def along(img: np.ndarray, out: int, axis: int) -> np.ndarray:
        size = img.shape[axis]
        rows = []
        for i in range(out):
            lo, hi = (i * size) // out, -((-(i + 1) * size) // out)
            rows.append(np.take(img, np.arange(lo, hi), axis=axis).mean(axis=axis))
        return np.stack(rows, axis=axis)
    return along(along(image, out_h, 0), out_w, 1)


def _np_box(image: np.ndarray, r: int) -> np.ndarray:
    """Mean over the clipped (2r+1)² window, by an integral image."""
    h, w = image.shape
    integral = np.zeros((h + 1, w + 1))
    integral[1:, 1:] = image.cumsum(0).cumsum(1)
    out = np.empty((h, w))
    for y in range(h):
        y0, y1 = max(0, y - r), min(h, y + r + 1)
        for x in range(w):
            x0, x1 = max(0, x - r), min(w, x + r + 1)
            total = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
            out[y, x] = total / ((y1 - y0) * (x1 - x0))
    return out


def _np_bilinear(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Half-pixel-centre bilinear, the border pixel repeated (OpenCV INTER_LINEAR)."""
    def weights(out: int, size: int):
        src = np.maximum((np.arange(out) + 0.5) * size / out - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), size - 1)
        return i0, np.minimum(i0 + 1, size - 1), src - i0
    y0, y1, wy = weights(out_h, image.shape[0])
    x0, x1, wx = weights(out_w, image.shape[1])
    top = image[y0][:, x0] * (1 - wx) + image[y0][:, x1] * wx
    bottom = image[y1][:, x0] * (1 - wx) + image[y1][:, x1] * wx
    return top * (1 - wy)[:, None] + bottom * wy[:, None]


def _np_guided(pred: np.ndarray, guide: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Luminance guide: the linear model alpha = a I + b fitted per window on the low grid."""
    lum = np.clip(guide.astype(np.float64) @ LUMA, 0, 1)
    low = _np_area(lum, *pred.shape)
    mi, mp = _np_box(low, r), _np_box(pred, r)
    a = (_np_box(low * pred, r) - mi * mp) / (_np_box(low * low, r) - mi * mi + eps)
    b = mp - a * mi
    big_a = _np_bilinear(_np_box(a, r), *lum.shape)
    big_b = _np_bilinear(_np_box(b, r), *lum.shape)
    return np.clip(big_a * lum + big_b, 0, 1)


def _np_guided_colour(pred: np.ndarray, guide: np.ndarray, r: int, eps: float) -> np.ndarray:
    """RGB guide: a = (Sigma + eps I)^-1 cov(I, p) per low-grid pixel, by np.linalg.solve."""
    rgb = np.clip(guide.astype(np.float64), 0, 1)
    low = np.stack([_np_area(rgb[..., c], *pred.shape) for c in range(3)], -1)
    mi = np.stack([_np_box(low[..., c], r) for c in range(3)], -1)
    mp = _np_box(pred, r)
    cov = np.stack([_np_box(low[..., c] * pred, r) for c in range(3)], -1) - mi * mp[..., None]
    sigma = np.empty(pred.shape + (3, 3))
    for i in range(3):
        for j in range(3):
            sigma[..., i, j] = _np_box(low[..., i] * low[..., j], r) - mi[..., i] * mi[..., j]
    a = np.linalg.solve(sigma + eps * np.eye(3), cov[..., None])[..., 0]
    b = mp - (a * mi).sum(-1)
    big_a = np.stack([_np_bilinear(_np_box(a[..., c], r), *rgb.shape[:2]) for c in range(3)], -1)
    big_b = _np_bilinear(_np_box(b, r), *rgb.shape[:2])
    return np.clip((big_a * rgb).sum(-1) + big_b, 0, 1)


@pytest.mark.parametrize("mode, reference", [("guided", _np_guided),
                                             ("guided-colour", _np_guided_colour)])
@pytest.mark.parametrize("radius, eps", [(1, 1e-3), (3, 1e-2)])
def test_guided_matches_the_numpy_reference(mode, reference, radius, eps):
    pred, guide = _random_case(1)
    ours = upsample(pred, guide, H, W, mode, radius=radius, eps=eps)
    expected = reference(pred[0, 0].double().numpy(), guide, radius, eps)
    assert ours.shape == (H, W) and ours.dtype == np.float32
    assert np.abs(ours - expected).max() < 2e-4


# --------------------------------------------------------------------------------------------
# The default path is today's, bit for bit
# --------------------------------------------------------------------------------------------
def test_default_to_plate_is_the_cards_bilinear_bit_for_bit(demo):
    pred, guide = _random_case(2)
    pred = pred.to(torch.bfloat16)
    with torch.inference_mode():  # the card's resize back, written out here
        card = F.interpolate(pred.float(), size=(H, W), mode="bilinear", align_corners=False,
                             antialias=False)[0, 0].clamp(0.0, 1.0).numpy()
    stepper = FrameStepper(demo)
    assert np.array_equal(stepper.to_plate(pred, H, W), card)
    assert np.array_equal(stepper.to_plate(pred, H, W, guide=guide), card)
    guided = FrameStepper(demo, upsampling=Upsampling("guided-colour"))
    assert np.array_equal(guided.to_plate(pred, H, W), card), "no guide: bilinear"
    assert not np.array_equal(guided.to_plate(pred, H, W, guide=guide), card)


def test_settings_choose_the_upsampling(demo):
    class Pool:
        def get(self, settings):
            return demo

    stepper = stepper_for({"upsample": "guided-colour", "upsample_radius": 3,
                           "upsample_eps": 0.01}, Pool())
    assert stepper.upsampling == Upsampling("guided-colour", 3, 0.01)
    assert stepper.at_resolution(96).upsampling == stepper.upsampling
    default = stepper_for({}, Pool())
    assert default.upsampling.identity == "bilinear"
    plate = np.zeros((4, 4, 3), np.float32)
    assert default.guide_for(plate) is None and stepper.guide_for(plate) is plate
    assert Upsampling("guided-colour", 2, 0.001).identity == "guided-colour r2 eps0.001"


# --------------------------------------------------------------------------------------------
# What the guided modes do to a matte
# --------------------------------------------------------------------------------------------
def _edge_shot(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A plate with a hard slanted edge between a saturated foreground and a grey background
    of equal luminance in the top half and darker in the bottom half, and its exact alpha."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    gt = ((xs - 0.35 * ys) > W * 0.4).astype(np.float32)
    fg = np.array([0.9, 0.2, 0.1])
    bg = np.where((ys > H / 2)[..., None], np.array([0.2, 0.2, 0.2]),
                  np.full(3, fg @ LUMA))
    plate = gt[..., None] * fg + (1 - gt[..., None]) * bg
    plate = plate + rng.normal(0, 0.01, plate.shape)
    return np.clip(plate, 0, 1).astype(np.float32), gt


def _perfect_prediction(gt: np.ndarray) -> torch.Tensor:
    """What an ideal network predicts on its square grid: the coverage of each of its pixels."""
    return F.interpolate(torch.from_numpy(gt)[None, None], size=(R, R), mode="area")


@pytest.mark.parametrize("mode", ["guided", "guided-colour"])
def test_guided_sharpens_a_hard_edge(mode):
    plate, gt = _edge_shot()
    pred = _perfect_prediction(gt)
    bilinear = upsample(pred, plate, H, W, "bilinear")
    guided = upsample(pred, plate, H, W, mode, radius=2, eps=1e-3)
    bottom = np.s_[H // 2 + 24:]  # where the edge has luminance contrast
    assert (report.gradient_error(guided[bottom], gt[bottom])
            < 0.5 * report.gradient_error(bilinear[bottom], gt[bottom]))
    if mode == "guided-colour":  # luminance alone leaves a halo where the contrast is low
        assert report.sad(guided[bottom], gt[bottom]) < 0.5 * report.sad(bilinear[bottom],
                                                                           gt[bottom])


def test_colour_guide_sees_an_edge_of_equal_luminance():
    plate, gt = _edge_shot()
    pred = _perfect_prediction(gt)
    top = np.s_[:H // 2 - 24]  # foreground and background of the same luminance
    errors = {mode: report.gradient_error(upsample(pred, plate, H, W, mode)[top], gt[top])
              for mode in ("bilinear", "guided", "guided-colour")}
    assert errors["guided-colour"] < 0.5 * errors["bilinear"]
    assert errors["guided"] > 0.8 * errors["bilinear"], "luminance alone cannot see this edge"


@pytest.mark.parametrize("mode", ["guided", "guided-colour"])
def test_flat_regions_stay_equal_to_bilinear(mode):
    _, guide = _random_case(4)  # busy texture everywhere
    low = np.zeros((R, R), np.float32)
    low[:, R // 2:] = 1.0  # foreground on the right half of the prediction
    pred = torch.from_numpy(low)[None, None]
    bilinear = upsample(pred, guide, H, W, "bilinear")
    guided = upsample(pred, guide, H, W, mode, radius=2, eps=1e-3)
    # further than 2 radii (+ the bilinear footprint) from the edge, the matte is flat
    far = np.abs(np.arange(W) - W / 2) > (2 * 2 + 2) * W / R
    assert np.abs(guided[:, far] - bilinear[:, far]).max() < 1e-5
    assert not np.allclose(guided, bilinear)


def test_bad_guides_and_settings_are_refused():
    pred, guide = _random_case(5)
    with pytest.raises(InputError, match="expected the plate's 216x384"):
        upsample(pred, guide[:100], H, W, "guided")
    with pytest.raises(UsageError, match="needs the plate"):
        upsample(pred, None, H, W, "guided-colour")
    for bad in (dict(mode="sharp"), dict(radius=0), dict(eps=0.0)):
        with pytest.raises(UsageError):
            Upsampling(**bad)
