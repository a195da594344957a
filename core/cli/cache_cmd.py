"""`vrmbg cache`: look at the temporal cache and keep it within a size.

The cache holds, per shot and per set of settings (a "chain"), the finished mattes and the
model's state for every frame, so any frame can be answered by computing forward from the last
cached one. Chains that a running render holds are never deleted, and nothing is deleted in a
folder vrmbg did not make or through a symbolic link (`housekeeping.claim_cache`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from ...plugin import sizes
from ..engine import housekeeping as store
from ..errors import UsageError
from ..io.frames import SequencePattern
from .options import add_schema_arguments

DESCRIPTION = """\
Inspect and bound the temporal cache (finished mattes + the state to continue from).

Where: --cache-dir, else $VRMBG_CACHE, else $XDG_CACHE_HOME/vrmbg (~/.cache/vrmbg).
`vrmbg render` keeps its cache beside its output (mattes/.vrmbg-cache) unless --cache-dir
or $VRMBG_CACHE says otherwise: point --cache-dir at the output folder (mattes) or at the
.vrmbg-cache inside it to inspect or prune that cache.
Layout: <cache>/<shot>/<final|preview>/<chain-id>/matte/<shot>.####.exr

Examples:
  vrmbg cache ls                              every chain, least recently used first
  vrmbg cache ls --cache-dir mattes           the render cache in mattes/.vrmbg-cache
  vrmbg cache ls --json                       the same as JSON (for pipeline tools)
  vrmbg cache info 5c48d6cab6dba4a5           settings, frames and size of one chain
  vrmbg cache info sh010                      every chain of a shot
  vrmbg cache clear --shot sh010              delete a shot's chains (not ones rendering)
  vrmbg cache info plates/sh010.####.exr      the chains of these plates
  vrmbg cache ls --cache-dir mattes/sh010.####.exr   the cache of that render's output
  vrmbg cache clear --tier preview --all      delete every preview chain
  vrmbg cache prune --max-size 200G           delete least recently used chains down to 200 GiB

