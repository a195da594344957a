"""Progress reporting for terminals and render farms, and cancellation by signal.

`Progress` draws a one-line bar with frames done, speed and ETA when a person watches a
terminal. Anywhere else (a farm job, a log file, a pipe) it prints plain lines on stdout
that farm managers parse, one set per update:

    Progress: 42%              Deadline's default stdout handler (`Progress: (\\d+)%`)
    openjd_progress: 42        Open Job Description (`openjd_progress: <0-100>`)
    openjd_status: sh010 42/100 frames

Percentages are integers 0..100 that never go down, and 100 is printed only when the work
is complete. `VRMBG_PROGRESS=bar|plain|quiet` overrides the automatic choice (for a farm
that runs jobs under a pseudo-terminal, or a wrapper that wants silence).

`CancelFlag` turns SIGINT/SIGTERM into a flag that the frame loop checks between frames,
so the frame being computed finishes and is kept; a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Callable, TextIO

from ..errors import Cancelled, UsageError, one_line

MODES = ("auto", "bar", "plain", "quiet")
ENV_MODE = "VRMBG_PROGRESS"
BAR_REDRAW_SECONDS = 0.1


def resolve_mode(mode: str, stream: TextIO) -> str:
    """The concrete mode ('bar', 'plain' or 'quiet') for `mode` on `stream`.

    'auto' honours $VRMBG_PROGRESS, then draws a bar only when `stream` is a terminal, so
    a farm (pipes) always gets parseable lines.
    """
    if mode not in MODES:
        raise UsageError(f"progress mode {mode!r} is not one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    forced = os.environ.get(ENV_MODE, "").strip().lower()
    if forced in ("bar", "plain", "quiet"):
        return forced
    try:
        return "bar" if stream.isatty() else "plain"
    except (AttributeError, ValueError):  # closed or not a real file
        return "plain"


def format_duration(seconds: float) -> str:
    """`H:MM:SS` (or `M:SS` under an hour) for an ETA or elapsed time."""
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_rate(frames_per_second: float) -> str:
    """`2.5 fps` for fast work, `13.2 s/frame` for slow work (the usual case on CPU)."""
    if frames_per_second >= 1.0:
        return f"{frames_per_second:.1f} fps"
    return f"{1.0 / frames_per_second:.1f} s/frame"


class Progress:
    """Frames done out of `total`, shown as a bar (terminal) or farm-parseable lines.

    `stream`: where progress goes (its being a terminal picks bar or lines in 'auto');
    by default the bar goes to stderr and plain lines to stdout. `out`: where `echo`
    writes log lines (stdout). `mode`: 'auto', 'bar', 'plain' or 'quiet'.

    Use as a context manager: leaving the block normally completes the work (100%);
    leaving it by an exception closes without claiming completion.
    """

    def __init__(self, total: int, *, label: str = "", stream: TextIO | None = None,
                 mode: str = "auto", out: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = max(0, int(total))
        self.label = one_line(label)
        # Progress goes to `stream` when given; by default the bar goes to stderr (so stdout
        # stays clean for data) and plain lines to stdout (where farm managers read them).
        self.stream = stream if stream is not None else sys.stderr  # the bar
        self.lines = stream if stream is not None else sys.stdout  # plain lines
        self.out = out if out is not None else sys.stdout  # log lines from `echo`
        self.mode = resolve_mode(mode, self.stream)
        self.done = 0
        self._clock = clock
        self._percent = -1  # last percentage printed in plain mode
        self._rate_start: tuple[float, int] | None = None  # (time, done) at the first update
        self._last_draw = -math.inf
        self._bar_width = 0  # characters of the bar currently on screen
        self._closed = False

    # -- public API -------------------------------------------------------------------

    @property
    def percent(self) -> int:
        """Integer percentage of work done (100 only when done == total)."""
        if self.total == 0:
            return 100
        return min(100, (100 * self.done) // self.total)

    def advance(self, n: int = 1, message: str = "") -> None:
        """Count `n` more frames done and report (message goes to the OpenJD status)."""
        self.update(self.done + int(n), message)

    def update(self, done: int, message: str = "") -> None:
        """Set the number of frames done (never decreases) and report."""
        if self._closed:
            return
        now = self._clock()
        self.done = min(self.total, max(self.done, int(done)))
        if self._rate_start is None:  # speed counts from the first report (model loaded)
            self._rate_start = (now, self.done)
        if self.mode == "plain":
            self._print_plain(message)
        elif self.mode == "bar":
            if self.done >= self.total or now - self._last_draw >= BAR_REDRAW_SECONDS:
                self._draw_bar(now)

    def echo(self, text: str) -> None:
        """Print a log line on stdout without tearing the bar (it is redrawn below)."""
        if self.mode == "quiet":
            return
        had_bar = self._bar_width > 0
        if had_bar:
            self._clear_bar()
        self.out.write(f"{text}\n")
        self.out.flush()
        if had_bar and not self._closed:
            self._draw_bar(self._clock())

    def close(self) -> None:
        """Finish the display: final bar line, or the closing 100% lines when complete."""
        if self._closed:
            return
        if self.mode == "plain" and self.done >= self.total and self._percent < 100:
            self._print_plain("")
        elif self.mode == "bar":
            self._draw_bar(self._clock())
            self.stream.write("\n")
            self.stream.flush()
            self._bar_width = 0
        self._closed = True

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None and self.done < self.total:
            self.update(self.total)
        self.close()

    # -- plain lines ------------------------------------------------------------------

    def _status(self, message: str) -> str:
        """The OpenJD status text: the caller's message, else `label done/total frames`."""
        text = one_line(message) or f"{self.done}/{self.total} frames"
        return f"{self.label} {text}" if self.label else text

    def _print_plain(self, message: str) -> None:
        """One update as Deadline and OpenJD lines, flushed at once."""
        self._percent = max(self._percent, self.percent)
        status = self._status(message)
        if self._rate_start is not None and self._rate_start[1] < self.done < self.total:
            status = f"{status}, {self._speed_text(self._clock())}"  # speed and ETA
        self.lines.write(f"Progress: {self._percent}%\n"
                         f"openjd_progress: {self._percent}\n"
                         f"openjd_status: {status}\n")
        self.lines.flush()

    # -- terminal bar -----------------------------------------------------------------

    def _speed_text(self, now: float) -> str:
        """Speed and ETA measured from the first update (model loading excluded)."""
        if self._rate_start is None:
            return ""
        start_time, start_done = self._rate_start
        frames, seconds = self.done - start_done, now - start_time
        if frames <= 0 or seconds <= 0:
            return f"elapsed {format_duration(seconds)}"
        rate = frames / seconds
        if self.done >= self.total:
            return f"{format_rate(rate)} in {format_duration(seconds)}"
        return f"{format_rate(rate)} ETA {format_duration((self.total - self.done) / rate)}"

    def _draw_bar(self, now: float) -> None:
        """Redraw the single bar line in place with a carriage return."""
        columns = shutil.get_terminal_size((80, 20)).columns
        counts = f"{self.done}/{self.total} {self.percent:3d}%"
        speed = self._speed_text(now)
        head = f"{self.label} " if self.label else ""
        room = columns - len(head) - len(counts) - len(speed) - 6
        width = max(0, min(40, room))
        bar = ""
        if width >= 5:
            filled = (width * self.done) // self.total if self.total else width
            bar = "[" + "#" * filled + "." * (width - filled) + "] "
        line = f"{head}{bar}{counts} {speed}".rstrip()[: max(1, columns - 1)]
        padding = " " * max(0, self._bar_width - len(line))
        self.stream.write(f"\r{line}{padding}")
        self.stream.flush()
        self._bar_width = len(line)
        self._last_draw = now

    def _clear_bar(self) -> None:
        """Blank the bar line so a log line can take its place."""
        self.stream.write("\r" + " " * self._bar_width + "\r")
        self.stream.flush()
        self._bar_width = 0


