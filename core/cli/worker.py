"""`vrmbg worker`: the long-lived engine process that Nuke and Blender talk to."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Run the engine worker that the Nuke node and the Blender add-on start for you.

It reads one JSON request per line on stdin and writes one JSON event per line on
stdout (logs go to stderr); models stay loaded between requests, and every matte it
makes goes into the cache, where the host's Read node or Image node shows it. It exits
when stdin closes (the host quit) or on a `shutdown` request. The protocol is in the
README ("Hosts"). You do not normally run this yourself.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `worker` sub-command."""
    parser = subparsers.add_parser(
        "worker", help="the engine process hosts talk to (JSON lines on stdin/stdout)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-dir", default="", metavar="DIR",
                        help="cache folder for sessions whose settings name none "
                             "(default: $VRMBG_CACHE, else the user cache folder)")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="CPU threads for the whole process (0 = every core)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="let sessions whose settings ask for it run the model's own "
                             "downloaded code (a scene or request alone cannot switch it on)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve requests until stdin closes or `shutdown`; returns the exit code."""
    from ..model.trust import allow_remote_code
    from ..worker.server import run_worker

    if args.trust_remote_code:
        allow_remote_code()
    return run_worker(cache_dir=args.cache_dir, threads=max(0, args.threads))
