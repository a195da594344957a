"""Quality figures of mattes against ground truth, and a contact sheet to look at them.

Metrics (all on plate-resolution mattes in [0, 1]):
- IoU: intersection over union of `alpha > 0.5` with `gt > 0.5`, per frame, then averaged.
- SAD: sum of absolute alpha differences per frame, in thousands (the matting literature's
  unit), averaged over frames; it grows with the plate size. MAE is the same per pixel.
- Stability: mean |alpha_t - alpha_{t-1}| over the pixels whose ground truth did not change
  between the two frames (static regions); flicker there is an error, since the truth is still.
- MSE: mean squared alpha difference per pixel.
- Gradient error: sum over pixels of (|grad alpha| - |grad gt|)², the gradients taken with
  first-derivative-of-Gaussian filters of sigma 1.4 (Rhemann et al. 2009, the alphamatting.com
  benchmark); it grows when edges are blurred or jagged.

The contact sheet has one row per chosen frame and the columns: plate (as the model sees it,
display-referred), matte, plate over a checkerboard through the matte, and the ground truth.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..fs import atomic_write
from ..errors import OutputError, library_text

GRADIENT_SIGMA = 1.4  # pixels, the alphamatting.com benchmark's
STATIC_EPS = 1e-3  # a pixel is static when its ground truth moves less than this
CHECKER = 16  # checkerboard square size of the composite column, in pixels
GAP = 4  # pixels between cells of the contact sheet


def iou(alpha: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of the thresholded matte and ground truth (1 when both empty)."""
    a, g = alpha > threshold, gt > threshold
    union = np.logical_or(a, g).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, g).sum()) / float(union)


def sad(alpha: np.ndarray, gt: np.ndarray) -> float:
    """Sum of absolute differences, in thousands."""
    return float(np.abs(alpha.astype(np.float64) - gt).sum()) / 1000.0


def mse(alpha: np.ndarray, gt: np.ndarray) -> float:
    """Mean squared difference per pixel."""
    return float(np.mean((alpha.astype(np.float64) - gt) ** 2))


def gradient_error(alpha: np.ndarray, gt: np.ndarray, sigma: float = GRADIENT_SIGMA) -> float:
    """Sum of squared differences of gradient magnitudes (Gaussian-derivative filters)."""
    return float(((_gradient_magnitude(alpha, sigma) - _gradient_magnitude(gt, sigma)) ** 2)
                 .sum())


