"""`vrmbg install nuke|blender`: put the host plugins where Nuke and Blender find them."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Install the vrmbg plugin into a host application.

Each host gets the glue for that host, its own copy of the plugin layer, and an
engine.json that records which Python runs the engine (this one: {python}). Run it
again after upgrading vrmbg: it replaces what it installed before, in place.
"""

NUKE_EPILOG = """\
where things go:
  DIR/init.py, DIR/menu.py     the node's start-up scripts
  DIR/vrmbg_nuke/              the node's package, with vrmbg_nuke/plugin/ and engine.json
Nuke must see DIR on its plugin path: add the printed line to ~/.nuke/init.py, or pass
--add-to-init and it is added for you (once; re-running does not add it again).

examples:
  vrmbg install nuke
  vrmbg install nuke --dir /studio/nuke/vrmbg --add-to-init
"""

BLENDER_EPILOG = """\
where things go:
  FILE   a Blender extension zip: blender_manifest.toml and the add-on at its root,
         plugin/ with engine.json. Install it with Edit > Preferences > Get Extensions >
         Install from Disk, or: blender --command extension install-file -r user_default FILE

examples:
  vrmbg install blender
  vrmbg install blender --zip ~/Downloads/vrmbg-blender.zip
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `install` sub-command with its `nuke` and `blender` targets."""
    from ..install import DEFAULT_NUKE_DIR, DEFAULT_NUKE_HOME

    text = DESCRIPTION.format(python=sys.executable)
    parser = subparsers.add_parser("install", help="install the Nuke node or the Blender add-on",
                                   description=text,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    hosts = parser.add_subparsers(title="hosts", metavar="HOST")
    nuke = hosts.add_parser("nuke", help="write a NUKE_PATH plugin folder",
                            description=text, epilog=NUKE_EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    nuke.add_argument("--dir", default=DEFAULT_NUKE_DIR,
                      help=f"plugin folder to write (default: {DEFAULT_NUKE_DIR})")
    nuke.add_argument("--add-to-init", action="store_true",
                      help="add the folder to Nuke's init.py (once)")
    nuke.add_argument("--nuke-home", default=DEFAULT_NUKE_HOME, metavar="DIR",
                      help=f"Nuke's own folder holding init.py (default: {DEFAULT_NUKE_HOME})")
    nuke.set_defaults(func=run_nuke)
    blender = hosts.add_parser("blender", help="build a Blender extension zip",
                               description=text, epilog=BLENDER_EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    blender.add_argument("--zip", default="", metavar="FILE",
                         help="extension zip to write (default: vrmbg-blender-VERSION.zip "
                              "in the current folder)")
    blender.set_defaults(func=run_blender)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_nuke(args: argparse.Namespace) -> int:
    """Write the Nuke plugin folder and say how Nuke finds it."""
    from ..install import add_to_nuke_init, build_nuke_folder, nuke_init_line

    folder = build_nuke_folder(args.dir)
    print(f"vrmbg: Nuke plugin folder written: {folder}")
    if args.add_to_init:
        init, changed = add_to_nuke_init(folder, args.nuke_home)
        print(f"vrmbg: {'added to' if changed else 'already in'} {init}: "
              f"{nuke_init_line(folder)}")
    else:
        print("vrmbg: add this line to ~/.nuke/init.py (or run again with --add-to-init):")
        print(f"    {nuke_init_line(folder)}")
    return 0


def run_blender(args: argparse.Namespace) -> int:
    """Build the Blender extension zip and say how to install it."""
    from ..install import build_blender_zip, default_blender_zip

    path = build_blender_zip(args.zip or default_blender_zip())
    print(f"vrmbg: Blender extension written: {path}")
    print("vrmbg: install it with Edit > Preferences > Get Extensions > Install from Disk, or:")
    print(f"    blender --command extension install-file -r user_default {path}")
    return 0
