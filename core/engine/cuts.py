"""Hard cuts in an edit: where the model must start again from an empty prior.

Carrying the previous shot's matte across a cut as the prior is wrong (with the demo model a
wrong prior costs about 20 IoU points on the cut frame), so at a cut the chain restarts with a
zero prior, exactly as on a shot's first frame.

How a frame's change is scored (`cut_score`, on the prepared model inputs, already decoded,
colour-converted and resized, so it costs next to nothing):
- only the part of the display window both frames' data windows cover is compared, so a plate
  cropped on some frames (a bounding-box render) does not look like a new picture;
- each frame is averaged down to a 16 x 16 thumbnail, and each thumbnail loses its per-channel
  mean and is divided by its contrast, so a flash, an exposure change or a fade changes little;
- the thumbnails are compared at every offset of up to 3 cells (19% of the frame) and the
  smallest mean absolute difference is the score, so a pan scores as the little that changed
  beside the camera move; unrelated pictures score about 1;
- a comparison with a frame that has almost no contrast (black, burnt to white, one colour)
  counts in proportion to that contrast: such a frame holds no picture to tell shots apart
  by, so a fade through black and a flash burnt to white are no cut.

How a frame is decided (`CutHistory`), causally, from the scores of earlier frames only: a
frame is a *spike* when its score is above `FLOOR` and exceeds the typical change by more than
`MARGIN`, the typical change being the larger of the median score of the `WINDOW` frames
before it and the previous frame's score. Sustained fast motion raises the typical change, and
a whip pan's blur builds up over a few frames, so neither is a cut, while a hard cut still is
(a margin rather than a ratio: a cut scores about 1 whatever moved before it, so a ratio would
miss cuts after fast motion). A spike is a cut unless another spike
came in the `GAP` frames before it: a one-frame flash that the score does not see through
(another picture for one frame) starts at most one cut, at the flash frame, and the frame
after it continues that chain. A chain's first frames compare with what history there is;
the second frame, with none, is a spike above `FLOOR`.

The decision for frame f depends only on plates f-WINDOW-GAP-1..f of its chain (from the
chain's start: the shot's first frame, a listed cut, or a pre-roll's start), and detected
cuts do not reset the history, so replacing a later plate never changes an earlier decision
and a resumed chain decides exactly as a straight run: it takes the scores of the frames
before it from their cached mattes (`vrmbg:cut_score`), or scores those plates again.
Measured figures: `tests/benchmarks/cut_detection.py` and docs/performance.md.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch

THUMBNAIL = 16  # cells per side of the compared thumbnails
SHIFT = 3  # largest camera move searched, in cells (3/16 of the frame per frame)
CONTRAST_FLOOR = 0.05  # contrast (normalised units) below which a comparison counts less
WINDOW = 8  # past scores whose median is (at least) the typical change
MARGIN = 0.45  # a spike exceeds the typical change by this much...
FLOOR = 0.6  # ...and this score (hard cuts score 0.79 or more on the bench, motion 0.72 at most)
GAP = 2  # a spike within this many frames after a spike is no cut (flashes)
HISTORY = WINDOW + GAP  # past scores a decision reads

# Part of the chain identity when detection is on: another recipe must give another chain.
DETECTOR_ID = (f"thumb{THUMBNAIL}-norm{CONTRAST_FLOOR}-shift{SHIFT}-mad/"
               f"causal-median{WINDOW}-or-last+{MARGIN}>{FLOOR}/gap{GAP}/v2")

Window = tuple[int, int, int, int]  # x, y, width, height (as the plate's ImageInfo has them)
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the display window
FULL: Box = (0.0, 0.0, 1.0, 1.0)


# ---------------------------------------------------------------------------- scoring


def covered_box(data: Window, display: Window) -> Box:
    """The part of the display window a data window covers, as fractions of the display."""
    x0 = max(data[0], display[0]) - display[0]
    y0 = max(data[1], display[1]) - display[1]
    x1 = min(data[0] + data[2], display[0] + display[2]) - display[0]
    y1 = min(data[1] + data[3], display[1] + display[3]) - display[1]
    return (x0 / display[2], y0 / display[3], x1 / display[2], y1 / display[3])


def common_box(a: Box, b: Box) -> Box:
    """The region both frames cover; the whole frame when that is too small to compare
    (then the frames share almost no pixels, and their pictures are compared as they are)."""
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    if box[2] - box[0] < 0.25 or box[3] - box[1] < 0.25:
        return FULL
    return box


def thumbnail(picture: "torch.Tensor", box: Box = FULL) -> tuple[np.ndarray, float]:
    """The (3, T, T) thumbnail of `box` of a prepared frame (1, 3, R, R), without its
    per-channel mean and divided by its contrast (standard deviation), and that contrast."""
    import torch
    import torch.nn.functional as F

    size = picture.shape[-1]
    x0, y0 = int(np.ceil(box[0] * size)), int(np.ceil(box[1] * size))
    x1, y1 = int(np.floor(box[2] * size)), int(np.floor(box[3] * size))
    if box != FULL:  # the resize blends a pixel either side of a data window's edge
        x0, y0, x1, y1 = x0 + 1, y0 + 1, x1 - 1, y1 - 1
    with torch.inference_mode():
        crop = picture[0, :, y0:y1, x0:x1].float()
        thumb = F.adaptive_avg_pool2d(crop, THUMBNAIL).cpu().double().numpy()
    thumb = thumb - thumb.mean(axis=(1, 2), keepdims=True)
    contrast = float(thumb.std())
    return thumb / max(contrast, 1e-9), contrast


def shifted_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest mean absolute difference of two thumbnails over offsets of up to SHIFT cells
    (the overlap of `a` moved by the offset against `b`)."""
    size = a.shape[-1]
    best = float("inf")
    for dy in range(-SHIFT, SHIFT + 1):
        for dx in range(-SHIFT, SHIFT + 1):
            ya, yb = max(0, -dy), max(0, dy)
            xa, xb = max(0, -dx), max(0, dx)
            h, w = size - abs(dy), size - abs(dx)
            diff = np.abs(a[:, ya:ya + h, xa:xa + w] - b[:, yb:yb + h, xb:xb + w]).mean()
            best = min(best, float(diff))
    return best


