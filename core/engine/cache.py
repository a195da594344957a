"""The temporal cache on disk: folder layout, per-chain lock, lossless state files, housekeeping.

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
that key. The matte is written before the state, so a crash between the two leaves a frame that
is simply recomputed. Temp files (`.vrmbg-tmp-` in the name) left by a killed process are
never read and are swept by the next process that takes the chain's lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

if TYPE_CHECKING:
    import torch

from ..fs import TEMP_MARKER, atomic_write, atomic_write_text
from ..errors import OutputError, UsageError, library_text
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

try:  # POSIX advisory locks (local disks, and NFSv4 where flock maps to byte-range locks)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt


# --------------------------------------------------------------------------- cache root

RENDER_CACHE_FOLDER = ".vrmbg-cache"  # a render's cache, beside its output


def default_cache_root(explicit: str = "") -> str:
    """Where the cache lives: explicit > $VRMBG_CACHE > $XDG_CACHE_HOME/vrmbg > ~/.cache/vrmbg."""
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    env = os.environ.get("VRMBG_CACHE", "")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if xdg and os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vrmbg")


def plate_source(plates: Any) -> str:
    """The plate's canonical location: real folder + pattern with a `#` token, or movie path.

    Spellings of one sequence (`####`, `%04d`, `@@@@`, `$F4`, and `###` or `#` matching the
    same 4-digit files, a symlinked folder) give the same text, so they share one cache.
    """
    pattern = getattr(plates, "pattern", None)
    if getattr(pattern, "is_sequence", False):
        folder = os.path.realpath(pattern.folder or ".")
        token = "#" * _file_padding(plates, int(pattern.padding))
        return os.path.join(folder, f"{pattern.prefix}{token}{pattern.tail}")
    text = getattr(pattern, "pattern", None) or getattr(plates, "path", None)
    if text is None and isinstance(pattern, str):
        text = pattern
    return os.path.realpath(str(text)) if text else repr(plates)


def _file_padding(plates: Any, padding: int) -> int:
    """The padding the files on disk actually have: a `#` or `###` token matches 4-digit
    files too (frame numbers are never cut), so the first frame's digits count as well."""
    first = getattr(plates, "first_frame", None)
    if first is None:
        return max(1, padding)
    return max(1, padding, len(format_frame(int(first), max(1, padding))))


def plate_part(plates: Any) -> str:
    """The EXR part a plate sequence reads, by name ("" for single-part files and movies).

    `--part 1`, `--part beauty` and no `--part` at all name one part when they select the
    same one, so they are one shot; the name comes from the first frame's header.
    """
    if not getattr(plates, "part", "") and not hasattr(plates, "path_for"):
        return ""
    try:
        info = plates.info(plates.first_frame)
    except Exception:  # unreadable here: the render reports it when it reads the frame
        return str(getattr(plates, "part", "") or "")
    parts = tuple(getattr(info, "parts", ()) or ())
    if len(parts) <= 1:
        return ""
    return str(parts[int(getattr(info, "part_index", 0) or 0)])


_CONTENT_IDS: dict[tuple, str] = {}  # (path, inode, size, mtime) -> content id, per process


