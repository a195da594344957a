"""The model's R x R prediction back to the plate: bilinear (the card's) or edge-aware.

The network predicts at its own square size (1024² for VRMBG-3.0); a 2K or 4K plate gets that
prediction stretched. Bilinear (the default, as on the model card) turns every edge into a ramp
several plate pixels wide. The "guided" mode is a fast guided filter used as an upsampler: it
fits, in each small window of the prediction's grid, a linear model

    alpha ≈ a * I + b         (I = the plate's luminance, on the same grid)

then evaluates it at plate resolution with the plate's own luminance, so an alpha edge that
follows an image edge comes out as sharp as the image edge. Where the prediction is flat (all
foreground, all background), `a = 0`, `b = alpha`, and the result equals bilinear.

The maths, with box means B_r over (2r+1)² windows clipped at the image border:

    I_lo   = area average of I onto the R x R grid      (p = the prediction on that grid)
    a      = (B_r(I_lo p) - B_r(I_lo) B_r(p)) / (B_r(I_lo²) - B_r(I_lo)² + eps)
    b      = B_r(p) - a B_r(I_lo)
    A, B   = bilinear(B_r(a)), bilinear(B_r(b)) to H x W
    alpha  = clamp(A * I + B, 0, 1)

(He and Sun, "Fast Guided Filter", 2015: the coefficients are computed on the subsampled grid
and only the final linear map runs at full resolution; here the subsampled input is the
prediction itself.) "guided-colour" is the same filter with the RGB plate as a 3-channel guide
(He, Sun and Tang, "Guided Image Filtering", 2013): `a` becomes a 3-vector,

    a = (Sigma + eps U)^-1 cov(I, p)      (Sigma = the 3x3 covariance of I in the window)
    b = B_r(p) - a . B_r(I_lo)            alpha = clamp(A . I + B, 0, 1)

which follows edges between colours of equal brightness (a saturated foreground over a grey
background) that luminance cannot see. `radius` is in pixels of the prediction's grid; `eps` (in luminance² units,
I in [0, 1]) sets how small an image contrast may steer the matte: larger is closer to bilinear.
Everything runs in torch float32 on the inference device. Only the written matte changes: the
temporal state stays the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...plugin.settings import Settings
from ..errors import InputError, UsageError

MODES = ("bilinear", "guided", "guided-colour")
DEFAULT_RADIUS = 2
DEFAULT_EPS = 1e-3
LUMA = (0.2126, 0.7152, 0.0722)  # Rec.709 weights, applied to the model-space RGB in [0, 1]


@dataclass(frozen=True)
class Upsampling:
    """How the prediction reaches plate resolution (part of what a matte depends on)."""

    mode: str = "bilinear"
    radius: int = DEFAULT_RADIUS
    eps: float = DEFAULT_EPS

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"upsample mode {self.mode!r} is not one of {', '.join(MODES)}")
        if int(self.radius) != self.radius or self.radius < 1:
            raise UsageError(f"upsample radius {self.radius} must be a whole number >= 1")
        if not self.eps > 0:
            raise UsageError(f"upsample eps {self.eps} must be above 0")

    @property
    def needs_guide(self) -> bool:
        """True when the plate's pixels are needed (not for plain bilinear)."""
        return self.mode != "bilinear"

    @property
    def identity(self) -> str:
        """What the chain identity records: "bilinear", or e.g. "guided r2 eps0.001"."""
        if self.mode == "bilinear":
            return "bilinear"
        return f"{self.mode} r{int(self.radius)} eps{self.eps:g}"

    @classmethod
    def from_settings(cls, settings: Settings) -> "Upsampling":
        """From the settings' `upsample`, `upsample_radius` and `upsample_eps`."""
        return cls(mode=settings.upsample or "bilinear",
                   radius=settings.upsample_radius or DEFAULT_RADIUS,
                   eps=settings.upsample_eps or DEFAULT_EPS)


