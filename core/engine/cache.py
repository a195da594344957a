"""The temporal cache on disk: the folder layout and the lossless state files of a chain.

Layout (every file is written atomically: temp file + rename in the same folder)::

    CACHE_ROOT/                         --cache-dir > $VRMBG_CACHE > $XDG_CACHE_HOME/vrmbg
      <shot-id>/                        <plate name>-<8 hex of plate path, layer, part>
        shot.json                       the plate pattern, layer and part (for `vrmbg cache ls`)
        final/<chain-id>/               exact chains; chain-id = 16 hex of the identity hash
          chain.json                    the chain identity in readable form; mtime = last use
          chain.lock                    flock'd by the process computing frames of this chain
          matte/<name>.<frame>.exr      plate-resolution matte: half EXR, channel A, the plate's
                                        frame numbers and metadata, plus vrmbg:key, vrmbg:tier,
                                        vrmbg:chain, vrmbg:start (point a Read node here)
          state/<frame>_<start>_<key>.npy   the model's R x R prediction of that frame, in the
                                        model dtype (bf16 stored as its uint16 bit pattern):
                                        what the next frame continues from
        preview/<chain-id>/             same layout for the preview tier (lower inference size
                                        and/or bounded pre-roll); mattes say vrmbg:tier=preview

A frame is valid when its state file exists under the recomputed key *and* its matte carries
that key (`io.mattes.read_matte_stamp`). The matte is written before the state, so a crash
between the two leaves a frame that is simply recomputed. Temp files (`fs.temp_path_for`) left
by a killed process are never read and are swept by the next process that takes the chain's
lock.

Beside this module: `lock` (the per-chain lock), `housekeeping` (listing, sizing and deleting
chains: `vrmbg cache`), and `io.plate_identity` (which shot a plate is: the shot folder name).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

from ...plugin import paths
from ..errors import OutputError, UsageError
from ..fs import (atomic_write, atomic_write_text, is_temp_name, make_folder, remove_file,
                  remove_temp_files, touch)
from ..io.frames import format_frame

TIERS = ("final", "preview")
CHAIN_FILE = "chain.json"
LOCK_FILE = "chain.lock"
SHOT_FILE = "shot.json"
MATTE_DIR = "matte"
MATTE_COMPRESSION = "zip"  # of the cached mattes (lossless; an alpha output like it is shared)
STATE_DIR = "state"
KEY_CHARS = 32  # key characters kept in state file names (128 bits)

_STATE_NAME = re.compile(r"^(-?\d+)_(-?\d+)_([0-9a-f]+)\.npy$")


# --------------------------------------------------------------------------- cache root

RENDER_CACHE_FOLDER = ".vrmbg-cache"  # a render's cache, beside its output

# The marker that makes a folder a vrmbg cache: the cache commands delete only in a marked
# folder (or one they adopt, `housekeeping.claim_cache`). Written by the engine the first
# time it computes into a root (`guard_chain_folder`). FORMAT counts layout changes: a
# folder marked with a newer format is left alone. Not a dot file: it says what the folder
# is to whoever browses it (and test helpers take dot files for a killed writer's debris).
MARKER_FILE = "vrmbg-cache.json"
CACHE_FORMAT = 1
MADE_BY = "vrmbg"

# What may sit in a cache root besides shot folders: the hosts' own folders (rendered inputs
# and keyframes, `paths.HOST_FOLDERS`) and the litter file browsers and file systems leave
# everywhere.
HOST_FOLDERS = paths.HOST_FOLDERS
LITTER_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", "lost+found",
                          ".Spotlight-V100", ".fseventsd", ".Trashes", ".TemporaryItems"})
LITTER_PREFIXES = ("._", ".nfs", ".fuse_hidden")
CHAIN_NAME = re.compile(r"^[0-9a-f]{16}$")  # `chain.chain_id`: 16 hex of the identity hash
TRASH_PREFIX = ".trash-"  # a chain being deleted (`housekeeping.remove_chain`)


def default_cache_root(explicit: str = "") -> str:
    """Where the cache lives: explicit > $VRMBG_CACHE > $XDG_CACHE_HOME/vrmbg > ~/.cache/vrmbg
    (the hosts' rule too: `plugin/paths.py`).

    UsageError for a folder that must never be a cache (`check_cache_root`): every user of a
    cache root (render, worker sessions, `vrmbg cache`) resolves it here, so it is refused
    before anything is created.
    """
    root = paths.default_cache_root(explicit)
    check_cache_root(root)
    return root


def check_cache_root(root: str) -> None:
    """UsageError when `root` must not be a cache folder: a file-system root (`/`, `C:\\`),
    the home folder (`plugin/paths.py`, which the hosts check too), or the top folder of a
    mounted file system that holds other things (an empty one, or one that is already a
    vrmbg cache, is a cache volume of its own)."""
    hint = "give the cache a folder of its own, e.g. --cache-dir /path/to/vrmbg-cache"
    problem = paths.cache_root_problem(root)
    if problem:
        raise UsageError(problem, path=root, hint=hint)
    real = os.path.realpath(root)
    if os.path.ismount(real) and read_marker(real) is None:
        problem, _ = layout_problem(real)
        if problem:
            raise UsageError("the top folder of a mounted file system cannot be the cache "
                             f"folder unless it is empty or a vrmbg cache ({problem})",
                             path=root, hint=hint)


def read_marker(root: str) -> dict[str, Any] | None:
    """The cache root's marker ({"format": N, "made_by": "vrmbg"}), or None when there is
    none, it is a link, or it is not vrmbg's."""
    path = os.path.join(root, MARKER_FILE)
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError, RecursionError):
        return None
    if (not isinstance(marker, dict) or marker.get("made_by") != MADE_BY
            or not isinstance(marker.get("format"), int) or isinstance(marker["format"], bool)):
        return None
    return marker


