"""One frame of the model card's reference loop, exactly.

The card's loop, per frame t of a chain:

    cur_t   = normalise(resize(rgb_t, R x R))            # bilinear, no antialias, ImageNet mean/std
    x_t     = cat[cur_t, cur_{t-1} * pred_{t-1}]          # zeros on the chain's first frame
    pred_t  = model(x_t)[-1].sigmoid()                    # (1, 1, R, R), kept in the model dtype
    alpha_t = resize(pred_t, H x W)                       # bilinear, back to the plate
                                                          # (or edge-aware: engine.upsample)

`pred_t` at R x R (not the resized-back matte) is the recurrent state the next frame needs, so the
engine stores it losslessly in the model dtype. The resizes are torch bilinear with
align_corners=False and antialias=False, which is what OpenCV's INTER_LINEAR computes for both
up- and down-scaling (the card resizes with OpenCV).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import InputError, UsageError
from .upsample import Upsampling, resize_bilinear, resize_taps, upsample

if TYPE_CHECKING:
    from ..model.loader import LoadedModel

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Largest share of a plate's pixels the resize may read for only those to be converted
# (`FrameStepper.pixels_read`): measured at 4K (47% read), gathering and scattering them cost
# about 75 ms against 120 saved for ACEScg and more than saved for a cheap conversion.
SPARSE_FRACTION = 0.3


def check_resolution(resolution: int) -> int:
    """Validate an inference size: a positive multiple of 32 (UsageError otherwise)."""
    if int(resolution) != resolution or resolution <= 0 or resolution % 32:
        raise UsageError(f"inference resolution {resolution} is not a positive multiple of 32")
    return int(resolution)


class FrameStepper:
    """Runs the card's per-frame step with a loaded model; stateless between calls.

    The caller (the temporal engine) owns the state: it passes the previous frame's prepared
    input and prediction back in, so any frame can be resumed from a cached prediction.
    """

    def __init__(self, loaded: LoadedModel, resolution: int = 0,
                 upsampling: Upsampling | None = None) -> None:
        self.loaded = loaded
        self.upsampling = upsampling or Upsampling()
        self.module = loaded.module
        self.device = torch.device(loaded.device)
        self.dtype = loaded.dtype
        self.resolution = check_resolution(resolution or loaded.config.resolution)
        self.temporal = bool(loaded.temporal)
        options = {"dtype": torch.float32, "device": self.device}
        self._mean = torch.tensor(IMAGENET_MEAN, **options).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, **options).view(1, 3, 1, 1)
        self._pixels_read: dict[tuple[int, int], tuple[np.ndarray, np.ndarray] | None] = {}

    def at_resolution(self, resolution: int) -> "FrameStepper":
        """The same model stepping at another inference size (a preview tier's stepper)."""
        return type(self)(self.loaded, resolution, self.upsampling)

    # ----------------------------------------------------------------------------------------
    def prepare(self, rgb01: np.ndarray) -> torch.Tensor:
        """(H, W, 3) float32 RGB in [0, 1] -> (1, 3, R, R) float32 ImageNet-normalised, on device.

        The resize happens before normalisation, as in the card (resize the frame, then /255
        and normalise); both steps are linear, so only the order of rounding differs.
        """
        rgb = np.asarray(rgb01)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise InputError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
        array = np.ascontiguousarray(rgb, dtype=np.float32)
        return self.prepare_planes(torch.from_numpy(array).to(self.device).permute(2, 0, 1))

    def pixels_read(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The rows and columns of a (height, width) plate that `prepare`'s resize reads, when
        they are at most SPARSE_FRACTION of its pixels; else None.

        A bilinear resize without antialias reads two neighbours per output pixel along each
        axis, so an 8K plate going to 1024² (or a 4K one to a 512 preview) reads about an
        eighth of its pixels: only those need converting, and the model input is the same to
        the bit (the others stay 0 and are multiplied by nothing). Beyond that fraction,
        gathering and scattering cost more than the conversion saved. Checked once per plate
        size against torch on this device, with NaN in every pixel said to be unread.
        """
        if self.upsampling.needs_guide:  # the edge-aware upsampling wants the whole plate
            return None
        key = (height, width)
        if key not in self._pixels_read:
            rows = resize_taps(height, self.resolution)
            cols = resize_taps(width, self.resolution)
            sparse = rows.size * cols.size <= SPARSE_FRACTION * height * width
            self._pixels_read[key] = ((rows, cols) if sparse and self._reads_only(rows, height)
                                      and self._reads_only(cols, width) else None)
        return self._pixels_read[key]

    def _reads_only(self, taps: np.ndarray, size: int) -> bool:
        """Whether the resize of `size` pixels to the model reads nothing but `taps` (NaN
        elsewhere must not reach the output), in `prepare`'s memory layout on this device."""
        probe = np.full((size, 2, 3), np.nan, np.float32)
        probe[taps] = 0.5
        for image in (probe, np.ascontiguousarray(probe.transpose(1, 0, 2))):
            planes = torch.from_numpy(image).to(self.device).permute(2, 0, 1).unsqueeze(0)
            with torch.inference_mode():
                out = resize_bilinear(planes, self.resolution, self.resolution)
            if not bool(torch.isfinite(out).all()):
                return False
        return True

    def prepare_planes(self, planes: torch.Tensor) -> torch.Tensor:
        """As `prepare`, for model RGB already converted on the device: (3, H, W) float32 in
        [0, 1] -> (1, 3, R, R) normalised, on device."""
        if planes.dim() != 3 or planes.shape[0] != 3:
            raise InputError(f"expected (3, H, W) RGB planes, got shape {tuple(planes.shape)}")
        with torch.inference_mode():
            image = planes.to(self.device, torch.float32).unsqueeze(0)
            image = resize_bilinear(image, self.resolution, self.resolution)
            return ((image - self._mean) / self._std).contiguous()

    def step(self, cur: torch.Tensor, prev: torch.Tensor | None,
             prev_pred: torch.Tensor | None) -> torch.Tensor:
        """Predict one frame: (1, 1, R, R) sigmoid alpha in the model dtype (the next state).

        `prev` and `prev_pred` are the previous frame's `prepare()` output and `step()` result;
        pass None for both on the chain's first frame (the card then feeds zeros). The masked
        prior `prev * prev_pred` is formed in float32 and the whole input cast once to the model
        dtype.
        """
        if (prev is None) != (prev_pred is None):
            raise ValueError("prev and prev_pred must both be given or both be None")
        with torch.inference_mode():
            x = self._model_input(cur, prev, prev_pred)
            output = self.module(x)
            logits = output[-1] if isinstance(output, (list, tuple)) else output
            return logits.sigmoid()

    def guide_for(self, rgb01: np.ndarray) -> np.ndarray | None:
        """What `to_plate` needs of this frame's plate: the plate as the model saw it for an
        edge-aware upsampling, None for bilinear (so nothing is kept for the default)."""
        return rgb01 if self.upsampling.needs_guide else None

    def to_plate(self, pred: torch.Tensor, height: int, width: int,
                 guide: np.ndarray | None = None) -> np.ndarray:
        """Resize a prediction back to the plate: (height, width) float32 alpha in [0, 1].

        Bilinear (the card's) unless the stepper's upsampling is edge-aware and `guide`, the
        plate as the model saw it ((H, W, 3) RGB in [0, 1], from the colour transform), is
        given. Only the matte changes: the prediction stays the temporal state.
        """
        up = self.upsampling
        mode = up.mode if guide is not None else "bilinear"
        return upsample(pred, guide, height, width, mode, radius=up.radius, eps=up.eps)

    # ----------------------------------------------------------------------------------------
    def _model_input(self, cur: torch.Tensor, prev: torch.Tensor | None,
                     prev_pred: torch.Tensor | None) -> torch.Tensor:
        """The card's model input: cat[cur, prev * prev_pred]; cur alone for 3-channel models."""
        cur = cur.to(self.device, torch.float32)
        if self.temporal:
            if prev is None:
                prior = torch.zeros_like(cur)
            else:
                prior = (prev.to(self.device, torch.float32)
                         * prev_pred.to(self.device, torch.float32))
            x = torch.cat([cur, prior], dim=1)
        else:
            x = cur
        x = x.to(self.dtype)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def matte_state(alpha: np.ndarray, stepper: FrameStepper) -> torch.Tensor:
    """A plate-resolution matte (H, W) in [0, 1] as the R x R state the next frame continues
    from: the card's bilinear resize (the one the plate takes to the model, so the prior
    `prev * state` lines up with the picture), in the model dtype on the model's device.

    A keyframe's state: the artist's matte becomes the prior of the frame after it.
    """
    size = stepper.resolution
    with torch.inference_mode():
        image = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32))
        image = image.to(stepper.device)[None, None]
        return resize_bilinear(image, size, size).clamp(0.0, 1.0).to(stepper.dtype).contiguous()