def upsample(pred: torch.Tensor, guide_rgb01: np.ndarray | torch.Tensor | None, height: int,
             width: int, mode: str = "bilinear", **params: float) -> np.ndarray:
    """The prediction (R x R, any float dtype, any device) at plate size: (height, width)
    float32 alpha in [0, 1]. `guide_rgb01` is the plate as the model saw it (H, W, 3) in [0, 1]
    (or its luminance, (H, W)); it is needed by "guided" only. `params`: radius, eps."""
    with torch.inference_mode():
        grid = pred.float().reshape(1, 1, *pred.shape[-2:])
        if mode == "bilinear":
            alpha = resize_bilinear(grid, height, width)
        elif mode in ("guided", "guided-colour"):
            if guide_rgb01 is None:
                raise UsageError(f"{mode} upsampling needs the plate as a guide")
            radius = int(params.get("radius", DEFAULT_RADIUS))
            eps = float(params.get("eps", DEFAULT_EPS))
            if mode == "guided":
                guide = luminance(guide_rgb01, height, width, grid.device)
                alpha = guided_upsample(grid, guide, radius, eps)
            else:
                guide = colour_guide(guide_rgb01, height, width, grid.device)
                alpha = guided_upsample_colour(grid, guide, radius, eps)
        else:
            raise UsageError(f"upsample mode {mode!r} is not one of {', '.join(MODES)}")
        alpha = alpha[0, 0].clamp(0.0, 1.0).cpu().numpy()
    return np.ascontiguousarray(alpha, dtype=np.float32)


