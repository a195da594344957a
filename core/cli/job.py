"""`vrmbg job`: write a render-farm job for a shot list (OpenJD template or OpenCue XML)."""

from __future__ import annotations

import argparse
import os
import re
import sys

from ..fs import atomic_write_text
from ..errors import UsageError
from ..farm import job_settings, load_shotlist
from .options import add_schema_arguments

FARM_THREADS = 4  # the thread count a job pins and books when --threads is not given

DESCRIPTION = """\
Write a render-farm job that renders every shot of a SHOTLIST with `vrmbg render`.
The farm engine schedules it; shots run in parallel on different workers, and each shot
runs in frame order on one worker (the model is temporal).

SHOTLIST is JSON (or CSV with the same keys as a header row):
  {"shots": [{"name": "sh010", "input": "plates/sh010.####.exr",
              "output": "mattes/sh010.####.exr", "frames": "1001-1100",
              "input_colorspace": "ACEScg"}]}
Relative paths resolve against the shot list's folder. Render options given here apply
to every shot; a shot's own keys (any render setting, e.g. "input_colorspace") win.
Before the job is written every shot is checked (plates on disk for its frames, colour
spaces known to the OCIO config, model folder present); --no-check skips that when this
machine cannot see the plates.

Every task is pinned to --threads (4 unless given) and books that many cores: on a CPU the
thread count is part of a chain's identity, so tasks on hosts with other core counts
would otherwise make mattes that differ. --device cuda tasks ask the farm for a GPU.
Exit codes of the tasks: 75 means this host could not do it now (no GPU, no space, or
the output folder holds another chain's mattes) and a retry elsewhere may succeed; 2-5
mean the input or settings must be fixed first (see `vrmbg --help`).

Examples:
  vrmbg job openjd shots.json -o job.yaml --model /show/models/vrmbg3 --device cuda
  openjd check job.yaml
  openjd run job.yaml -p VrmbgExecutable=/opt/vrmbg/bin/vrmbg --step sh010
  vrmbg job opencue shots.json -o job.xml --show myshow --vrmbg /opt/vrmbg/bin/vrmbg
"""

OPENJD_DESCRIPTION = """\
Write an Open Job Description template (jobtemplate-2023-09): one single-task step per
shot, named after the shot ("sh010"); with --chunk, one step per chunk ("sh010 part 001",
"sh010 part 002", ...) in both chunk modes. Job parameters:
VrmbgExecutable (default: --vrmbg, "vrmbg"), Model (default: --model), and PATH
parameters <shot>Plates, <shot>Output and CacheDir (with --cache-dir), so the farm's
path mapping applies; their defaults are relative to the template's folder.
Tasks run a bash script (Linux/macOS workers); cancelling sends SIGTERM, the current frame
finishes and is kept.

Chunks (--chunk N) make shorter tasks:
  without --preroll  a shot's chunk steps are chained ("sh010 part 002" depends on
                     "sh010 part 001"), so they run in order and each continues exactly
                     from the cache the previous one left (needs a shared cache folder)
  with --preroll P   chunks start P frames early from an empty prior and run in parallel:
                     faster to finish, but APPROXIMATE near chunk starts

Examples:
  vrmbg job openjd shots.json -o job.yaml --model /show/models/vrmbg3
  vrmbg job openjd shots.json -o job.yaml --chunk 50 --cache-dir /show/cache/vrmbg
  vrmbg job openjd shots.json -o job.yaml --chunk 50 --preroll 16
"""

