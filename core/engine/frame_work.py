"""One compute pass, frame by frame: what the pipeline calls, and what a pass records.

`FrameWork` holds the per-frame operations of a pass (read and convert a plate, load a stored
prior, step the model, write the matte then the state) as `pipeline.FramePipeline` calls
them; `EngineCounters` and `EnsureResult` are what a pass (and a session) tells its caller.
Kept apart from `session`, which decides *what* to compute (cache answers, lock, plan), so
that this module is only *how* one frame is computed and stored.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Collection

import numpy as np
import torch

from ..io.mattes import read_matte_stamp, write_matte
from .cache import MATTE_COMPRESSION, state_from_array, state_to_array
from .cuts import CutWatch, score_text, stamp_score
from .interfaces import converts_pixels
from .pipeline import Prepared, Run
from .step import matte_state
from .streams import ReaderStream
from .tiers import Tier

if TYPE_CHECKING:
    from .session import MatteSession

ProgressCallback = Callable[[int, int, int], None]  # (frames done, frames to do, frame)
# `sink(frame, alpha, stamp, info, cache_path)`: a computed frame's plate-resolution matte in
# memory, before its state makes it valid. True when the sink has put that matte at
# `cache_path` itself (a hard link to an output with the same pixels, stamped with the key,
# start and tier of `stamp`, which is what makes a cached matte valid); False when the engine
# still writes its own copy.
MatteSink = Callable[[int, np.ndarray, dict, Any, str], bool]


@dataclass
class EngineCounters:
    """What a session (or one request) did, for the command line's `--json` summary."""

    frames_requested: int = 0
    frames_computed: int = 0  # frames computed: model steps run, and keyframes taken as given
    frames_from_cache: int = 0  # requested frames answered without computing
    states_loaded: int = 0  # stored predictions continued from
    seconds_computing: float = 0.0  # wall time of compute passes (I/O overlapped included)
    seconds_in_model: float = 0.0  # time inside the model step alone

    @property
    def seconds_per_computed_frame(self) -> float:
        """Wall seconds per model step (0 when nothing was computed)."""
        return self.seconds_computing / self.frames_computed if self.frames_computed else 0.0

    def add(self, other: "EngineCounters") -> None:
        """Add another request's counts to these."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly counters."""
        return {**asdict(self), "seconds_per_computed_frame": self.seconds_per_computed_frame}


@dataclass
class EnsureResult:
    """What one request returned: matte paths, NaN/Inf pixels zeroed per frame, counts."""

    paths: dict[int, str]
    bad_pixels: dict[int, int] = field(default_factory=dict)
    computed: list[int] = field(default_factory=list)  # frames the model stepped, in order
    cuts: list[int] = field(default_factory=list)  # computed frames that restarted the chain
    keyframes: list[int] = field(default_factory=list)  # computed frames that are keyframes
    counters: EngineCounters = field(default_factory=EngineCounters)