Only vrmbg's own folders: a cache carries a vrmbg-cache.json marker (an older cache laid out
by vrmbg is adopted); any other folder is refused, and symbolic links are never followed.
"""

def parse_size(text: str) -> int:
    """Bytes from a size like `500M`, `200G`, `1.5T`, `10GiB` or `1048576` (binary units, the
    same reading as a prune size typed in a host: `plugin/sizes.py`)."""
    try:
        return sizes.parse_size(str(text))
    except ValueError:
        raise UsageError(f"cannot read the size {text!r}",
                         hint="use a number with an optional unit: 500M, 200G, 1.5T") from None


def format_size(size: float) -> str:
    """A size for people: 1.5G, 320M, 12K, 512B."""
    for unit in ("T", "G", "M", "K"):
        if size >= sizes.UNITS[unit]:
            return f"{size / sizes.UNITS[unit]:.1f}{unit}"
    return f"{int(size)}B"


def register(subparsers: Any) -> None:
    """Add `vrmbg cache ls|info|clear|prune`."""
    parser = subparsers.add_parser(
        "cache", help="inspect and bound the temporal cache", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    parser.set_defaults(func=lambda args: _help(parser))

    ls = _action(actions, "ls", "list chains, least recently used first")
    ls.set_defaults(func=run_ls)

    info = _action(actions, "info", "settings, frames and size of chains")
    info.add_argument("which", nargs="?", default="",
                      help="a chain id (or its start), a shot name or id; empty = all")
    info.set_defaults(func=run_info)

    clear = _action(actions, "clear", "delete chains (never one a running render holds)")
    clear.add_argument("--shot", default="", help="only chains of this shot (name, id, or "
                       "its plates: sh010.####.exr, plates/sh010.%%04d.exr, a movie)")
    clear.add_argument("--chain", default="", help="only this chain id (or its start)")
    clear.add_argument("--tier", choices=store.TIERS, default="", help="only this tier")
    clear.add_argument("--all", action="store_true", help="select every chain (required "
                       "when no --shot/--chain is given)")
    clear.set_defaults(func=run_clear)

    prune = _action(actions, "prune", "delete least recently used chains to fit a size")
    prune.add_argument("--max-size", required=True, metavar="SIZE",
                       help="size to fit in, binary units: 500M, 200G, 1.5T")
    prune.set_defaults(func=run_prune)


def _action(actions: Any, name: str, text: str) -> argparse.ArgumentParser:
    """One `vrmbg cache` action with the shared --cache-dir and --json flags."""
    parser = actions.add_parser(name, help=text, description=f"{text}.\n\n{DESCRIPTION}",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_schema_arguments(parser, names=["cache_dir"])
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def _help(parser: argparse.ArgumentParser) -> int:
    """`vrmbg cache` alone: show the actions."""
    parser.print_help()
    return 2


def _root(args: argparse.Namespace) -> str:
    """The cache root from --cache-dir / $VRMBG_CACHE / the user cache folder.

    A root that does not exist is reported on stderr: a typo in a nightly prune job must
    not pass silently. A render's output folder, or its output pattern
    (mattes/sh010.####.exr), stands for the `.vrmbg-cache` inside that folder (said on
    stderr, so --json output stays clean).
    """
    explicit = _output_folder(getattr(args, "cache_dir", "") or "")
    root = store.default_cache_root(explicit)
    if not os.path.exists(root):
        print(f"vrmbg: warning: no cache folder at {root}", file=sys.stderr)
        return root
    inner = store.render_cache_inside(root) if explicit else None
    if inner:
        print(f"vrmbg: using the render cache {inner}", file=sys.stderr)
        root = inner
    _claim(root)
    return root


def _claim(root: str) -> None:
    """Refuse a folder that is not a vrmbg cache (UsageError); adopt an older one."""
    state = store.claim_cache(root)
    if state == "adopted":
        print(f"vrmbg: adopted {root} as a vrmbg cache (wrote {store.MARKER_FILE})",
              file=sys.stderr)
    elif state == "unmarked":
        print(f"vrmbg: warning: {root} is laid out as a vrmbg cache but its "
              f"{store.MARKER_FILE} marker cannot be written", file=sys.stderr)


def _chains(root: str) -> list[store.ChainInfo]:
    """Every chain of the cache, saying which symbolic links were left alone."""
    skipped: list[str] = []
    chains = store.list_chains(root, skipped)
    _say_skipped(skipped)
    return chains


def _say_skipped(skipped: list[str]) -> None:
    """One stderr line per symbolic link the walk did not follow."""
    for path in skipped:
        print(f"vrmbg: warning: skipped {path}: a symbolic link (vrmbg never follows one in "
              "its cache, nor deletes what it leads to)", file=sys.stderr)


def _output_folder(text: str) -> str:
    """The folder of an output pattern or movie given as --cache-dir; other text as is."""
    if not text or os.path.exists(text):
        return text
    if SequencePattern.parse(text).is_sequence or \
            os.path.splitext(text)[1].lower() in (".exr", ".mov"):
        return os.path.dirname(os.path.abspath(text))
    return text


def _matches_shot(info: store.ChainInfo, shot: str) -> bool:
    """A shot given by its folder id, its name (the id without the hash), or its plates as
    the user knows them: the pattern in any spelling (sh010.####.exr, sh010.%04d.exr, with
    or without its folder) or the movie's file name."""
    if info.shot == shot or info.shot.rsplit("-", 1)[0] == shot:
        return True
    plate = str(info.description.get("plate") or "")
    if not plate:
        return False
    have, given = SequencePattern.parse(plate), SequencePattern.parse(shot)
    if have.is_sequence and given.is_sequence:
        same_name = (have.prefix, have.tail) == (given.prefix, given.tail)
        return same_name and (not given.folder or os.path.realpath(given.folder)
                              == os.path.realpath(have.folder))
    if os.sep in shot or "/" in shot:
        return os.path.realpath(shot) == os.path.realpath(plate)
    return os.path.basename(plate) == shot


def _select(chains: list[store.ChainInfo], *, shot: str = "", chain: str = "",
            tier: str = "") -> list[store.ChainInfo]:
    """Chains matching the given shot, chain id prefix and tier."""
    return [info for info in chains
            if (not shot or _matches_shot(info, shot))
            and (not chain or info.chain_id.startswith(chain))
            and (not tier or info.tier == tier)]