def write_marker(root: str) -> None:
    """Mark `root` as a vrmbg cache (made when missing); OutputError when it cannot."""
    make_folder(root)
    atomic_write_text(os.path.join(root, MARKER_FILE),
                      json.dumps({"format": CACHE_FORMAT, "made_by": MADE_BY}) + "\n")


def newer_format_error(root: str, marker: dict[str, Any]) -> str | None:
    """Why a marked cache cannot be used by this vrmbg (a newer layout), or None."""
    if marker["format"] > CACHE_FORMAT:
        return (f"made by a newer vrmbg (cache format {marker['format']}, this vrmbg "
                f"knows {CACHE_FORMAT}): use that version, or another cache folder")
    return None


def mark_cache_root(root: str) -> None:
    """The engine is about to compute into `root`: mark it as a vrmbg cache (best effort: a
    root others made read-only stays usable where its shot folders are writable).
    OutputError when a newer vrmbg made it."""
    marker = read_marker(root)
    if marker is None:
        try:
            write_marker(root)
        except (OSError, OutputError):
            pass  # the lock file's own write says what is wrong with the folder
        return
    why = newer_format_error(root, marker)
    if why:
        raise OutputError(f"the cache folder was {why}", path=root)


def is_litter(name: str) -> bool:
    """A file browser's or file system's own file (.DS_Store, ._name, .nfsNNNN, lost+found)."""
    return name in LITTER_NAMES or name.startswith(LITTER_PREFIXES)


