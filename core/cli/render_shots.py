"""`vrmbg render-shots`: render every shot of a shot list on this machine, N at a time.

Each shot is a separate `vrmbg render` process (one model copy each), so a crash or a bad
plate in one shot never stops the others. Their output is streamed with a `[shot]` prefix;
their progress lines are folded into one overall progress (bar or farm lines).
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

from ..errors import (EXIT_CANCELLED, EXIT_INPUT, EXIT_INTERNAL, EXIT_MODEL, EXIT_OK,
                      EXIT_OUTPUT, EXIT_RETRY, EXIT_USAGE, UsageError)
from ..farm import Shot, job_settings, load_shotlist, render_args
from ..render.progress import CancelFlag, Progress
from .options import add_schema_arguments

ENV_EXECUTABLE = "VRMBG_EXECUTABLE"
POLL_SECONDS = 0.2
ABORT_WAIT_SECONDS = 10.0
CHILD_PROGRESS = re.compile(r"^Progress: (\d+)%\s*$")
CHILD_FARM_LINE = re.compile(r"^openjd_(progress|status):")
EXIT_NAMES = {EXIT_INTERNAL: "internal error", EXIT_USAGE: "usage error",
              EXIT_INPUT: "input error", EXIT_MODEL: "model error",
              EXIT_OUTPUT: "output error", EXIT_RETRY: "retry on another host",
              EXIT_CANCELLED: "cancelled", 127: "not started"}

DESCRIPTION = """\
Render every shot of a SHOTLIST on this machine, N shots at a time, each in its own
`vrmbg render` process. Output lines are prefixed with the shot name; progress is shown for
all shots together. The exit code is non-zero if any shot failed (the summary names them).

