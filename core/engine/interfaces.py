"""What a matte session needs from its parts, as typed protocols.

`open_session` builds the real ones (`PlateSequence` or `MovieSequence`, `ColourTransform`,
`FrameStepper`); tests and benchmarks may pass their own (a zero-cost stepper, a colour path
that is wrong on purpose) as long as they keep these shapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence

if TYPE_CHECKING:
    import numpy as np
    import torch

    from ..model.loader import LoadedModel
    from ..io.plates import ImageInfo, Plate


class Plates(Protocol):
    """A shot's plate frames: an image sequence or a movie."""

    frames: Sequence[int]
    first_frame: int
    reads_in_order: bool  # a movie decodes forward: one reader thread, frames in order

    def read(self, frame: int, *, keep_half: bool = False, threads: int = 0) -> "Plate":
        """The plate's display-window RGB and its header facts."""

    def info(self, frame: int) -> "ImageInfo":
        """The header facts of one frame (windows, metadata) without its pixels."""

    def fingerprint(self, frame: int, content: bool = False) -> str:
        """Size + mtime of the frame's file, or a hash of its content."""


class ModelColour(Protocol):
    """The colour path from plate RGB to what the model sees."""

    @property
    def identity(self) -> str:
        """Text covering everything that changes the converted pixels (part of chain keys)."""

    def describe(self) -> str:
        """Human-readable 'from -> to'."""

    def convert(self, rgb: "np.ndarray", *, threads: int = 0) -> tuple["np.ndarray", int]:
        """Model RGB in [0, 1] and the count of NaN/Inf pixels set to 0."""


class Stepper(Protocol):
    """One frame of the model card's loop on a loaded model (see `step.FrameStepper`)."""

    loaded: "LoadedModel"
    device: "torch.device"
    dtype: "torch.dtype"
    resolution: int

    def at_resolution(self, resolution: int) -> "Stepper":
        """The same model at another inference size."""

    def prepare(self, rgb01: "np.ndarray") -> "torch.Tensor":
        """Plate RGB in [0, 1] -> the normalised R x R model input."""

    def prepare_planes(self, planes: "torch.Tensor") -> "torch.Tensor":
        """Model RGB (3, H, W) in [0, 1] already on the device -> the same model input."""

    def step(self, cur: "torch.Tensor", prev: "torch.Tensor | None",
             prev_pred: "torch.Tensor | None") -> "torch.Tensor":
        """The R x R prediction of this frame (the next frame's state)."""

    def to_plate(self, pred: "torch.Tensor", height: int, width: int,
                 guide: "np.ndarray | None" = None) -> "np.ndarray":
        """A prediction resized back to the plate (edge-aware when given the plate as guide)."""


def plate_padding(plates: Any) -> int:
    """Frame-number padding of the plates' file names (4 for movies and short tokens)."""
    pattern = getattr(plates, "pattern", None)
    return max(4, int(getattr(pattern, "padding", 4) or 4))