def layout_problem(root: str) -> tuple[str | None, int]:
    """Why `root` is not laid out as a vrmbg cache (None when it is), and how many shot
    folders carry vrmbg's stamps (shot.json, chain.json).

    A vrmbg cache holds shot folders (shot.json, final/ and preview/ holding chain folders:
    16 hex names holding chain.json, chain.lock, matte/, state/), the hosts' own folders
    (`HOST_FOLDERS`), vrmbg's temp files and litter. Symbolic links are left out: vrmbg never
    follows one, so they decide nothing. Reads only.
    """
    try:
        names = sorted(os.listdir(root))
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})", 0
    shots = 0
    for name in names:
        path = os.path.join(root, name)
        if _neutral(path, name) or name == MARKER_FILE:
            continue
        if os.path.isdir(path) and (name in HOST_FOLDERS or name == RENDER_CACHE_FOLDER):
            continue
        if not os.path.isdir(path):
            return f"{name!r} is not something vrmbg makes", shots
        try:
            problem = _shot_problem(path, name)
        except OSError as exc:
            problem = f"{name!r} cannot be read ({exc.strerror or exc})"
        if problem:
            return problem, shots
        shots += 1
    return None, shots


def _neutral(path: str, name: str) -> bool:
    """An entry that says nothing about who made a folder: a link, litter, a temp file."""
    return os.path.islink(path) or is_litter(name) or is_temp_name(name)


def _shot_problem(shot_dir: str, shot: str) -> str | None:
    """Why a folder in a cache root is not a vrmbg shot folder (None when it is)."""
    stamped = False
    for name in sorted(os.listdir(shot_dir)):
        path = os.path.join(shot_dir, name)
        rel = f"{shot}/{name}"
        if _neutral(path, name):
            continue
        if name == SHOT_FILE and os.path.isfile(path):
            if not _json_object(path):
                return f"{rel} is not vrmbg's"
            stamped = True
        elif name in TIERS and os.path.isdir(path):
            for chain in sorted(os.listdir(path)):
                chain_dir = os.path.join(path, chain)
                if _neutral(chain_dir, chain):
                    continue
                if os.path.isdir(chain_dir) and chain.startswith(TRASH_PREFIX):
                    continue
                if not (CHAIN_NAME.match(chain) and os.path.isdir(chain_dir)):
                    return f"{rel}/{chain} is not a vrmbg chain folder"
                problem, has_chain_file = _chain_problem(chain_dir, f"{rel}/{chain}")
                if problem:
                    return problem
                stamped = stamped or has_chain_file
        else:
            return f"{rel} is not something vrmbg makes"
    if not stamped:
        return f"{shot!r} holds neither {SHOT_FILE} nor a {CHAIN_FILE}"
    return None


def _chain_problem(chain_dir: str, rel: str) -> tuple[str | None, bool]:
    """Why a chain-named folder is not a vrmbg chain (None when it is), and whether it
    holds its chain.json."""
    has_chain_file = False
    for name in os.listdir(chain_dir):
        path = os.path.join(chain_dir, name)
        if _neutral(path, name) or name == LOCK_FILE:
            continue
        if name == CHAIN_FILE and os.path.isfile(path) and _json_object(path):
            has_chain_file = True
        elif name in (MATTE_DIR, STATE_DIR) and os.path.isdir(path):
            continue
        else:
            return f"{rel}/{name} is not something vrmbg makes", False
    return None, has_chain_file