Each process loads its own copy of the model: at 1024x1024 on CPU the full model peaks at
about 1.3 GB of RAM per process in bf16 and 2.2 GB in fp32 (tests/benchmarks/model_bench.py),
plus the plates in flight; on CUDA each process also holds its own GPU memory. Choose --jobs
so that many copies fit; on a CPU, one job usually already uses every core. With --jobs N and
no --threads, each shot gets an equal share of the cores (a shot's own "threads" key wins).

SHOTLIST is JSON (or CSV with the same keys as a header row):
  {"shots": [{"name": "sh010", "input": "plates/sh010.####.exr",
              "output": "mattes/sh010.####.exr", "frames": "1001-1100"}]}
Relative paths resolve against the shot list's folder; options below apply to every shot
and a shot's own keys win.

Ctrl-C (or SIGTERM) asks every running shot to finish its current frame and stop;
a second Ctrl-C aborts at once.

Examples:
  vrmbg render-shots shots.json --model /show/models/vrmbg3
  vrmbg render-shots shots.json --jobs 2 --device cuda --precision fp16
  vrmbg render-shots shots.csv --dry-run
"""


@dataclass
class ShotRun:
    """One shot's process and what is known about it."""

    shot: Shot
    argv: list[str]
    process: subprocess.Popen | None = None
    frames_done: int = 0
    returncode: int | None = None
    log: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The shot name (log prefix)."""
        return self.shot.name


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `vrmbg render-shots`."""
    parser = subparsers.add_parser(
        "render-shots", help="render every shot of a shot list here, N processes at a time",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shotlist", metavar="SHOTLIST", help="shot list (.json or .csv)")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="shots rendered at the same time (default: 1)")
    parser.add_argument("--fail-fast", action="store_true",
                        help="start no further shot once one has failed")
    parser.add_argument("--dry-run", action="store_true",
                        help="print each shot's command line and exit")
    parser.add_argument("--vrmbg", default="", metavar="PATH",
                        help=f"vrmbg executable for the shots (default: ${ENV_EXECUTABLE}, "
                             "else this Python's vrmbg)")
    add_schema_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render the shots; the exit code summarises them (0 = every shot finished)."""
    if args.jobs < 1:
        raise UsageError(f"--jobs must be 1 or more, got {args.jobs}")
    shots = load_shotlist(args.shotlist)
    job = job_settings(vars(args))
    if args.jobs > 1 and not job.get("threads"):
        job["threads"] = share_of_cores(args.jobs)
    executable = vrmbg_command(args.vrmbg)
    runs = [ShotRun(shot, [*executable, *render_args(shot, job)]) for shot in shots]
    if args.dry_run:
        for item in runs:
            print(f"{item.name}: {shlex.join(item.argv)}")
        return EXIT_OK
    total = sum(len(shot.frames) for shot in shots)
    with CancelFlag() as cancel, Progress(total, label="render-shots") as progress:
        runner = ShotRunner(runs, jobs=args.jobs, progress=progress, cancel=cancel,
                            fail_fast=args.fail_fast)
        try:
            runner.run()
        except KeyboardInterrupt:
            runner.abort()
            raise
        if any(item.returncode != 0 for item in runs):
            progress.close()  # not complete: no closing 100%
    return summarise(runs, cancelled=cancel.is_set())


def share_of_cores(jobs: int) -> int:
    """CPU threads for each of `jobs` shots rendering at once: an equal share of the cores,
    so N processes do not each start a thread per core."""
    from ..cpu import usable_cores

    return max(1, usable_cores() // jobs)


def vrmbg_command(explicit: str = "") -> list[str]:
    """The command that runs `vrmbg`: --vrmbg, else $VRMBG_EXECUTABLE, else this Python's.

    UsageError when an explicit executable cannot be found, before any shot starts.
    """
    chosen = explicit or os.environ.get(ENV_EXECUTABLE, "")
    if not chosen:
        return [sys.executable, "-m", "vrmbg.core"]
    found = shutil.which(chosen)
    if found is None:
        raise UsageError(f"vrmbg executable {chosen!r} not found or not executable")
    return [found]


class ShotRunner:
    """Runs shot processes `jobs` at a time, streaming logs and folding progress."""

    def __init__(self, runs: Sequence[ShotRun], *, jobs: int, progress: Progress,
                 cancel: CancelFlag, fail_fast: bool = False) -> None:
        self.pending = list(runs)
        self.running: list[ShotRun] = []
        self.runs = list(runs)
        self.jobs = jobs
        self.progress = progress
        self.cancel = cancel
        self.fail_fast = fail_fast
        self.lines: queue.Queue[tuple[ShotRun, str | None]] = queue.Queue()
        self._forwarded = False
        self._failed = False

    def run(self) -> None:
        """Until every shot has finished or cancellation stopped the rest."""
        while self.pending or self.running:
            if self.cancel.is_set():
                self._forward_cancel()
            while self.pending and len(self.running) < self.jobs and not self._stopping():
                self._start(self.pending.pop(0))
            if not self.running:
                break  # stopping with shots never started
            try:
                item, line = self.lines.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if line is None:
                self._finish(item)
            else:
                self._handle_line(item, line)

    def _stopping(self) -> bool:
        """No new shot starts after a cancel, or after a failure with --fail-fast."""
        return self.cancel.is_set() or (self.fail_fast and self._failed)

    def _start(self, item: ShotRun) -> None:
        """Launch a shot's process and a thread reading its merged stdout/stderr."""
        self.progress.echo(f"[{item.name}] start: {shlex.join(item.argv)}")
        env = dict(os.environ, VRMBG_PROGRESS="plain", PYTHONUNBUFFERED="1")
        try:
            item.process = subprocess.Popen(
                item.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, env=env, text=True, errors="replace", bufsize=1)
        except OSError as exc:
            item.returncode = 127
            self._failed = True
            self.progress.echo(f"[{item.name}] cannot start: {exc}")
            return
        self.running.append(item)
        threading.Thread(target=self._read, args=(item,), daemon=True,
                         name=f"vrmbg-{item.name}").start()

    def _read(self, item: ShotRun) -> None:
        """Reader thread: every output line onto the queue, then None at end of output."""
        assert item.process is not None and item.process.stdout is not None
        with item.process.stdout as stream:
            for line in stream:
                self.lines.put((item, line.rstrip("\r\n")))
        self.lines.put((item, None))

    def _handle_line(self, item: ShotRun, line: str) -> None:
        """Fold a shot's progress into the total; echo its other lines with a prefix."""
        match = CHILD_PROGRESS.match(line)
        if match:
            percent = min(100, int(match.group(1)))
            item.frames_done = max(item.frames_done, len(item.shot.frames) * percent // 100)
            self._report(f"{item.name} {percent}%")
            return
        if CHILD_FARM_LINE.match(line):
            return  # the shot's own OpenJD lines would confuse the farm's parser
        item.log.append(line)
        del item.log[:-5]
        self.progress.echo(f"[{item.name}] {line}")

    def _finish(self, item: ShotRun) -> None:
        """A shot's output ended: collect its exit code and report it."""
        assert item.process is not None
        item.returncode = item.process.wait()
        self.running.remove(item)
        if item.returncode == 0:
            item.frames_done = len(item.shot.frames)
            self.progress.echo(f"[{item.name}] done")
        else:
            self._failed = True
            self.progress.echo(f"[{item.name}] failed: {describe_exit(item.returncode)}")
        self._report(f"{item.name} {'done' if item.returncode == 0 else 'failed'}")

    def _report(self, message: str) -> None:
        """Overall progress: frames done over all shots."""
        self.progress.update(sum(run.frames_done for run in self.runs), message)

    def _forward_cancel(self) -> None:
        """Ask running shots to finish their current frame and stop (once).

        SIGTERM is sent whatever the signal received: on Ctrl-C the shots also get SIGINT
        from the terminal, and a second SIGINT would abort them instead of stopping cleanly.
        """
        if self._forwarded:
            return
        self._forwarded = True
        self.progress.echo(f"render-shots: {self.cancel.signal_name}: stopping running shots "
                           "after their current frame; no new shot starts")
        for item in self.running:
            _send(item, signal.SIGTERM)

    def abort(self) -> None:
        """Second Ctrl-C: interrupt every shot now, wait briefly, then kill stragglers."""
        for item in self.running:
            _send(item, signal.SIGINT)
        deadline = time.monotonic() + ABORT_WAIT_SECONDS
        for item in self.running:
            assert item.process is not None
            try:
                item.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                item.process.kill()
                item.process.wait()
            item.returncode = item.process.returncode


def _send(item: ShotRun, signum: int) -> None:
    """Send a signal to a running shot (terminate on systems without POSIX signals)."""
    process = item.process
    if process is None or process.poll() is not None:
        return
    try:
        if os.name == "posix":
            process.send_signal(signum)
        else:
            process.terminate()
    except OSError:
        pass


def describe_exit(code: int | None) -> str:
    """`exit 3 (input error)`, or `killed by SIGKILL`, or `not started`."""
    if code is None:
        return "not started"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    name = EXIT_NAMES.get(code)
    return f"exit {code} ({name})" if name else f"exit {code}"


def summarise(runs: Sequence[ShotRun], *, cancelled: bool) -> int:
    """Print which shots failed or never ran; return the command's exit code.

    0 when all shots finished; 130 when cancelled; otherwise the exit code of the first
    shot that failed, in shot-list order (3 for an input error, 75 for a shot a retry on
    another host may finish, such as one killed by the system); 1 only for a bug.
    """
    failed = [item for item in runs if item.returncode not in (0, None)]
    not_run = [item for item in runs if item.returncode is None]
    done = len(runs) - len(failed) - len(not_run)
    parts = [f"{done} of {len(runs)} shots done"]
    if failed:
        parts.append("failed: " + ", ".join(f"{item.name} ({describe_exit(item.returncode)})"
                                            for item in failed))
    if not_run:
        parts.append("not started: " + ", ".join(item.name for item in not_run))
    print("render-shots: " + "; ".join(parts), file=sys.stderr if failed or not_run
          else sys.stdout, flush=True)
    for item in failed:
        for line in item.log[-2:]:
            print(f"  [{item.name}] {line}", file=sys.stderr)
    if cancelled:
        return EXIT_CANCELLED
    if not failed and not not_run:
        return EXIT_OK
    if not failed:  # shots left unstarted by --fail-fast after a cancel
        return EXIT_CANCELLED
    return shot_exit(failed[0].returncode)


def shot_exit(code: int | None) -> int:
    """A failed shot's exit code as render-shots reports it: vrmbg's own codes as they are,
    a shot killed by a signal or never started as retryable, anything else as a bug."""
    if code in EXIT_NAMES and code not in (127, EXIT_OK):
        return int(code)
    if code is None or code < 0 or code in (127, 137, 143):
        return EXIT_RETRY
    return EXIT_INTERNAL