def _gradient_magnitude(image: np.ndarray, sigma: float) -> np.ndarray:
    """|grad image| with separable Gaussian and first-derivative-of-Gaussian filters."""
    radius = int(np.ceil(3.0 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    gauss = np.exp(-x * x / (2.0 * sigma * sigma))
    gauss /= gauss.sum()
    deriv = x * gauss
    deriv /= np.sum(x * deriv)  # a unit ramp has derivative 1
    image = image.astype(np.float64)
    gx = _filter_axis(_filter_axis(image, deriv, 1), gauss, 0)
    gy = _filter_axis(_filter_axis(image, deriv, 0), gauss, 1)
    return np.hypot(gx, gy)


def _filter_axis(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """Correlate along one axis, the border pixels repeated outwards."""
    radius = len(kernel) // 2
    pad = [(0, 0)] * image.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(image, pad, mode="edge")
    out = np.zeros_like(image)
    length = image.shape[axis]
    for i, weight in enumerate(kernel):
        out += weight * np.take(padded, np.arange(i, i + length), axis=axis)
    return out


def stability(mattes: Sequence[np.ndarray], gts: Sequence[np.ndarray],
              eps: float = STATIC_EPS) -> float:
    """Mean |Δalpha| between consecutive frames on pixels where the ground truth is static."""
    total, count = 0.0, 0
    for t in range(1, len(mattes)):
        static = np.abs(gts[t].astype(np.float64) - gts[t - 1]) < eps
        n = int(static.sum())
        if n:
            total += float(np.abs(mattes[t].astype(np.float64) - mattes[t - 1])[static].sum())
            count += n
    return total / count if count else 0.0


def quality(mattes: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> dict[str, object]:
    """IoU, SAD, MAE (means over frames), per-frame IoU, and stability, as a JSON-able dict."""
    if len(mattes) != len(gts) or not mattes:
        raise ValueError("quality needs as many mattes as ground-truth frames (at least one)")
    ious = [iou(a, g) for a, g in zip(mattes, gts)]
    return {
        "iou": float(np.mean(ious)),
        "iou_min": float(np.min(ious)),
        "sad": float(np.mean([sad(a, g) for a, g in zip(mattes, gts)])),
        "mae": float(np.mean([np.abs(a.astype(np.float64) - g).mean()
                              for a, g in zip(mattes, gts)])),
        "stability": stability(mattes, gts),
        "iou_per_frame": [round(v, 4) for v in ious],
    }


# ----------------------------------------------------------------------------------------------
# Contact sheet


def checkerboard(height: int, width: int, size: int = CHECKER) -> np.ndarray:
    """Grey checkerboard (H, W, 3) in display values, the usual 'transparent' backdrop."""
    ys, xs = np.indices((height, width))
    board = np.where(((ys // size) + (xs // size)) % 2 == 0, 0.3, 0.55).astype(np.float32)
    return np.repeat(board[..., None], 3, axis=2)


def composite(plate01: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The plate over a checkerboard through the matte (display-referred, for viewing)."""
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    return plate01 * a + checkerboard(*alpha.shape) * (1.0 - a)


def _grey(alpha: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(alpha, 0.0, 1.0)[..., None], 3, axis=2)


def sheet_pixels(plates01: Sequence[np.ndarray], mattes: Sequence[np.ndarray],
                 gts: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """The contact sheet as an (H, W, 3) float array in [0, 1] (rows = frames)."""
    rows = []
    for i, (plate, alpha) in enumerate(zip(plates01, mattes)):
        cells = [np.clip(plate, 0.0, 1.0), _grey(alpha), composite(plate, alpha)]
        if gts is not None:
            cells.append(_grey(gts[i]))
        h = plate.shape[0]
        gap = np.ones((h, GAP, 3), np.float32)
        row = [cells[0]]
        for cell in cells[1:]:
            row += [gap, cell]
        rows.append(np.concatenate(row, axis=1))
    width = rows[0].shape[1]
    out = [rows[0]]
    for row in rows[1:]:
        out += [np.ones((GAP, width, 3), np.float32), row]
    return np.concatenate(out, axis=0).astype(np.float32)


def write_contact_sheet(path: str, plates01: Sequence[np.ndarray], mattes: Sequence[np.ndarray],
                        gts: Sequence[np.ndarray] | None = None) -> str:
    """Write the contact sheet as an 8-bit PNG (OpenImageIO), atomically; returns the path.

    Columns: plate (display-referred), matte, composite over a checkerboard, ground truth.
    """
    import OpenImageIO as oiio

    if not plates01:
        raise ValueError("a contact sheet needs at least one frame")
    pixels = np.round(sheet_pixels(plates01, mattes, gts) * 255.0).astype(np.uint8)

    def write(tmp: str) -> None:
        buf = oiio.ImageBuf(np.ascontiguousarray(pixels))
        if not buf.write(tmp, oiio.UINT8):
            raise OutputError(f"cannot write the contact sheet: {library_text(buf.geterror)}",
                              path=path)

    atomic_write(path, write)
    return path


def pick_rows(count: int, rows: int = 5) -> list[int]:
    """Indices of `rows` frames spread evenly over `count` frames (first and last included)."""
    if count <= rows:
        return list(range(count))
    return sorted({int(round(i * (count - 1) / (rows - 1))) for i in range(rows)})


def per_frame_mattes(pattern: str, *, precision: str = "fp32",
                     model: str = "demo") -> list[np.ndarray]:
    """Demo-model mattes of a plate sequence with the temporal prior zeroed on every frame.

    The baseline the temporal model must beat on stability: the same reader, colour
    transform and card-loop step as the pipeline, each frame treated as a chain's first.
    """
    from ..engine.opening import open_session

    session = open_session(pattern, {"model": model, "device": "cpu", "precision": precision})
    plates, colour, stepper = session.plates, session.colour, session.stepper
    mattes = []
    for frame in plates.frames:
        plate = plates.read(frame)
        pred = stepper.step(stepper.prepare(colour.to_model(plate.rgb)), None, None)
        mattes.append(stepper.to_plate(pred, *plate.rgb.shape[:2]))
    return mattes