def _json_object(path: str) -> bool:
    """True when the file holds one JSON object (a vrmbg stamp)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return isinstance(json.load(handle), dict)
    except (OSError, ValueError, RecursionError):
        return False


def chain_parents(chain_dir: str) -> tuple[str, str, str] | None:
    """(cache root, shot folder, tier folder) of a chain folder laid out as the engine lays
    it out (ROOT/<shot>/<final|preview>/<chain-id>), None for a folder elsewhere."""
    chain_dir = os.path.abspath(chain_dir)
    tier_dir = os.path.dirname(chain_dir)
    shot_dir = os.path.dirname(tier_dir)
    root = os.path.dirname(shot_dir)
    if os.path.basename(tier_dir) not in TIERS or root == shot_dir:
        return None
    return root, shot_dir, tier_dir


def guard_chain_folder(chain_dir: str, *, mark: bool = False) -> None:
    """OutputError when writing or deleting in a chain folder would go through a symbolic
    link out of the cache: the chain, tier and shot folders must be folders of their own.
    With `mark`, the cache root gets its marker (the engine is about to compute into it)."""
    parents = chain_parents(chain_dir)
    for folder in (*(parents[1:] if parents else ()), chain_dir):
        refuse_link(folder)
    if mark and parents:
        mark_cache_root(parents[0])


def refuse_link(folder: str) -> None:
    """OutputError when `folder` is a symbolic link (vrmbg never writes or deletes through
    one in its cache)."""
    if os.path.islink(folder):
        raise OutputError("is a symbolic link: vrmbg never writes or deletes through a link "
                          "in its cache", path=folder, hint="remove the link")


# --------------------------------------------------------------------------- state tensors

def _storage(dtype: "torch.dtype") -> tuple[np.dtype, "torch.dtype"]:
    """How a model dtype is stored: numpy dtype of the file, and the torch view to get there.

    torch is imported here, not at module level, so `vrmbg cache` and `--help` start fast.
    """
    import torch

    table = {
        torch.bfloat16: (np.dtype(np.uint16), torch.int16),
        torch.float16: (np.dtype(np.float16), torch.float16),
        torch.float32: (np.dtype(np.float32), torch.float32),
        torch.float64: (np.dtype(np.float64), torch.float64),
    }
    return table[dtype]


def storage_dtype(dtype: torch.dtype) -> np.dtype:
    """The numpy dtype a state of model dtype `dtype` is stored as (bit-exact)."""
    return _storage(dtype)[0]


def state_to_array(pred: torch.Tensor) -> np.ndarray:
    """The prediction as a contiguous CPU array with the exact bits (bf16 -> uint16 pattern)."""
    np_dtype, view = _storage(pred.dtype)
    cpu = pred.detach().to("cpu").contiguous()
    return cpu.view(view).numpy().view(np_dtype)


def state_from_array(array: np.ndarray, dtype: torch.dtype,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """Inverse of `state_to_array`: the same bits as a contiguous tensor of `dtype`."""
    import torch

    np_dtype, view = _storage(dtype)
    if array.dtype != np_dtype:
        raise ValueError(f"state stored as {array.dtype}, expected {np_dtype}")
    host = torch.from_numpy(np.ascontiguousarray(array).view(np.int16) if view == torch.int16
                            else np.ascontiguousarray(array))
    return host.view(dtype).to(device).contiguous()


# --------------------------------------------------------------------------- one chain

@dataclass(frozen=True)
class StateEntry:
    """One state file: the frame, the chain start it was computed from, and its key prefix."""

    frame: int
    start: int
    key: str
    path: str


@dataclass
class ChainStore:
    """The files of one chain folder (see the module docstring for the layout)."""

    folder: str
    name: str = "matte"
    padding: int = 4
    _states: dict[int, list[StateEntry]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Before anything is read, written or linked (a render links its outputs into the
        # cache even when every frame is cached): no folder of the chain may be a link.
        guard_chain_folder(self.folder)
        for folder in (self.matte_dir, self.state_dir):
            refuse_link(folder)

    @property
    def lock_path(self) -> str:
        """The chain's lock file."""
        return os.path.join(self.folder, LOCK_FILE)

    @property
    def matte_dir(self) -> str:
        """Folder of the plate-resolution matte sequence."""
        return os.path.join(self.folder, MATTE_DIR)

    @property
    def state_dir(self) -> str:
        """Folder of the R x R prediction states."""
        return os.path.join(self.folder, STATE_DIR)

    @property
    def matte_pattern(self) -> str:
        """The matte sequence as a `####` pattern (for a Nuke Read or a Blender Image node)."""
        return os.path.join(self.matte_dir, f"{self.name}.{'#' * self.padding}.exr")

    def matte_path(self, frame: int) -> str:
        """The matte file of `frame`, named with the plate's frame number and padding."""
        return os.path.join(self.matte_dir, f"{self.name}.{format_frame(frame, self.padding)}.exr")

    def state_path(self, frame: int, start: int, key: str) -> str:
        """The state file of `frame` computed from chain start `start` with key `key`."""
        return os.path.join(self.state_dir, f"{frame}_{start}_{key[:KEY_CHARS]}.npy")

    # ----------------------------------------------------------------- states

    def scan_states(self) -> dict[int, list[StateEntry]]:
        """Read the state folder once: frame -> state files present (temp files ignored)."""
        states: dict[int, list[StateEntry]] = {}
        try:
            names = os.listdir(self.state_dir)
        except FileNotFoundError:
            names = []
        for name in names:
            match = _STATE_NAME.match(name)
            if match:
                frame, start = int(match.group(1)), int(match.group(2))
                states.setdefault(frame, []).append(
                    StateEntry(frame, start, match.group(3), os.path.join(self.state_dir, name)))
        self._states = states
        return states

    def has_state(self, frame: int, start: int, key: str) -> bool:
        """True when the state of `frame` for this start and key is on disk."""
        return os.path.isfile(self.state_path(frame, start, key))

    def write_state(self, frame: int, start: int, key: str, array: np.ndarray) -> None:
        """Store a state atomically, then drop this frame's states of other keys/starts."""
        path = self.state_path(frame, start, key)
        atomic_write(path, lambda tmp: np.save(tmp, array, allow_pickle=False))
        for entry in self._states.get(frame, []):
            if entry.path != path:
                remove_file(entry.path)
        self._states[frame] = [StateEntry(frame, start, key[:KEY_CHARS], path)]

    def read_state(self, frame: int, start: int, key: str, dtype: torch.dtype,
                   shape: tuple[int, ...] | None = None) -> np.ndarray | None:
        """The stored state array, or None when missing or unreadable (then it is recomputed)."""
        path = self.state_path(frame, start, key)
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if array.dtype != storage_dtype(dtype) or (shape is not None and array.shape != shape):
            return None
        return array

    # ----------------------------------------------------------------- folders

    def ensure_folders(self, description: dict[str, Any]) -> None:
        """Create the chain folders and its chain.json (once); needs the lock held."""
        for folder in (self.folder, self.matte_dir, self.state_dir):
            refuse_link(folder)  # a linked matte/ or state/ would take mattes elsewhere
            make_folder(folder)
        path = os.path.join(self.folder, CHAIN_FILE)
        if not os.path.isfile(path):
            text = json.dumps(description, indent=2, sort_keys=True, default=str) + "\n"
            atomic_write_text(path, text)

    def touch(self) -> None:
        """Mark the chain as just used (its chain.json mtime orders `cache prune`)."""
        touch_chain(self.folder)

    def sweep_temp_files(self) -> int:
        """Remove temp files left by killed processes; call only with the lock held."""
        return sum(remove_temp_files(folder)
                   for folder in (self.folder, self.matte_dir, self.state_dir)
                   if not os.path.islink(folder))  # only in folders vrmbg owns


def touch_chain(folder: str) -> None:
    """Mark a chain folder as just used: `cache prune` removes least recently used chains
    first, and reading finished frames counts as use."""
    path = os.path.join(folder, CHAIN_FILE)
    if not os.path.islink(path):  # never the time of a file a link leads to
        touch(path)


def write_shot_file(shot_dir: str, description: dict[str, Any]) -> None:
    """Write `shot.json` once (what the shot folder holds), for people browsing the cache."""
    path = os.path.join(shot_dir, SHOT_FILE)
    if os.path.isfile(path):
        return
    text = json.dumps(description, indent=2, sort_keys=True) + "\n"
    try:
        atomic_write_text(path, text)
    except OutputError:
        pass  # purely informative