def cut_score(previous: "torch.Tensor", current: "torch.Tensor",
              previous_box: Box = FULL, current_box: Box = FULL) -> float:
    """How much the picture changed from `previous` to `current` (prepared frames, 1, 3, R,
    R), beyond a camera move, a change of exposure and a change of data window: 0 for the
    same picture, about 1.1 for unrelated ones. The boxes are what each data window covers
    (`covered_box`)."""
    box = common_box(previous_box, current_box)
    (a, contrast_a), (b, contrast_b) = thumbnail(previous, box), thumbnail(current, box)
    weight = min(1.0, min(contrast_a, contrast_b) / CONTRAST_FLOOR)
    return shifted_difference(a, b) * weight


# ---------------------------------------------------------------------------- deciding


def is_spike(past: Sequence[float], score: float) -> bool:
    """True when `score` stands out from the scores before it in its chain: above FLOOR,
    and MARGIN above the larger of the median of the last WINDOW and the last one."""
    recent = list(past)[-WINDOW:]
    if score <= FLOOR:
        return False
    return not recent or score > MARGIN + max(statistics.median(recent), recent[-1])


def decide(scores: Sequence[float]) -> bool:
    """Whether the last of a chain's scores (with up to HISTORY scores before it) is a cut:
    a spike with no spike in the GAP scores before it."""
    scores = list(scores)[-(HISTORY + 1):]
    last = len(scores) - 1
    if not is_spike(scores[:last], scores[last]):
        return False
    return not any(is_spike(scores[:i], scores[i]) for i in range(max(0, last - GAP), last))


class CutHistory:
    """The scores a chain has seen since its start, as many as a decision reads."""

    def __init__(self, past: Iterable[float] = ()) -> None:
        self.scores: deque[float] = deque(past, maxlen=HISTORY + 1)

    def observe(self, score: float) -> bool:
        """Add the next frame's score; True when that frame is a cut."""
        self.scores.append(float(score))
        return decide(self.scores)