def plate_content_id(plates: Any, frame: int) -> str:
    """Identity of the pictures in one plate frame: a hash of its file's bytes (of its
    decoded pixels for a movie), 16 hex characters.

    Where the plates are mounted and how the pattern is spelled do not enter it, so a farm
    node reading the same files through another mount recognises them; a v001 and a v002
    folder with the same file names but other pictures never match.
    """
    path_for = getattr(plates, "path_for", None)
    if path_for is None:
        return hashlib.sha256(plates.fingerprint(frame, content=True).encode()).hexdigest()[:16]
    path = path_for(frame)
    try:
        stat = os.stat(path)
        memo = (os.path.realpath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    except OSError:
        memo = None
    found = _CONTENT_IDS.get(memo) if memo else None
    if found is None:
        found = hashlib.sha256(plates.fingerprint(frame, content=True).encode()).hexdigest()[:16]
        if memo:
            _CONTENT_IDS[memo] = found
    return found


def plate_name(plates: Any) -> str:
    """A file-name friendly shot name from the plate pattern (`sh010` for sh010.####.exr)."""
    pattern = getattr(plates, "pattern", None)
    prefix = getattr(pattern, "prefix", None)
    if prefix is None:
        prefix = os.path.splitext(os.path.basename(plate_source(plates)))[0]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", prefix).strip("._-")
    return name or "matte"


def shot_id(plates: Any, layer: str = "", part: str = "") -> str:
    """Folder name of a shot: its name plus a short hash of its path and channel selection."""
    digest = hashlib.sha256("\0".join((plate_source(plates), layer, part)).encode()).hexdigest()
    return f"{plate_name(plates)}-{digest[:8]}"


# --------------------------------------------------------------------------- lock

class ChainLock:
    """An exclusive advisory lock on a chain (a lock file in the chain folder).

    Held while a process computes and writes frames of the chain; readers of finished frames
    never need it. A process killed while holding it releases it (the kernel closes the file).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits."""
        if self._fd is not None:
            return True
        while True:
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise OutputError(f"cannot use the cache folder ({exc.strerror or exc})",
                                  path=os.path.dirname(self.path),
                                  hint="check --cache-dir / $VRMBG_CACHE") from None
            if not _lock_fd(fd):
                os.close(fd)
                return False
            if _same_file(self.path, fd):
                self._fd = fd
                return True
            os.close(fd)  # the chain was removed under us (prune): lock the new file

    def acquire(self, *, poll: float = 0.1, stop: Callable[[], bool] | None = None) -> bool:
        """Wait for the lock; returns False as soon as `stop()` is true while waiting."""
        while not self.try_acquire():
            if stop is not None and stop():
                return False
            time.sleep(poll)
        return True

    def release(self) -> None:
        """Give the lock back (closing the file releases it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _lock_fd(fd: int) -> bool:
    """Non-blocking exclusive lock of an open file; False when someone else holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _same_file(path: str, fd: int) -> bool:
    """True when `path` still names the open file `fd`."""
    try:
        on_disk, opened = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (on_disk.st_ino, on_disk.st_dev) == (opened.st_ino, opened.st_dev)


def is_locked(chain_dir: str) -> bool:
    """True when a running process holds the chain's lock."""
    path = os.path.join(chain_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        return not _lock_fd(fd)
    finally:
        os.close(fd)


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
                _remove(entry.path)
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

    # ----------------------------------------------------------------- housekeeping

    def ensure_folders(self, description: dict[str, Any]) -> None:
        """Create the chain folders and its chain.json (once); needs the lock held."""
        for folder in (self.matte_dir, self.state_dir):
            os.makedirs(folder, exist_ok=True)
        path = os.path.join(self.folder, CHAIN_FILE)
        if not os.path.isfile(path):
            text = json.dumps(description, indent=2, sort_keys=True, default=str) + "\n"
            atomic_write_text(path, text)

    def touch(self) -> None:
        """Mark the chain as just used (its chain.json mtime orders `cache prune`)."""
        touch_chain(self.folder)

    def sweep_temp_files(self) -> int:
        """Remove temp files left by killed processes; call only with the lock held."""
        removed = 0
        for folder in (self.folder, self.matte_dir, self.state_dir):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if TEMP_MARKER in name:
                    removed += _remove(os.path.join(folder, name))
        return removed


def touch_chain(folder: str) -> None:
    """Mark a chain folder as just used: `cache prune` removes least recently used chains
    first, and reading finished frames counts as use."""
    try:
        os.utime(os.path.join(folder, CHAIN_FILE))
    except OSError:
        pass


def _remove(path: str) -> int:
    """Delete a file if present; 1 when removed."""
    try:
        os.remove(path)
        return 1
    except OSError:
        return 0


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


# --------------------------------------------------------------------------- whole cache

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
        from ..io.frames import format_frame_ranges
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


def iter_chain_dirs(root: str) -> Iterator[tuple[str, str, str]]:
    """(shot id, tier, chain folder) of every chain under `root` (UsageError for a root
    that is a file or cannot be read; nothing for one that does not exist yet)."""
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
        for tier in TIERS:
            tier_dir = os.path.join(root, shot, tier)
            try:
                chains = sorted(os.listdir(tier_dir))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for chain in chains:
                folder = os.path.join(tier_dir, chain)
                if os.path.isdir(folder) and not chain.startswith(".trash-"):
                    yield shot, tier, folder


def folder_size(folder: str) -> int:
    """Bytes of every file below `folder`."""
    total = 0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except OSError:
                pass
    return total


def _matte_frames(folder: str) -> list[int]:
    """Frame numbers of the mattes in a chain folder."""
    frames = []
    try:
        names = os.listdir(os.path.join(folder, MATTE_DIR))
    except FileNotFoundError:
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
    newest = 0.0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            try:
                newest = max(newest, os.lstat(os.path.join(base, name)).st_mtime)
            except OSError:
                pass
    return newest


def list_chains(root: str) -> list[ChainInfo]:
    """Every chain in the cache, least recently used first."""
    infos = [chain_info(shot, tier, folder) for shot, tier, folder in iter_chain_dirs(root)]
    return sorted(infos, key=lambda info: info.last_used)


def remove_chain(folder: str) -> bool:
    """Delete a chain folder unless a running process holds its lock; True when removed."""
    lock = ChainLock(os.path.join(folder, LOCK_FILE))
    if not os.path.isdir(folder) or not lock.try_acquire():
        return False
    trash = os.path.join(os.path.dirname(folder),
                         f".trash-{os.path.basename(folder)}-{os.getpid()}-{time.time_ns()}")
    try:
        os.rename(folder, trash)  # atomic: a render waiting for the lock starts afresh
    except OSError:
        lock.release()
        return False
    lock.release()
    shutil.rmtree(trash, ignore_errors=True)
    _remove_empty_parents(folder)
    return True


def _remove_empty_parents(folder: str) -> None:
    """Remove the tier and shot folders left empty (shot.json alone counts as empty)."""
    tier_dir = os.path.dirname(folder)
    shot_dir = os.path.dirname(tier_dir)
    try:
        os.rmdir(tier_dir)
    except OSError:
        return
    if any(os.path.isdir(os.path.join(shot_dir, tier)) for tier in TIERS):
        return
    _remove(os.path.join(shot_dir, SHOT_FILE))
    try:
        os.rmdir(shot_dir)
    except OSError:
        pass


def prune(root: str, max_bytes: int) -> tuple[list[ChainInfo], list[ChainInfo], int]:
    """Delete least-recently-used chains until the cache fits in `max_bytes`.

    Chains locked by a running render are never deleted. Returns (removed, kept busy, final
    size in bytes).
    """
    chains = list_chains(root)
    total = sum(info.size for info in chains)
    removed: list[ChainInfo] = []
    busy: list[ChainInfo] = []
    for info in chains:
        if total <= max_bytes:
            break
        if remove_chain(info.folder):
            removed.append(info)
            total -= info.size
        else:
            busy.append(info)
    return removed, busy, total


# --------------------------------------------------------------------------- matte stamps

def read_matte_stamp(path: str) -> dict[str, Any] | None:
    """The `vrmbg:*` attributes of a matte (key, start, tier, chain...), or None if unreadable.

    Only the header is read, so checking a cached frame costs about a millisecond.
    """
    import OpenImageIO as oiio

    if not os.path.isfile(path):
        return None
    image = oiio.ImageInput.open(path)
    if image is None:
        library_text(oiio.geterror)  # clear the global error message
        return None
    try:
        return {attr.name[len("vrmbg:"):]: attr.value for attr in image.spec().extra_attribs
                if attr.name.startswith("vrmbg:")}
    finally:
        image.close()
