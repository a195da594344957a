"""Overlapping I/O with the model: the model step is the only serial part of a render.

While the model runs frame t on the calling thread, reader threads decode, colour-convert and
resize frames t+1.. (OpenImageIO, OCIO and torch release the GIL), and writer threads resize
back and write the matte and state of frames t-1, t-2... Queues are bounded, so memory stays
flat on long shots.

The temporal state is explicit at the call site of `run`: each `Run` names the frame whose
stored prediction it continues from (or None for a zero prior) and the frames it computes in
chain order; `step(item, prev, prior)` gets the previous frame's prepared input and prediction.

Errors keep their identity: a bad plate raised in a reader thread surfaces in the caller as the
same InputError (file and frame) when the engine reaches that frame; frames finished before it,
or before a cancel, are always written before `run` returns or raises.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from ..errors import Cancelled


@dataclass
class Run:
    """Consecutive chain frames to compute, continuing from the stored state of `prior`."""

    prior: int | None  # frame whose prediction and plate feed the first frame; None = zeros
    frames: list[int]
    start: int  # first frame of the chain these frames belong to (part of their keys)
    keys: dict[int, str] = field(default_factory=dict)  # frame -> chain key


@dataclass
class Prepared:
    """A frame ready for the model: its normalised R x R input and what the write needs."""

    frame: int
    cur: Any  # (1, 3, R, R) tensor on the model device
    info: Any  # the plate's ImageInfo (windows, metadata) for the matte
    height: int
    width: int
    guide: Any = None  # plate RGB in [0, 1] for edge-aware upsampling of the matte, else None
    key: Any = None  # the artist's matte (H, W) when the frame is a keyframe, else None


def frames_to_read(runs: Sequence[Run]) -> list[int]:
    """Every frame whose plate the runs need, in the order the model consumes them."""
    order: list[int] = []
    for run in runs:
        if run.prior is not None:
            order.append(run.prior)
        order.extend(run.frames)
    return order


class _Prefetch:
    """Reads frames ahead on a thread pool and hands them out strictly in order."""

    def __init__(self, pool: ThreadPoolExecutor, read: Callable[[int], Prepared],
                 frames: Iterable[int], depth: int) -> None:
        self._pool, self._read, self._depth = pool, read, max(1, depth)
        self._pending = iter(frames)
        self._ahead: deque[tuple[int, Future]] = deque()
        self._fill()

    def _fill(self) -> None:
        while len(self._ahead) < self._depth:
            frame = next(self._pending, None)
            if frame is None:
                return
            self._ahead.append((frame, self._pool.submit(self._read, frame)))

    def next(self, frame: int) -> Prepared:
        """The prepared frame `frame` (the next in order); re-raises the reader's error."""
        expected, future = self._ahead.popleft()
        if expected != frame:  # a planning bug, never a user error
            raise RuntimeError(f"pipeline read frame {expected}, expected {frame}")
        self._fill()
        return future.result()

    def cancel(self) -> None:
        """Drop reads not started yet (running ones finish and are discarded)."""
        self._pending = iter(())
        while self._ahead:
            self._ahead.popleft()[1].cancel()


class _Writes:
    """Writes finished frames on the writer threads (each frame's write whole on one thread,
    frames side by side), reporting them in order on the caller's thread."""

    def __init__(self, pool: ThreadPoolExecutor, write: Callable[[Prepared, Any], None],
                 on_written: Callable[[int], None], depth: int) -> None:
        self._pool, self._write, self._on_written = pool, write, on_written
        self._depth = max(1, depth)
        self._queue: deque[tuple[int, Future]] = deque()

    def submit(self, item: Prepared, payload: Any) -> None:
        """Queue a frame's write; waits while too many are queued (bounded memory)."""
        self._queue.append((item.frame, self._pool.submit(self._write, item, payload)))
        self.collect(block_over=self._depth)

    def collect(self, block_over: int = 0) -> None:
        """Report finished writes; wait for the oldest while more than `block_over` remain."""
        while self._queue and (self._queue[0][1].done() or len(self._queue) > block_over):
            frame, future = self._queue.popleft()
            future.result()  # a write error (OutputError) surfaces here, on the caller
            self._on_written(frame)

    def finish(self, raise_errors: bool) -> None:
        """Wait for every queued write and report each one that succeeded; the first error is
        raised afterwards only when asked (else dropped)."""
        first: BaseException | None = None
        while self._queue:
            frame, future = self._queue.popleft()
            try:
                future.result()
            except BaseException as exc:
                first = first or exc
                continue
            self._on_written(frame)
        if raise_errors and first is not None:
            raise first


class FramePipeline:
    """Runs planned runs of frames: prefetching reads, a serial model step, background writes."""

    def __init__(self, *, read: Callable[[int], Prepared],
                 step: Callable[[Prepared, Prepared | None, Any], tuple[Any, Any]],
                 load_prior: Callable[[int], Any],
                 write: Callable[[Prepared, Any], None],
                 readers: int = 2, prefetch: int = 3, writers: int = 1,
                 write_depth: int = 0, thread_setup: Callable[[], None] | None = None) -> None:
        """`step(item, prev, prior) -> (next prior, payload)`; `write(item, payload)`, called
        for several frames at once when `writers` > 1; `write_depth` frames may wait to be
        written (0 = one more than the writers); `thread_setup()` runs first on each reader
        and writer thread."""
        self._read, self._step, self._load_prior, self._write = read, step, load_prior, write
        self._readers, self._prefetch, self._writers = readers, prefetch, max(1, writers)
        self._write_depth = write_depth if write_depth > 0 else self._writers + 1
        self._thread_setup = thread_setup

    def run(self, runs: Sequence[Run], *, cancelled: Callable[[], bool],
            on_written: Callable[[int], None]) -> None:
        """Compute every frame of `runs` in order; raises Cancelled when `cancelled()` turns true.

        Frames already computed are written (and reported through `on_written`) before this
        returns or raises, whatever the reason.
        """
        setup = self._thread_setup
        with ThreadPoolExecutor(self._readers, thread_name_prefix="vrmbg-read",
                                initializer=setup) as readers, \
                ThreadPoolExecutor(self._writers, thread_name_prefix="vrmbg-write",
                                   initializer=setup) as writer:
            reads = _Prefetch(readers, self._read, frames_to_read(runs), self._prefetch)
            writes = _Writes(writer, self._write, on_written, self._write_depth)
            ok = False
            try:
                for run in runs:
                    self._compute_run(run, reads, writes, cancelled)
                ok = True
            finally:
                reads.cancel()
                writes.finish(raise_errors=ok)

    def _compute_run(self, run: Run, reads: _Prefetch, writes: _Writes,
                     cancelled: Callable[[], bool]) -> None:
        """One run: load its prior, then step frame after frame, handing results to the writer."""
        prev: Prepared | None = None
        prior: Any = None
        if run.prior is not None:
            prev = reads.next(run.prior)
            prior = self._load_prior(run.prior)
        for frame in run.frames:
            if cancelled():
                raise Cancelled("cancelled; finished frames are kept", frame=frame)
            item = reads.next(frame)
            prior, payload = self._step(item, prev, prior)
            writes.submit(item, payload)
            prev = item