def detect_cuts(frames: Sequence["torch.Tensor"],
                boxes: Sequence[Box] | None = None) -> list[int]:
    """Indices of the frames of one chain (prepared frames in order, with the boxes their data
    windows cover) that start a new shot, as the engine decides them."""
    boxes = list(boxes) if boxes is not None else [FULL] * len(frames)
    history = CutHistory()
    return [i for i in range(1, len(frames))
            if history.observe(cut_score(frames[i - 1], frames[i], boxes[i - 1], boxes[i]))]


def is_cut(previous: "torch.Tensor", current: "torch.Tensor") -> bool:
    """True when `current` starts a new shot after `previous` with no history before them
    (the decision on a chain's second frame)."""
    return CutHistory().observe(cut_score(previous, current))


# ---------------------------------------------------------------------------- in the engine


def prepared_box(item: Any) -> Box:
    """What the data window of a prepared frame (`pipeline.Prepared`) covers."""
    info = getattr(item, "info", None)
    if info is None:
        return FULL
    return covered_box(info.data_window, info.display_window)


class CutWatch:
    """The detector as a compute pass runs it: one history per run of frames.

    `stored(frame, start, key)` is the score a valid cached matte of `frame` recorded (None
    when there is none); `read(frame)` prepares a plate frame. A run from a zero prior starts
    an empty history; a run continuing from a stored frame takes the scores of the frames
    before it from their mattes, or scores those plates again, so it decides as a straight
    run would.
    """

    def __init__(self, stored: Callable[[int, int, str], float | None],
                 read: Callable[[int], Any], chain_frames: Callable[[int, int], list[int]]
                 ) -> None:
        """`chain_frames(first, last)` lists the chain frames from `first` to `last`."""
        self._stored, self._read, self._between = stored, read, chain_frames
        self._history = CutHistory()
        self.scores: dict[int, float] = {}  # frame -> its score, for its matte's stamp

    def restart(self) -> None:
        """A run from a zero prior: the chain starts here, with no history."""
        self._history = CutHistory()

    def resume(self, prior: int, start: int, keys: dict[int, str]) -> None:
        """A run continuing from stored frame `prior` of the chain starting at `start`."""
        frames = self._between(start, prior)[1:][-HISTORY:]
        past: dict[int, float] = {}
        for frame in frames:
            score = self._stored(frame, start, keys[frame]) if frame in keys else None
            if score is not None:
                past[frame] = score
        missing = [f for f in frames if f not in past]
        if missing:
            past.update(self._rescore(missing, start))
        self._history = CutHistory(past[f] for f in frames)

    def _rescore(self, frames: list[int], start: int) -> dict[int, float]:
        """Scores of `frames` from their plates (and each one's previous chain frame)."""
        chain = self._between(start, frames[-1])
        before = {f: chain[chain.index(f) - 1] for f in frames}
        prepared = {f: self._read(f) for f in sorted(set(frames) | set(before.values()))}
        return {f: cut_score(prepared[before[f]].cur, prepared[f].cur,
                             prepared_box(prepared[before[f]]), prepared_box(prepared[f]))
                for f in frames}

    def check(self, prev: Any, item: Any) -> bool:
        """Score `item` against the previous chain frame `prev` (prepared frames); True when
        it starts a new shot."""
        score = cut_score(prev.cur, item.cur, prepared_box(prev), prepared_box(item))
        self.scores[item.frame] = score
        return self._history.observe(score)


def stamp_score(stamp: dict[str, Any] | None) -> float | None:
    """The score a matte's stamp records (`vrmbg:cut_score`, written exactly), or None."""
    text = (stamp or {}).get("cut_score")
    try:
        return float(text) if isinstance(text, str) else None
    except ValueError:
        return None


def score_text(score: float) -> str:
    """A score as its matte's stamp records it (read back to the same float)."""
    return repr(float(score))