OPENCUE_DESCRIPTION = """\
Write an OpenCue job (XML spec, built offline with pyoutline): one Shell layer per shot,
range = the shot's frames, chunk = the whole shot, so each shot is one task running in
frame order on one host. Submit it with your site's OpenCue tools.

Examples:
  vrmbg job opencue shots.json -o job.xml --show myshow --shot comp
  vrmbg job opencue shots.json -o job.xml --vrmbg /opt/vrmbg/bin/vrmbg --device cuda
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `vrmbg job openjd` and `vrmbg job opencue`."""
    parser = subparsers.add_parser(
        "job", help="write an OpenJD or OpenCue farm job for a shot list",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=run, engine="")
    engines = parser.add_subparsers(title="farm engines", metavar="ENGINE")

    openjd = engines.add_parser(
        "openjd", help="Open Job Description template (YAML)", description=OPENJD_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common_arguments(openjd, "job.yaml")
    openjd.add_argument("--chunk", type=int, default=0, metavar="N",
                        help="split each shot into tasks of N frames (0 = one task per shot; "
                             "a shot whose output is a movie is always one task)")
    openjd.add_argument("--bundle", action="store_true",
                        help="write a Deadline Cloud job bundle: -o names a folder that gets "
                             "template.yaml, parameter_values.yaml and asset_references.yaml")
    openjd.set_defaults(func=run, engine="openjd")

    opencue = engines.add_parser(
        "opencue", help="OpenCue job (XML, via pyoutline)", description=OPENCUE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common_arguments(opencue, "job.xml")
    opencue.add_argument("--show", default="", help="OpenCue show (default: pyoutline's)")
    opencue.add_argument("--shot", default="",
                         help="OpenCue shot the job is filed under (default: pyoutline's)")
    opencue.add_argument("--user", default="", help="job owner (default: current user)")
    opencue.set_defaults(func=run, engine="opencue")


def _add_common_arguments(parser: argparse.ArgumentParser, example: str) -> None:
    """Shot list, output file, job name, executable and the render options."""
    parser.add_argument("shotlist", metavar="SHOTLIST", help="shot list (.json or .csv)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help=f"job file to write (e.g. {example}; '-' = stdout)")
    parser.add_argument("--name", default="", help="job name (default: vrmbg_<shot list name>)")
    parser.add_argument("--vrmbg", default="vrmbg", metavar="PATH",
                        help="the vrmbg command on the farm workers (default: vrmbg)")
    parser.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                        help="before writing, check that every shot's plates exist for its "
                             "frames, its colour spaces resolve and its model is there "
                             "(default; --no-check for plates this machine cannot see)")
    add_schema_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Write the job file for the chosen engine; returns 0."""
    if not args.engine:
        raise UsageError("choose a farm engine: vrmbg job openjd ... or vrmbg job opencue ...")
    shots = load_shotlist(args.shotlist)
    job = job_settings(vars(args))
    if not int(job.get("threads") or 0):
        job["threads"] = FARM_THREADS  # every task forms the same chain, on any host
    if args.check:
        from ..farm.checks import check_shots

        check_shots(shots, job)
    name = args.name or default_job_name(args.shotlist)
    if getattr(args, "bundle", False):
        return _write_bundle(shots, job, name, args)
    if args.engine == "openjd":
        text = _openjd_text(shots, job, name, args)
    else:
        text = _opencue_text(shots, job, name, args)
    _write(args.output, text)
    if args.output != "-":
        print(f"vrmbg job: wrote {args.engine} job for {len(shots)} shot(s) to {args.output}",
              file=sys.stderr)
    return 0


def default_job_name(shotlist: str) -> str:
    """`vrmbg_<shot list file stem>`, limited to farm-safe characters."""
    stem = os.path.splitext(os.path.basename(shotlist))[0]
    return "vrmbg_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


def _openjd_template(shots: list, job: dict, name: str, args: argparse.Namespace,
                     folder: str) -> dict:
    """The OpenJD template with PATH defaults relative to `folder`."""
    from ..farm import openjd

    if args.chunk < 0:
        raise UsageError(f"--chunk must be 0 or more, got {args.chunk}")
    return openjd.build_template(shots, job, name=name, executable=args.vrmbg,
                                 chunk=args.chunk, template_dir=folder)


def _openjd_text(shots: list, job: dict, name: str, args: argparse.Namespace) -> str:
    """The OpenJD template as YAML."""
    from ..farm import openjd

    folder = os.getcwd() if args.output == "-" else os.path.dirname(os.path.abspath(args.output))
    return openjd.template_text(_openjd_template(shots, job, name, args, folder))


def _write_bundle(shots: list, job: dict, name: str, args: argparse.Namespace) -> int:
    """Write a Deadline Cloud job bundle folder; returns 0."""
    from ..farm import openjd

    if args.output == "-":
        raise UsageError("--bundle writes a folder: give it with -o FOLDER")
    folder = os.path.abspath(args.output)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError("--bundle needs a folder, and this is a file", path=folder)
    template = _openjd_template(shots, job, name, args, folder)
    for file_name, text in openjd.bundle_files(template, folder).items():
        _write(os.path.join(folder, file_name), text)
    print(f"vrmbg job: wrote a job bundle for {len(shots)} shot(s) to {folder}",
          file=sys.stderr)
    return 0


def _opencue_text(shots: list, job: dict, name: str, args: argparse.Namespace) -> str:
    """The OpenCue job XML."""
    from ..farm import opencue

    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    return opencue.job_xml(shots, job, name=safe_name, show=args.show, shot=args.shot,
                           user=args.user, executable=args.vrmbg) + "\n"


def _write(path: str, text: str) -> None:
    """Write `text` to `path` atomically, or to stdout for '-'."""
    if path == "-":
        sys.stdout.write(text)
        return

    atomic_write_text(path, text)
