"""What a render tells: its log lines and warnings, and the `--json` summary.

`RenderLog` is the one voice of a render (`vrmbg: ...` lines for the artist or the farm log;
warnings are kept in the summary too); `RenderSummary` is what `vrmbg render --json` prints,
also when the render failed or was cancelled, so it is filled as facts become known
(`describe_run` before rendering, `count_frames` as frames are written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, TextIO

from ..cpu import process_threads
from ..io.frames import format_frame_ranges


@dataclass
class RenderSummary:
    """What a render did; `to_dict()` is the `--json` summary (also on failure)."""

    frames_requested: int = 0
    frames_computed: int = 0
    frames_from_cache: int = 0
    frames_skipped_existing: int = 0
    frames_written: str = ""  # output frames written by this render (frame spec)
    frames_rewritten: str = ""  # of those, the ones that replaced an existing output frame
    cuts: list[int] = field(default_factory=list)  # edit cuts given or detected in the shot
    keyframes: list[int] = field(default_factory=list)  # frames taking the artist's matte
    stale_outputs: str = ""  # output frames outside the request left from older plates
    seconds_per_computed_frame: float = 0.0
    device: str = ""
    precision: str = ""
    cpu_threads: int = 0  # torch's CPU threads in this render (--threads, else every core)
    model_fingerprint: str = ""
    model_source: str = ""
    chain_id: str = ""
    shot: str = ""
    shot_start: int | None = None
    exact: bool = True
    output: str = ""
    cache_folder: str = ""
    frames: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return dict(self.__dict__)

    def describe_run(self, shot: Any) -> None:
        """Fill the facts known before rendering, from the opened shot (`engine.opening.Shot`)."""
        loaded = shot.stepper.loaded
        self.device = loaded.device.type
        self.precision = str(loaded.dtype).replace("torch.", "")
        self.cpu_threads = process_threads()
        self.model_fingerprint = loaded.fingerprint
        self.model_source = loaded.source
        self.frames = format_frame_ranges(shot.frames)
        self.frames_requested = len(shot.frames)
        self.shot_start = shot.shot_frames[0]

    def count_frames(self, session: Any, cached: list[int], written: list[int],
                     replaced: Iterable[int] | None) -> None:
        """Counters and written frames into the summary (also after a failure); `replaced`:
        the output frames the plan rewrites (None without a plan: a movie)."""
        counters = session.counters
        self.cuts = session.known_cuts()
        self.keyframes = session.keyframe_frames()
        self.frames_computed = counters.frames_computed
        self.frames_from_cache = len(cached) + counters.frames_from_cache
        self.seconds_per_computed_frame = round(counters.seconds_per_computed_frame, 4)
        self.frames_written = format_frame_ranges(written)
        if replaced is not None:
            rewritten = set(replaced)
            self.frames_rewritten = format_frame_ranges(f for f in written if f in rewritten)


class RenderLog:
    """A render's log lines (`vrmbg: ...`), and its warnings kept in its summary."""

    def __init__(self, summary: RenderSummary, stream: TextIO) -> None:
        self.summary = summary
        self.stream = stream

    def say(self, text: str) -> None:
        """One log line for the artist or the farm log."""
        print(f"vrmbg: {text}", file=self.stream, flush=True)

    def warn(self, text: str) -> None:
        """A warning: logged now and kept in the summary."""
        self.summary.warnings.append(text)
        self.say(f"warning: {text}")
