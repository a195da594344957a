"""What a matte session needs from its parts, as typed protocols.

`engine.opening` builds the real ones (`PlateSequence` or `MovieSequence`, `ColourTransform`,
`FrameStepper`); tests and benchmarks may pass their own (a zero-cost stepper, a colour path
that is wrong on purpose) as long as they keep these shapes.

Every feature the engine uses is declared here. What only some implementations have is
declared too, with the one function that answers for any object (`plate_file`,
`plate_origin`, `movie_fps`, `close_plates`, `plate_layer`, `plate_padding`,
`converts_pixels`), so no engine module probes for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence

if TYPE_CHECKING:
    from fractions import Fraction

    import numpy as np
    import torch

    from ..io.plate_types import ImageInfo, Plate
    from ..model.loader import LoadedModel
    from .upsample import Upsampling


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

    # Only some plates have these (see the functions below the protocols):
    # path_for(frame) -> str    the file of a frame (image sequences; a movie is one file)
    # path: str                 the movie file (movies)
    # fps: Fraction             the movie's frame rate (movies)
    # close()                   let go of the file (movies)
    # layer: str                the EXR layer read (image sequences)


class ModelColour(Protocol):
    """The colour path from plate RGB to what the model sees."""

    @property
    def identity(self) -> str:
        """Text covering everything that changes the converted pixels (part of chain keys)."""

    def describe(self) -> str:
        """Human-readable 'from -> to'."""

    def convert(self, rgb: "np.ndarray", *, threads: int = 0) -> tuple["np.ndarray", int]:
        """Model RGB in [0, 1] and the count of NaN/Inf pixels set to 0."""

    # Optional (`converts_pixels` tells; `ColourTransform` has it, a stand-in may not):
    def convert_pixels(self, rgb: "np.ndarray", rows: "np.ndarray", cols: "np.ndarray", *,
                       threads: int = 0) -> tuple["np.ndarray", int]:
        """As `convert`, for the given rows x columns of the plate only (the others 0)."""


class Stepper(Protocol):
    """One frame of the model card's loop on a loaded model (see `step.FrameStepper`)."""

    loaded: "LoadedModel"
    device: "torch.device"
    dtype: "torch.dtype"
    resolution: int
    temporal: bool  # each frame also sees the previous one and its matte (False: per-frame)
    upsampling: "Upsampling"  # back to plate size (its identity enters the chain's)

    def at_resolution(self, resolution: int) -> "Stepper":
        """The same model at another inference size."""

    def prepare(self, rgb01: "np.ndarray") -> "torch.Tensor":
        """Plate RGB in [0, 1] -> the normalised R x R model input."""

    def prepare_planes(self, planes: "torch.Tensor") -> "torch.Tensor":
        """Model RGB (3, H, W) in [0, 1] already on the device -> the same model input."""

    def pixels_read(self, height: int, width: int) -> "tuple[np.ndarray, np.ndarray] | None":
        """The rows and columns of a plate `prepare` reads, when few enough to convert alone."""

    def guide_for(self, rgb01: "np.ndarray") -> "np.ndarray | None":
        """What `to_plate` needs of the plate as its guide (None when nothing)."""

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


def plate_file(plates: Any, frame: int) -> str | None:
    """The file of plate `frame` for an image sequence; None for a movie (one file)."""
    path_for = getattr(plates, "path_for", None)
    return str(path_for(frame)) if path_for is not None else None


def plate_origin(plates: Any, frame: int) -> str:
    """The file plate `frame` is read from: its own file, or the movie ("" when unknown)."""
    return plate_file(plates, frame) or str(getattr(plates, "path", "") or "")


def movie_fps(plates: Any) -> "Fraction | None":
    """The frame rate of a movie (a Fraction); None for image sequences."""
    return getattr(plates, "fps", None)


def close_plates(plates: Any) -> None:
    """Let go of the plates' file (a movie's decoder); image sequences hold none open."""
    close = getattr(plates, "close", None)
    if close is not None:
        close()


def plate_layer(plates: Any, default: str = "") -> str:
    """The EXR layer the plates read (`default` for plates that have none, like movies)."""
    return str(getattr(plates, "layer", default) or "")


def converts_pixels(colour: Any) -> bool:
    """True when the colour path has the optional `convert_pixels` (sparse conversion)."""
    return callable(getattr(colour, "convert_pixels", None))
