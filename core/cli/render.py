"""`vrmbg render`: mattes for one shot, in-process, resumable, farm friendly."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..errors import VrmbgError
from .options import add_schema_arguments, settings_from

DESCRIPTION = """\
Render the matte of one shot.

The model is temporal, so frames are always computed in order from the shot's first
frame (or from the last frame already in the cache). A chunk such as --frames 1051-1100
is exact: if the cache does not hold frame 1050 yet, the frames before it are computed
first (into the cache only). With --preroll P the chunk instead starts P frames early
from an empty prior: faster on a farm, approximate, and labelled so in the output.

Frames already written to the output for this shot and settings are skipped; a matte of
another shot or of other settings (and an existing movie) is never replaced without
--overwrite. An exact render replaces this shot's own --preroll (approximate) mattes.
"""

EPILOG = """\
examples:
  vrmbg render plates/sh010.####.exr -o mattes/sh010.####.exr
  vrmbg render plates/sh010.####.exr -o mattes/sh010.####.exr --frames 1051-1100 --json
  vrmbg render plates/sh020.%04d.dpx -o mattes/sh020.####.exr --input-colorspace "ARRI LogC4"
  vrmbg render edit/sh030.mov -o mattes/sh030.####.exr --input-colorspace "Rec.1886 Rec.709 - Display"
  vrmbg render plates/sh010.####.exr -o mattes/sh010_matte.mov   # ProRes 4444 with alpha

progress: a bar on a terminal; otherwise one 'Progress: NN%' (Deadline) and one
'openjd_progress: NN' (OpenJD) line per frame. With --json the progress goes to stderr
and stdout holds only the JSON summary.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `render` sub-command."""
    parser = subparsers.add_parser(
        "render", help="render the mattes of one shot (farm and terminal)",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="plate sequence (sh010.####.exr, %%04d, @@@@, $F4) or a movie")
    parser.add_argument("-o", "--output", required=True,
                        help="matte sequence (mattes/sh010.####.exr), or a .mov for a ProRes movie")
    parser.add_argument("--frames", default="",
                        help="frames to render: 1001-1100, 1001-1100x2, 1001,1005-1010 "
                             "(default: every plate frame)")
    add_schema_arguments(parser)
    run_group = parser.add_argument_group("run")
    run_group.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                           help="continue from valid cached frames (default); --no-resume "
                                "recomputes the shot's chain from its first frame")
    run_group.add_argument("--overwrite", action="store_true",
                           help="replace output frames written by a different chain")
    run_group.add_argument("--json", action="store_true",
                           help="print a JSON summary on stdout at the end")
    run_group.add_argument("--progress", choices=("auto", "bar", "plain", "quiet"), default="auto",
                           help="progress display (default: bar on a terminal, lines otherwise)")
    run_group.add_argument("--movie-start", type=int, default=1001, metavar="N",
                           help="frame number of a movie's first frame (default: 1001)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render the requested frames and report; returns the exit code."""
    from ..render.job import RenderJob  # heavy imports (torch) only when rendering

    settings = settings_from(args)
    from ..cpu import set_process_threads

    started = time.perf_counter()
    _threads, warning = set_process_threads(settings.threads)
    job = None
    try:
        job = RenderJob(args.input, args.output, settings, frames=args.frames,
                        resume=args.resume, overwrite=args.overwrite,
                        movie_start=args.movie_start)
        if warning:
            job.warn(warning)
        progress_stream = sys.stderr if args.json else sys.stdout
        summary = job.run(progress_mode=args.progress, progress_stream=progress_stream)
    except VrmbgError as exc:
        if args.json:  # wrappers parse every outcome: the summary so far, with the error
            print(json.dumps(_failed_summary(job, args.output, exc, started), sort_keys=True),
                  flush=True)
        raise
    summary["seconds_total"] = round(time.perf_counter() - started, 3)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(f"vrmbg: {summary['frames_requested']} frame(s) -> {args.output} "
              f"({summary['frames_computed']} computed, {summary['frames_from_cache']} from cache, "
              f"{summary['frames_skipped_existing']} already there)", file=sys.stderr)
    return 0


def _failed_summary(job, output: str, exc: VrmbgError, started: float) -> dict:
    """The `--json` summary of a render that failed or was cancelled: what it did so far,
    `error` (the one-line message) and `exit_code`."""
    from ..render.job import RenderSummary

    summary = (job.summary if job is not None else RenderSummary(output=output)).to_dict()
    summary.update(error=str(exc), exit_code=exc.exit_code,
                   seconds_total=round(time.perf_counter() - started, 3))
    return summary