class StaleState(Exception):
    """A state file named valid could not be read back (then it is removed and re-planned)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class FrameWork:
    """The per-frame operations of one compute pass, as the pipeline calls them.

    `read` runs on reader threads, `step` and `load_prior` on the caller's thread (the model
    is serial), `write` on the writer threads (several frames at once). What the pass learns
    (NaN/Inf pixels, counts, frames computed) goes into its own `EnsureResult`.
    """

    def __init__(self, session: "MatteSession", tier: Tier, runs: list[Run],
                 result: EnsureResult, sink: MatteSink | None = None,
                 keyframes: Collection[int] = ()) -> None:
        """`keyframes`: frames whose keys hold a keyframe (the artist's matte is read for
        those the runs compute)."""
        self.session, self.tier, self.stepper, self.result = session, tier, tier.stepper, result
        self.sink = sink
        self.where = {f: run for run in runs for f in run.frames}  # frame -> run (start, keys)
        self.keyframes = frozenset(keyframes) & set(self.where)  # computed keyframes only
        for run in runs:
            if run.prior is not None:
                self.where.setdefault(run.prior, run)
        self._bad_lock = threading.Lock()
        self.cuts = (CutWatch(self._stored_score, self.read, session.frames.between)
                     if session.detect_cuts else None)

    def _stored_score(self, frame: int, start: int, key: str) -> float | None:
        """The cut score a cached matte of this chain frame recorded, if it is valid."""
        stamp = read_matte_stamp(self.tier.store.matte_path(frame)) or {}
        if stamp.get("key") != key or stamp.get("start") != start:
            return None
        return stamp_score(stamp)

    def read(self, frame: int) -> Prepared:
        """Decode, colour-convert and resize one plate frame for the model.

        A half plate stays half until the colour conversion widens it block by block, and
        each frame is converted on its reader thread: the frames in flight are the
        parallelism, so no frame spreads over the cores the model is using. On a GPU the
        plate is converted there when the transform has a device form, on the reader
        thread's own stream (`streams.ReaderStream`).
        """
        plate = self.session.plates.read(frame, keep_half=True, threads=1)
        on_device = self.session.device_colour
        with ReaderStream(self.stepper.device) as stream:
            if on_device is not None and on_device.handles(plate.rgb.dtype):
                # uploaded as decoded, converted where the model runs
                planes, bad = on_device.convert(torch.from_numpy(plate.rgb))
                cur, guide = self.stepper.prepare_planes(planes), planes.permute(1, 2, 0)
            else:
                rgb01, bad = self._convert(plate.rgb)
                cur, guide = self.stepper.prepare(rgb01), rgb01
        stream.hand_over(cur, guide)
        if bad:
            with self._bad_lock:
                self.result.bad_pixels[frame] = bad
        height, width = plate.rgb.shape[0], plate.rgb.shape[1]
        key = (self.session.keyframes.read(frame, width, height)
               if frame in self.keyframes and self.session.keyframes is not None else None)
        return Prepared(frame, cur, plate.info, height, width,
                        guide=self.stepper.guide_for(guide), key=key)

    def _convert(self, rgb: np.ndarray) -> tuple[np.ndarray, int]:
        """The plate as the model sees it: every pixel, or only those the resize to the model
        reads when that is a small share of a large plate (`FrameStepper.pixels_read`)."""
        colour = self.session.colour
        taps = (self.stepper.pixels_read(rgb.shape[0], rgb.shape[1])
                if converts_pixels(colour) else None)
        if taps is None:
            return colour.convert(rgb, threads=1)
        return colour.convert_pixels(rgb, *taps, threads=1)

    def load_prior(self, frame: int) -> Any:
        """The stored prediction of `frame`, exactly as it was computed."""
        run = self.where[frame]
        resolution = self.stepper.resolution
        array = self.tier.store.read_state(frame, run.start, run.keys[frame], self.stepper.dtype,
                                           (1, 1, resolution, resolution))
        if array is None:
            raise StaleState(self.tier.store.state_path(frame, run.start, run.keys[frame]))
        self.result.counters.states_loaded += 1
        if self.cuts is not None:  # the detector's history from the frames before
            self.cuts.resume(frame, run.start, run.keys)
        return state_from_array(array, self.stepper.dtype, self.stepper.device)

    def step(self, item: Prepared, prev: Prepared | None, prior: Any) -> tuple[Any, Any]:
        """One model step; the next frame continues from the state as stored on disk.

        At a cut (given, or detected between the previous frame and this one) the prior is
        dropped: the frame starts a new chain, as the first frame of a shot does. A keyframe
        takes the artist's matte instead of the model's: it is the frame's matte, and its
        state (the next frame's prior) is that matte at the model's size.
        """
        self.session.mark_computing(item.frame)
        counters = self.result.counters
        began = time.perf_counter()
        given_cut = prev is None and item.frame in self.session.frames.cuts
        if prev is None and self.cuts is not None:
            self.cuts.restart()
        if prev is not None and self.cuts is not None and self.cuts.check(prev, item):
            prev, prior, given_cut = None, None, True
        if given_cut:
            self.result.cuts.append(item.frame)
        if item.key is not None:
            pred = matte_state(item.key, self.stepper)
            self.result.keyframes.append(item.frame)
        else:
            pred = self.stepper.step(item.cur, prev.cur if prev else None, prior)
        array = state_to_array(pred)  # the exact bits a resumed run will load
        state = state_from_array(array, self.stepper.dtype, self.stepper.device)
        counters.seconds_in_model += time.perf_counter() - began
        counters.frames_computed += 1
        self.result.computed.append(item.frame)
        return state, (state, array, given_cut)

    def write(self, item: Prepared, payload: tuple[Any, np.ndarray, bool]) -> None:
        """The plate-resolution matte first (through the sink, if any), then the state that
        makes the frame valid."""
        state, array, cut = payload
        run = self.where[item.frame]
        key = run.keys[item.frame]
        if item.key is not None:  # the artist's matte, as given
            alpha = item.key
        else:
            alpha = self.stepper.to_plate(state, item.height, item.width, guide=item.guide)
        stamp = self.tier.stamp(run.start, key)
        if cut:
            stamp["cut"] = 1
        if self.cuts is not None and item.frame in self.cuts.scores:
            stamp["cut_score"] = score_text(self.cuts.scores[item.frame])
        if item.key is not None:
            stamp["keyframe"] = 1
        path = self.tier.store.matte_path(item.frame)
        if self.sink is None or not self.sink(item.frame, alpha, stamp, item.info, path):
            write_matte(path, alpha, like=item.info, compression=MATTE_COMPRESSION,
                        attributes=stamp)
        self.tier.store.write_state(item.frame, run.start, key, array)
