"""A render's pass over its frames: outputs as frames finish, with progress and counts.

Frames finished in the cache get their output at once; the rest are computed in order by
the session, and each computed frame's output is written from its matte in memory (the
engine's sink, `output_writer.OutputSink`); a movie output is encoded at the end. Progress
counts every frame the engine steps (a lead-in before the first frame asked for included),
and the summary's counts are kept right even when a write fails or the render is cancelled.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping, TextIO

from ..engine.cache import touch_chain
from ..engine.lock import is_locked
from ..engine.opening import Shot
from ..engine.session import MatteSession
from ..io.frames import format_frame_ranges
from .output_plan import OutputPlan, ShotOutputs
from .output_writer import MatteWriter, OutputSink, write_movie_output
from .progress import CancelFlag, Progress
from .summary import RenderLog
from .target import OutputTarget


def write_frames(target: OutputTarget, log: RenderLog, shot: Shot, session: MatteSession,
                 outputs: ShotOutputs, todo: list[int], plan: OutputPlan | None,
                 stop: Callable[[], bool], flag: CancelFlag, *, progress_mode: str,
                 progress_stream: TextIO | None) -> None:
    """Write cached frames' outputs, compute the rest in order, then the movie if any.

    `session` is the chain answering the opened `shot`; `stop()` is checked between frames
    and `flag` (a `progress.CancelFlag`) raises the cancel it caught.
    """
    summary = log.summary
    writer = None
    if not target.movie:
        assert target.pattern is not None
        writer = MatteWriter(target.pattern, shot.plates, shot.colour,
                             {**outputs.stamp(), "model": summary.model_fingerprint},
                             output_type=target.output_type, compression=target.compression,
                             previous=after_gaps(shot.shot_frames))
        gaps = after_gaps([f for f in shot.shot_frames if f <= shot.frames[-1]])
        if gaps:
            log.warn("chaining over missing plate frames: " + ", ".join(
                f"{frame} continues from {before}" for frame, before in
                sorted(gaps.items())[:5]) + ("..." if len(gaps) > 5 else ""))
    valid = set(session.cached_frames()) if writer is not None else set()
    cached = [f for f in todo if f in valid]
    to_compute = [f for f in todo if f not in valid]
    wanted = set(to_compute)
    written: list[int] = []
    replaced = plan.replaced if plan is not None else None
    _say_lead_in(log, shot, session, to_compute)
    with Progress(len(todo), label=os.path.basename(target.path), mode=progress_mode,
                  stream=progress_stream) as bar:
        for frame in cached:  # finished in the cache: only the output is missing
            if stop():
                flag.raise_if_set()
            writer.write(frame, session.matte_path(frame))
            written.append(frame)
            bar.update(len(written), f"frame {frame} (from cache)")
        if cached:
            touch_chain(session.folder)  # reading the cache is use (`cache prune`)

        # Computed frames' outputs come from the engine's mattes in memory (the sink): an
        # alpha output as the engine writes its matte, others on their own thread so the
        # model never waits for them; every queued write is finished before leaving.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vrmbg-output")
        last = [time.perf_counter()]
        sink = OutputSink(writer, wanted, pool) if writer is not None else None

        def finished(done: int, total: int, frame: int) -> None:
            # Lead-in frames before the first one asked for count in the progress too,
            # so a farm never sees a task stalled at 0%.
            bar.total = len(cached) + total
            now = time.perf_counter()
            took, last[0] = now - last[0], now
            bar.update(len(cached) + done, f"frame {frame} ({took:.2f} s)")

        _say_if_locked(log, session, to_compute)
        bad_pixels: dict[int, int] = {}
        try:
            result = (session.ensure_frames(to_compute, progress=finished, cancel=stop,
                                            sink=sink)
                      if to_compute else None)
            answers = result.paths if result else {}
            bad_pixels = result.bad_pixels if result else {}
        finally:
            pool.shutdown(wait=True)
            failed = sink.failures() if sink is not None else {}
            # Written by the sink: each output whose write finished whole, also when the
            # engine failed after it (a state it could not store does not undo a matte).
            written.extend(sink.completed() if sink is not None else [])
            summary.count_frames(session, cached, written, replaced)
            if failed:  # a failed output write is reported over a cancel
                raise failed[min(failed)]
        for frame in to_compute:  # answered from the cache (another process, final tier)
            if frame not in written and writer is not None:
                writer.write(frame, answers.get(frame) or session.matte_path(frame))
                written.append(frame)
        if target.movie:
            bar.total += 1
            write_movie_output(target.path, todo, session.matte_path, shot.plates,
                               shot.colour, composite=target.output_type == "rgba",
                               stamp=outputs.stamp())
        if bar.done < bar.total:
            bar.update(bar.total, f"{len(shot.frames)} frame(s) done")
    summary.count_frames(session, cached, written, replaced)
    _warn_bad_pixels(log, bad_pixels)


def after_gaps(frames: list[int]) -> dict[int, int]:
    """frame -> the frame it continues from, for each shot frame right after a gap."""
    return {b: a for a, b in zip(frames, frames[1:]) if b - a > 1}


def _say_lead_in(log: RenderLog, shot: Shot, session: MatteSession,
                 to_compute: list[int]) -> None:
    """Say when frames before the first requested one are computed first."""
    if not to_compute or session.tier != "final":
        return
    first = to_compute[0]
    cached = {f for f in session.cached_frames() if f < first}
    before = [f for f in shot.shot_frames if f < first]
    resume_at = max(cached, default=None)
    lead = [f for f in before if resume_at is None or f > resume_at]
    if lead:
        log.say(f"computing {format_frame_ranges(lead)} first: temporal lead-in "
                f"(frame {first} continues from them)")


def _say_if_locked(log: RenderLog, session: MatteSession, to_compute: list[int]) -> None:
    """Say so when another render holds this chain's lock (this one waits for it and
    takes whatever frames the other one finishes)."""
    if to_compute and is_locked(session.folder):
        log.say(f"waiting for another render's lock on chain {session.chain_id} "
                f"({session.folder}); its finished frames are used as they appear")


def _warn_bad_pixels(log: RenderLog, bad_pixels: Mapping[int, int]) -> None:
    """Say which frames had NaN/Inf pixels (set to 0 before the model saw them)."""
    for frame, count in sorted(bad_pixels.items()):
        if count:
            log.warn(f"frame {frame}: {count} NaN/Inf pixel(s) set to 0 before inference")
