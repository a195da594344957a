"""Cache housekeeping: list, describe, size and delete chains (what `vrmbg cache` runs).

Everything here looks at a whole cache root, chain by chain, from the outside: which chains
there are (`iter_chain_dirs`, `list_chains`), what one holds (`chain_info`), how big a folder
is (`folder_size`), and deleting chains least recently used first (`remove_chain`, `prune`).
A chain whose lock a running process holds is never deleted. The layout itself is
`cache`'s; every delete goes through `fs`.

Only vrmbg's own files: a folder is a cache when it carries vrmbg's marker, or when its
layout and stamps are vrmbg's and it is adopted (`claim_cache`); the walk never follows a
symbolic link (a linked shot, tier or chain folder is skipped and reported, never deleted
through), and only folders named and filled as chains are chains.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from ..errors import OutputError, UsageError
from ..fs import TEMP_MARKER, remove_empty_folder, remove_file, remove_tree, rename
from ..io.frames import format_frame_ranges
from .cache import (CHAIN_FILE, CHAIN_NAME, LOCK_FILE, MARKER_FILE, MATTE_DIR,
                    RENDER_CACHE_FOLDER, SHOT_FILE, STATE_DIR, TIERS, default_cache_root,
                    guard_chain_folder, layout_problem, newer_format_error, read_marker,
                    write_marker)
from .lock import ChainLock, is_locked

# `vrmbg cache` (cli/cache_cmd.py) uses this module as its whole view of the cache.
__all__ = ["MARKER_FILE", "TIERS", "ChainInfo", "chain_info", "claim_cache",
           "default_cache_root", "folder_size", "is_locked", "iter_chain_dirs", "list_chains",
           "prune", "remove_chain", "render_cache_inside"]


@dataclass
class ChainInfo:
    """One chain folder as `vrmbg cache ls` shows it."""

    folder: str
    shot: str
    tier: str
    chain_id: str
    frames: list[int]
    size: int
    last_used: float
    locked: bool
    description: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"folder": self.folder, "shot": self.shot, "tier": self.tier,
                "chain_id": self.chain_id, "frames": format_frame_ranges(self.frames),
                "frame_count": len(self.frames), "bytes": self.size,
                "last_used": self.last_used, "locked": self.locked,
                "settings": self.description.get("identity", {}),
                "plate": self.description.get("plate", "")}


def render_cache_inside(folder: str) -> str | None:
    """The render cache kept in `folder` (an output folder), when `folder` holds no chains
    of its own but has a `.vrmbg-cache` inside; None otherwise."""
    inner = os.path.join(folder, RENDER_CACHE_FOLDER)
    if not os.path.isdir(inner) or os.path.basename(os.path.normpath(folder)) == \
            RENDER_CACHE_FOLDER:
        return None
    if next(iter_chain_dirs(folder), None) is not None:
        return None
    return inner


def claim_cache(root: str) -> str:
    """Make sure `root` (an existing folder) is a vrmbg cache before anything is deleted
    in it: "marked" (it carries the marker), "adopted" (no marker, but its layout and stamps
    are vrmbg's: the marker is written now), "unmarked" (the same, where the marker cannot
    be written), or "empty" (nothing of vrmbg's or anyone's in it; left unmarked).

    UsageError naming the folder for anything else: a file, a folder that holds what vrmbg
    does not make, a cache of a newer vrmbg.
    """
    if os.path.exists(root) and not os.path.isdir(root):
        raise UsageError("the cache folder is a file, not a folder", path=root)
    marker = read_marker(root)
    if marker is not None:
        why = newer_format_error(root, marker)
        if why:
            raise UsageError(f"the cache folder was {why}", path=root)
        return "marked"
    try:
        os.listdir(root)
    except PermissionError:
        raise UsageError("the cache folder cannot be read (permission denied)",
                         path=root) from None
    problem, shots = layout_problem(root)
    if problem:
        raise UsageError(f"not a vrmbg cache: it has no {MARKER_FILE} marker and {problem}",
                         path=root, hint="vrmbg deletes only in folders it made")
    if not shots:
        return "empty"
    try:
        write_marker(root)
    except (OSError, OutputError):
        return "unmarked"
    return "adopted"


def iter_chain_dirs(root: str, skipped: list[str] | None = None) -> Iterator[tuple[str, str, str]]:
    """(shot id, tier, chain folder) of every chain under `root` (UsageError for a root
    that is a file or cannot be read; nothing for one that does not exist yet).

    A shot, tier or chain folder that is a symbolic link is never followed (it is added to
    `skipped`); a chain is a folder with a chain id's name (16 hex) holding a chain's files.
    """
    try:
        shots = sorted(os.listdir(root))
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise UsageError("the cache folder is a file, not a folder", path=root) from None
    except PermissionError:
        raise UsageError("the cache folder cannot be read (permission denied)",
                         path=root) from None
    for shot in shots:
        shot_dir = os.path.join(root, shot)
        if _linked(shot_dir, skipped) or not os.path.isdir(shot_dir):
            continue
        for tier in TIERS:
            tier_dir = os.path.join(shot_dir, tier)
            if _linked(tier_dir, skipped):
                continue
            try:
                chains = sorted(os.listdir(tier_dir))
            except OSError:
                continue
            for chain in chains:
                folder = os.path.join(tier_dir, chain)
                if _linked(folder, skipped):
                    continue
                if CHAIN_NAME.match(chain) and os.path.isdir(folder) and _holds_a_chain(folder):
                    yield shot, tier, folder


def _linked(path: str, skipped: list[str] | None) -> bool:
    """True (and noted in `skipped`) when `path` is a symbolic link."""
    if not os.path.islink(path):
        return False
    if skipped is not None:
        skipped.append(path)
    return True


def _holds_a_chain(folder: str) -> bool:
    """True when a folder holds any of a chain's own files (a chain-named folder of someone
    else's is not a chain)."""
    return any(os.path.lexists(os.path.join(folder, name))
               for name in (CHAIN_FILE, LOCK_FILE, MATTE_DIR, STATE_DIR))