class CancelFlag:
    """SIGINT/SIGTERM set a flag instead of killing the process (context manager).

    The frame loop checks `is_set()` between frames, finishes and keeps the current frame,
    then raises `Cancelled` (see `raise_if_set`). A SIGINT arriving when the flag is
    already set (Ctrl-C pressed twice) raises KeyboardInterrupt at once. Previous handlers
    are restored on exit. Outside the main thread no handler can be installed; the flag
    then works only through `set()`.
    """

    SIGNALS: tuple[str, ...] = ("SIGINT", "SIGTERM")

    def __init__(self, *, notify: bool = True) -> None:
        self.signal_name = ""
        self._set = False
        self._notify = notify
        self._previous: dict[int, object] = {}

    def is_set(self) -> bool:
        """True once a cancel was requested (by a signal or `set`)."""
        return self._set

    def set(self, name: str = "request") -> None:
        """Request cancellation without a signal (e.g. from a worker's cancel message)."""
        if not self._set:
            self.signal_name = name
        self._set = True

    def raise_if_set(self) -> None:
        """Raise `Cancelled` naming the signal when a cancel was requested."""
        if self._set:
            raise Cancelled(f"cancelled by {self.signal_name}; finished frames are kept")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: the first signal sets the flag, a SIGINT after that aborts."""
        if self._set and signum == signal.SIGINT:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        first = not self._set
        self.set(name)
        if self._notify and first:
            note = (f"vrmbg: {name} received: finishing the current frame, then stopping "
                    "(Ctrl-C again to abort now)\n")
            try:
                os.write(2, note.encode())  # no buffered I/O inside a signal handler
            except OSError:
                pass

    def __enter__(self) -> "CancelFlag":
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                signum = getattr(signal, name, None)
                if signum is not None:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