def _when(timestamp: float) -> str:
    """A local date and time for a table."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "-"


def _print_table(chains: list[store.ChainInfo]) -> None:
    """The `ls` table."""
    header = ("SHOT", "TIER", "CHAIN", "FRAMES", "SIZE", "LAST USED", "")
    rows = [(c.shot, c.tier, c.chain_id, c.to_dict()["frames"] or "-", format_size(c.size),
             _when(c.last_used), "rendering" if c.locked else "") for c in chains]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def run_ls(args: argparse.Namespace) -> int:
    """List every chain of the cache."""
    root = _root(args)
    chains = _chains(root)
    if args.json:
        print(json.dumps({"cache_dir": root, "bytes": sum(c.size for c in chains),
                          "chains": [c.to_dict() for c in chains]}))
        return 0
    if not chains:
        print(f"cache is empty: {root}")
        return 0
    print(f"cache: {root}  ({format_size(sum(c.size for c in chains))})")
    _print_table(chains)
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Details of the chains a chain id or shot names (all when empty)."""
    root = _root(args)
    chains = _chains(root)
    chosen = chains if not args.which else (
        _select(chains, chain=args.which) or _select(chains, shot=args.which))
    if args.which and not chosen:
        raise UsageError(f"no chain or shot {args.which!r} in the cache", path=root,
                         hint="see `vrmbg cache ls`")
    if args.json:
        print(json.dumps({"cache_dir": root, "chains": [c.to_dict() for c in chosen]}))
        return 0
    for info in chosen:
        data = info.to_dict()
        print(f"{info.shot} / {info.tier} / {info.chain_id}"
              f"{'  (a render holds it)' if info.locked else ''}")
        print(f"  folder:    {info.folder}")
        print(f"  plate:     {data['plate'] or '-'}")
        print(f"  mattes:    {info.description.get('matte_pattern', '-')}")
        print(f"  frames:    {data['frames'] or '-'} ({data['frame_count']})")
        print(f"  size:      {format_size(info.size)}")
        print(f"  last used: {_when(info.last_used)}")
        for key, value in sorted(data["settings"].items()):
            print(f"  {key + ':':<17}{value}")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    """Delete the selected chains, skipping any a running render holds."""
    if not (args.all or args.shot or args.chain):
        raise UsageError("say what to clear: --shot NAME, --chain ID, or --all")
    root = _root(args)
    chains = _chains(root)
    _check_named(chains, root, shot=args.shot, chain=args.chain)
    chosen = _select(chains, shot=args.shot, chain=args.chain, tier=args.tier)
    removed = [c for c in chosen if store.remove_chain(c.folder)]
    busy = [c for c in chosen if c not in removed]
    _report("removed", removed, busy, root, args.json)
    return 0


def _check_named(chains: list[store.ChainInfo], root: str, *, shot: str, chain: str) -> None:
    """UsageError when `--shot` or `--chain` names nothing in the cache (a typo must not
    pass as "freed 0B"), listing what the cache holds."""
    if shot and not _select(chains, shot=shot):
        shots = sorted({c.shot for c in chains})
        raise UsageError(f"no shot {shot!r} in the cache", path=root,
                         hint=_holds("shots", shots))
    if chain and not _select(chains, chain=chain):
        ids = [c.chain_id for c in chains]
        raise UsageError(f"no chain {chain!r} in the cache", path=root,
                         hint=_holds("chains", ids))


def _holds(what: str, names: list[str], most: int = 20) -> str:
    """'it holds: a, b, c' (the first `most`, then how many more), or that it holds none."""
    if not names:
        return f"the cache holds no {what}"
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return f"it holds {len(names)} {what}: {', '.join(names[:most])}{more}"


def run_prune(args: argparse.Namespace) -> int:
    """Delete least recently used chains until the cache fits in --max-size."""
    limit = parse_size(args.max_size)
    root = _root(args)
    skipped: list[str] = []
    removed, busy, total = store.prune(root, limit, skipped)
    _say_skipped(skipped)
    _report("removed", removed, busy, root, args.json, extra={"bytes_after": total,
                                                             "max_bytes": limit})
    if total > limit and not args.json:
        print(f"still {format_size(total)} (over {format_size(limit)}): the rest is in use",
              file=sys.stderr)
    return 0


def _report(verb: str, removed: list[store.ChainInfo], busy: list[store.ChainInfo], root: str,
            as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """Say what was deleted and what was kept because a render holds it."""
    freed = sum(c.size for c in removed)
    if as_json:
        print(json.dumps({"cache_dir": root, verb: [c.chain_id for c in removed],
                          "kept_in_use": [c.chain_id for c in busy], "bytes_freed": freed,
                          **(extra or {})}))
        return
    for info in removed:
        print(f"{verb} {info.shot}/{info.tier}/{info.chain_id} ({format_size(info.size)})")
    for info in busy:
        print(f"kept {info.shot}/{info.tier}/{info.chain_id}: a render is using it",
              file=sys.stderr)
    print(f"freed {format_size(freed)} in {root}")