def resize_bilinear(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of (N, C, h, w) as OpenCV INTER_LINEAR does it (half-pixel centres)."""
    if tuple(image.shape[-2:]) == (height, width):
        return image
    return F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False,
                         antialias=False)


def resize_taps(size_in: int, size_out: int) -> np.ndarray:
    """Sorted input indices that `resize_bilinear` from `size_in` to `size_out` samples along
    one axis. Torch computes each source position `scale * (i + 0.5) - 0.5` in float32, with
    one rounding or two depending on how its kernel was compiled, so the taps of both are
    kept; the caller checks the result against torch itself (`FrameStepper.pixels_read`)."""
    scale = np.float32(size_in) / np.float32(size_out)
    centres = np.arange(size_out, dtype=np.float32) + np.float32(0.5)
    twice_rounded = scale * centres - np.float32(0.5)
    once_rounded = (np.float64(scale) * centres.astype(np.float64) - 0.5).astype(np.float32)
    low = np.concatenate([np.maximum(source, np.float32(0.0)).astype(np.int64)
                          for source in (twice_rounded, once_rounded)])
    low = np.minimum(low, size_in - 1)
    return np.unique(np.concatenate([low, np.minimum(low + 1, size_in - 1)]))


def luminance(guide: np.ndarray | torch.Tensor, height: int, width: int,
              device: torch.device) -> torch.Tensor:
    """(1, 1, H, W) float32 luminance on `device` from (H, W, 3) RGB or (H, W) luminance."""
    tensor = torch.as_tensor(np.ascontiguousarray(guide, dtype=np.float32)
                             if isinstance(guide, np.ndarray) else guide)
    tensor = tensor.to(device=device, dtype=torch.float32)
    if tensor.dim() == 3 and tensor.shape[-1] == 3:
        weights = torch.tensor(LUMA, dtype=torch.float32, device=device)
        tensor = tensor @ weights
    if tuple(tensor.shape) != (height, width):
        raise InputError(f"upsampling guide is {tuple(guide.shape)}, expected the plate's "
                         f"{height}x{width} (RGB or luminance)")
    return tensor.clamp(0.0, 1.0).reshape(1, 1, height, width)


def colour_guide(guide: np.ndarray | torch.Tensor, height: int, width: int,
                 device: torch.device) -> torch.Tensor:
    """(1, 3, H, W) float32 RGB in [0, 1] on `device` from an (H, W, 3) plate."""
    tensor = torch.as_tensor(np.ascontiguousarray(guide, dtype=np.float32)
                             if isinstance(guide, np.ndarray) else guide)
    if tuple(tensor.shape) != (height, width, 3):
        raise InputError(f"upsampling guide is {tuple(guide.shape)}, expected the plate's "
                         f"{height}x{width} RGB")
    tensor = tensor.to(device=device, dtype=torch.float32).clamp(0.0, 1.0)
    return tensor.permute(2, 0, 1).unsqueeze(0).contiguous()


def guided_upsample(pred: torch.Tensor, guide: torch.Tensor, radius: int,
                    eps: float) -> torch.Tensor:
    """Fast guided filter from the prediction's grid to the guide's (both (1, 1, h, w) float32).

    See the module docstring for the maths.
    """
    low = F.interpolate(guide, size=pred.shape[-2:], mode="area")
    mean_i, mean_p = box_mean(low, radius), box_mean(pred, radius)
    cov_ip = box_mean(low * pred, radius) - mean_i * mean_p
    var_i = box_mean(low * low, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    height, width = guide.shape[-2:]
    big_a = resize_bilinear(box_mean(a, radius), height, width)
    big_b = resize_bilinear(box_mean(b, radius), height, width)
    return big_a * guide + big_b


def box_mean(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the (2r+1)² window around each pixel, the window clipped at the border.

    Separable (a row pass then a column pass); near the border each pass divides by the
    pixels it actually covered, which is what the clipped square window needs.
    """
    size = 2 * radius + 1
    rows = F.avg_pool2d(image, (1, size), stride=1, padding=(0, radius), count_include_pad=False)
    return F.avg_pool2d(rows, (size, 1), stride=1, padding=(radius, 0), count_include_pad=False)


def guided_upsample_colour(pred: torch.Tensor, guide: torch.Tensor, radius: int,
                           eps: float) -> torch.Tensor:
    """Fast guided filter with an RGB guide ((1, 3, H, W)) from the prediction's grid.

    The 3x3 systems are solved in closed form (symmetric inverse by cofactors), element-wise
    over the grid, so the solve costs a few map operations on any device.
    """
    low = F.interpolate(guide, size=pred.shape[-2:], mode="area")
    mean_i, mean_p = box_mean(low, radius), box_mean(pred, radius)
    cov = box_mean(low * pred, radius) - mean_i * mean_p
    sigma = {}
    for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):
        sigma[i, j] = (box_mean(low[:, i:i + 1] * low[:, j:j + 1], radius)
                       - mean_i[:, i:i + 1] * mean_i[:, j:j + 1])
    a = _solve_symmetric3(sigma[0, 0] + eps, sigma[0, 1], sigma[0, 2], sigma[1, 1] + eps,
                          sigma[1, 2], sigma[2, 2] + eps, cov)
    b = mean_p - (a * mean_i).sum(dim=1, keepdim=True)
    height, width = guide.shape[-2:]
    big_a = resize_bilinear(box_mean(a, radius), height, width)
    big_b = resize_bilinear(box_mean(b, radius), height, width)
    return (big_a * guide).sum(dim=1, keepdim=True) + big_b


def _solve_symmetric3(xx: torch.Tensor, xy: torch.Tensor, xz: torch.Tensor, yy: torch.Tensor,
                      yz: torch.Tensor, zz: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Per-pixel solution of [[xx xy xz] [xy yy yz] [xz yz zz]] a = rhs (rhs (1, 3, h, w))."""
    c00 = yy * zz - yz * yz
    c01 = xz * yz - xy * zz
    c02 = xy * yz - xz * yy
    c11 = xx * zz - xz * xz
    c12 = xy * xz - xx * yz
    c22 = xx * yy - xy * xy
    det = xx * c00 + xy * c01 + xz * c02
    r0, r1, r2 = rhs[:, 0:1], rhs[:, 1:2], rhs[:, 2:3]
    return torch.cat([c00 * r0 + c01 * r1 + c02 * r2,
                      c01 * r0 + c11 * r1 + c12 * r2,
                      c02 * r0 + c12 * r1 + c22 * r2], dim=1) / det