def folder_size(folder: str) -> int:
    """Bytes of every file below `folder`."""
    return sum(stat.st_size for stat in _file_stats(folder))


def _file_stats(folder: str) -> Iterator[os.stat_result]:
    """`lstat` of every file below `folder` (a file gone meanwhile is left out)."""
    for base, _dirs, files in os.walk(folder):
        for name in files:
            try:
                yield os.lstat(os.path.join(base, name))
            except OSError:
                pass


def _matte_frames(folder: str) -> list[int]:
    """Frame numbers of the mattes in a chain folder."""
    frames: list[int] = []
    matte_dir = os.path.join(folder, MATTE_DIR)
    if os.path.islink(matte_dir):
        return frames  # never vrmbg's: its frames are someone else's
    try:
        names = os.listdir(matte_dir)
    except OSError:
        return frames
    for name in names:
        match = re.search(r"\.(-?\d+)\.exr$", name)
        if match and TEMP_MARKER not in name:
            frames.append(int(match.group(1)))
    return sorted(frames)


def chain_info(shot: str, tier: str, folder: str) -> ChainInfo:
    """Describe one chain folder."""
    chain_file = os.path.join(folder, CHAIN_FILE)
    try:
        with open(chain_file, encoding="utf-8") as handle:
            description = json.load(handle)
        last_used = os.stat(chain_file).st_mtime
    except (OSError, ValueError):
        description, last_used = {}, _newest_mtime(folder)
    return ChainInfo(folder=folder, shot=shot, tier=tier, chain_id=os.path.basename(folder),
                     frames=_matte_frames(folder), size=folder_size(folder),
                     last_used=last_used, locked=is_locked(folder), description=description)


def _newest_mtime(folder: str) -> float:
    """Latest modification time of anything in `folder` (for chains without chain.json)."""
    return max([0.0, *(stat.st_mtime for stat in _file_stats(folder))])


def list_chains(root: str, skipped: list[str] | None = None) -> list[ChainInfo]:
    """Every chain in the cache, least recently used first (symbolic links met on the way
    are added to `skipped`)."""
    infos = [chain_info(shot, tier, folder)
             for shot, tier, folder in iter_chain_dirs(root, skipped)]
    return sorted(infos, key=lambda info: info.last_used)


def remove_chain(folder: str) -> bool:
    """Delete a chain folder unless a running process holds its lock; True when removed.

    OutputError when the chain, tier or shot folder is a symbolic link (nothing is deleted
    or created through one). A `chain.lock` that is a link was never vrmbg's (no render
    computes through one): the link alone goes, and the chain is locked as usual.
    """
    guard_chain_folder(folder)
    lock_path = os.path.join(folder, LOCK_FILE)
    if os.path.islink(lock_path):
        remove_file(lock_path)  # the link itself, never what it leads to
    lock = ChainLock(lock_path, mark_root=False)
    if not os.path.isdir(folder) or not lock.try_acquire():
        return False
    trash = os.path.join(os.path.dirname(folder),
                         f".trash-{os.path.basename(folder)}-{os.getpid()}-{time.time_ns()}")
    try:
        rename(folder, trash)  # atomic: a render waiting for the lock starts afresh
    except OSError:
        lock.release()
        return False
    lock.release()
    remove_tree(trash)
    _remove_empty_parents(folder)
    return True


def _remove_empty_parents(folder: str) -> None:
    """Remove the tier and shot folders left empty (shot.json alone counts as empty)."""
    tier_dir = os.path.dirname(folder)
    shot_dir = os.path.dirname(tier_dir)
    if not remove_empty_folder(tier_dir):
        return
    if any(os.path.isdir(os.path.join(shot_dir, tier)) for tier in TIERS):
        return
    remove_file(os.path.join(shot_dir, SHOT_FILE))
    remove_empty_folder(shot_dir)


def prune(root: str, max_bytes: int, skipped: list[str] | None = None
          ) -> tuple[list[ChainInfo], list[ChainInfo], int]:
    """Delete least-recently-used chains until the cache fits in `max_bytes`.

    Chains locked by a running render are never deleted, nor anything a symbolic link leads
    to (added to `skipped`). Returns (removed, kept busy, final size in bytes).
    """
    return prune_chains(list_chains(root, skipped), max_bytes)


def prune_chains(chains: list[ChainInfo], max_bytes: int, keep: Iterable[str] = (),
                 stop: Callable[[], bool] = lambda: False
                 ) -> tuple[list[ChainInfo], list[ChainInfo], int]:
    """Delete the least recently used of `chains` (listed as `list_chains` orders them) until
    they hold at most `max_bytes`: never a chain whose folder is in `keep` (what a host shows)
    or that a process holds locked; `stop()` ends it early. Returns (removed, kept busy,
    final size in bytes): the one rule of `vrmbg cache prune` and a host's prune."""
    kept = {os.path.abspath(folder) for folder in keep}
    total = sum(info.size for info in chains)
    removed: list[ChainInfo] = []
    busy: list[ChainInfo] = []
    for info in chains:
        if total <= max_bytes or stop():
            break
        if os.path.abspath(info.folder) in kept:
            continue
        if remove_chain(info.folder):
            removed.append(info)
            total -= info.size
        else:
            busy.append(info)
    return removed, busy, total
