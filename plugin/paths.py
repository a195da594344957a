"""Where vrmbg's files are: the cache root, and the file of a frame in a `####` pattern.

The engine and the hosts must agree on both: the engine writes its cache under the root and
answers with `####` patterns of the mattes it wrote; a host renders its input beside that
cache and reads each matte frame from the pattern.

A host's cache folder follows one rule in Nuke and Blender (`host_cache_root`): the node's own
setting, else $VRMBG_CACHE, else `vrmbg-cache` beside the saved script or .blend (so farm
tasks continue from the artist's frames), else the user cache for a file never saved. When
such a file is first saved, its shots' folders move from the user cache to the new root
(`adopt_unsaved_cache`), so nothing computed before the save is computed again.
Standard library only.
"""

from __future__ import annotations

import errno
import filecmp
import os
import re
from typing import Iterable, List, Mapping, Optional, Tuple

from . import fs
from .formats import is_movie

CACHE_VARIABLE = "VRMBG_CACHE"
HOST_CACHE_FOLDER = "vrmbg-cache"  # beside the saved script or .blend
# The hosts' own folders in a cache root, beside the engine's shot folders: the Nuke node's
# rendered inputs and keyframes, the Blender add-on's keyframes.
NUKE_INPUT_FOLDER = "nuke-input"
NUKE_KEYS_FOLDER = "nuke-keys"
BLENDER_KEYS_FOLDER = "blender-keys"
HOST_FOLDERS = (NUKE_INPUT_FOLDER, NUKE_KEYS_FOLDER, BLENDER_KEYS_FOLDER)
CHAIN_LOCK_FILE = "chain.lock"  # held (flock) by the process computing a chain's frames
ADOPT_TEMP = ".vrmbg-adopt-"  # a copy across devices, before it is verified and renamed
_FRAME_IN_NAME = re.compile(r"^(.*?)(\d+)(\.[^.\d][^.]*)$")
_FRAME_TOKEN = re.compile(r"(#+|%0?\d*d|@+|\$F\d*)$")  # at the end of a sequence's stem


def default_cache_root(explicit: str = "", environ: Optional[Mapping[str, str]] = None) -> str:
    """Where the cache lives: explicit > $VRMBG_CACHE > $XDG_CACHE_HOME/vrmbg > ~/.cache/vrmbg."""
    env = os.environ if environ is None else environ
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    variable = env.get(CACHE_VARIABLE, "")
    if variable:
        return os.path.abspath(os.path.expanduser(variable))
    xdg = env.get("XDG_CACHE_HOME", "")
    base = xdg if xdg and os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vrmbg")


def host_cache_root(setting: str, saved_file: str,
                    environ: Optional[Mapping[str, str]] = None) -> str:
    """The cache folder of a matte in a host (Nuke and Blender alike).

    The node's own setting when it is not empty (the host has already made its own relative
    forms absolute, such as Blender's `//`), else $VRMBG_CACHE, else `vrmbg-cache` beside the
    saved script or .blend `saved_file`, else (a file never saved: `saved_file` is "") the
    user cache. Beside the file is the default so that a farm task, on any machine, continues
    from the frames the artist computed. Whether the folder may be a cache at all is
    `cache_root_problem`'s to say.
    """
    env = os.environ if environ is None else environ
    if setting.strip():
        return os.path.abspath(os.path.expanduser(setting))
    variable = env.get(CACHE_VARIABLE, "")
    if variable:
        return os.path.abspath(os.path.expanduser(variable))
    if saved_file:
        folder = os.path.dirname(os.path.abspath(os.path.expanduser(saved_file)))
        return os.path.join(folder, HOST_CACHE_FOLDER)
    return default_cache_root("", env)


def adopt_unsaved_cache(user_root: str, saved_root: str,
                        session_folders: Iterable[str]) -> List[str]:
    """Move an unsaved file's cache folders into the cache of the file now saved.

    `session_folders` are folders relative to the cache root, as the engine names them (a
    shot's folder: the `shot_folder` of the worker's `opened` answer; Nuke's rendered inputs
    under `nuke-input/`). Each moves from `user_root` to the same place under `saved_root`:
    by a rename on the same device, else by a copy that is compared byte for byte before the
    original is deleted. So the frames computed before the first save stay valid (a chain's
    keys do not depend on where its cache is) and are not computed again.

    Never overwrites a folder already at the new place, never goes through a symbolic link
    (a linked folder is left where it is; links inside are moved, never followed, or left out
    of a copy), leaves alone a folder holding a chain that a process is computing, and moves
    nothing into a folder that must not be a cache (`cache_root_problem`). Returns the folders
    moved, in the order given.
    """
    if not saved_root or cache_root_problem(saved_root) or _same_folder(user_root, saved_root):
        return []
    moved: List[str] = []
    for name in dict.fromkeys(session_folders):
        relative = _relative_folder(name)
        if not relative or relative in moved:
            continue
        source = os.path.join(user_root, relative)
        target = os.path.join(saved_root, relative)
        if _linked_below(user_root, relative) or _linked_below(saved_root, relative) \
                or not os.path.isdir(source) or os.path.lexists(target):
            continue
        if _adopt_folder(source, target):
            moved.append(relative)
    return moved


def _same_folder(one: str, two: str) -> bool:
    return os.path.realpath(one) == os.path.realpath(two)


def _relative_folder(name: str) -> str:
    """`name` as a folder inside a cache root ("" for one that is absolute, empty or
    reaches out with `..`)."""
    text = str(name or "").strip()
    if not text or os.path.isabs(text):
        return ""
    relative = os.path.normpath(text)
    parts = relative.split(os.sep)
    if relative in (".", "") or ".." in parts:
        return ""
    return relative


def _linked_below(root: str, relative: str) -> bool:
    """True when a folder from `root` (excluded) down to `root/relative` is a link."""
    path = root
    for part in relative.split(os.sep):
        path = os.path.join(path, part)
        if os.path.islink(path):
            return True
    return False


def _adopt_folder(source: str, target: str) -> bool:
    """Move one folder (its chains locked against a process computing them meanwhile)."""
    locks = _lock_chains(source)
    if locks is None:
        return False
    try:
        fs.make_folder(os.path.dirname(target))
        try:
            fs.rename(source, target)
            return True
        except OSError as error:
            if error.errno != errno.EXDEV:
                return False
        return _copy_verified(source, target)
    finally:
        for handle in locks:
            os.close(handle)  # closing the file releases its lock


def _lock_chains(folder: str) -> Optional[List[int]]:
    """Lock every chain in `folder` (None, with nothing held, when one is being computed or
    its lock file is a link)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks here: nothing computes through them either
        return []
    held: List[int] = []
    for where, folders, files in os.walk(folder, followlinks=False):
        if CHAIN_LOCK_FILE not in files:
            continue
        try:
            handle = os.open(os.path.join(where, CHAIN_LOCK_FILE),
                             os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            handle = -1
        if handle >= 0:
            held.append(handle)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                continue
            except OSError:
                pass
        for each in held:
            os.close(each)
        return None
    return held


def _copy_verified(source: str, target: str) -> bool:
    """Copy `source` to `target` on another device: into a temp folder beside `target`, every
    file compared byte for byte, renamed into place, then `source` deleted."""
    temp = os.path.join(os.path.dirname(target),
                        f".{os.path.basename(target)}{ADOPT_TEMP}{os.getpid()}")
    try:
        if os.path.lexists(temp):
            fs.remove_tree(temp)
        pairs = _copy_tree(source, temp)
        if not all(filecmp.cmp(a, b, shallow=False) for a, b in pairs):
            raise OSError(errno.EIO, "the copy differs from its original", temp)
        fs.rename(temp, target)
    except OSError:
        if os.path.lexists(temp):
            try:
                fs.remove_tree(temp)
            except OSError:
                pass
        return False
    try:
        fs.remove_tree(source)
    except OSError:
        pass  # the frames are safe in their new place; the old copy is only litter
    return True


def _copy_tree(source: str, target: str) -> List[tuple]:
    """Copy the folders and regular files under `source` (never a link); (original, copy)
    of each file."""
    pairs = []
    fs.make_folder(target)
    for where, folders, files in os.walk(source, followlinks=False):
        into = os.path.join(target, os.path.relpath(where, source))
        for name in folders:
            if not os.path.islink(os.path.join(where, name)):
                fs.make_folder(os.path.join(into, name))
        for name in files:
            original = os.path.join(where, name)
            if os.path.islink(original) or not os.path.isfile(original):
                continue
            fs.copy_file(original, os.path.join(into, name))
            pairs.append((original, os.path.join(into, name)))
    return pairs


def cache_root_problem(root: str) -> str:
    """Why `root` must never be a cache folder ("" when it may be): a file-system root or
    the home folder, whose contents vrmbg's cache commands must never walk or prune."""
    real = os.path.realpath(root)
    if os.path.dirname(real) == real:
        return "the file-system root cannot be the cache folder"
    if real in home_folders():
        return "the home folder cannot be the cache folder"
    return ""


def home_folders() -> set:
    """The user's home folder, as $HOME and as the password database say."""
    homes = {os.path.realpath(os.path.expanduser("~"))}
    try:
        import pwd
        homes.add(os.path.realpath(pwd.getpwuid(os.getuid()).pw_dir))
    except (ImportError, KeyError, AttributeError, OSError):
        pass
    return homes


def frame_file(pattern: str, frame: int) -> str:
    """The file of `frame` in a `####` pattern (padding = the number of #, sign included,
    as the engine writes it: frame -12 of `####` is `-012`)."""
    folder, name = os.path.split(pattern)
    match = re.search(r"#+", name)
    if not match:
        return pattern
    number = "%0*d" % (len(match.group(0)), frame)
    return os.path.join(folder, name[:match.start()] + number + name[match.end():])


_ANY_FRAME_TOKEN = re.compile(r"#+|%0?\d*d|@+|\$F\d*")


def sequence_files(pattern: str) -> Tuple[Tuple[str, int, int], ...]:
    """(name, size, mtime in ns) of each file of the image sequence `pattern` (`####`, `%04d`,
    `@@@@`, `$F4`) on disk now, sorted: what a host folds into its session key so that a
    keyframe added, changed or removed there opens the matte again. One folder listing."""
    folder, name = os.path.split(os.path.abspath(os.path.expanduser(pattern)))
    token = _ANY_FRAME_TOKEN.search(name)
    if not name or token is None:
        return ()
    wanted = re.compile(re.escape(name[:token.start()]) + r"-?\d+" + re.escape(name[token.end():]) + "$")
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if wanted.match(entry.name) and entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    found.append((entry.name, info.st_size, info.st_mtime_ns))
    except OSError:
        return ()
    return tuple(sorted(found))


def sequence_pattern(path: str) -> str:
    """The `####` pattern of the sequence that frame file `path` belongs to.

    'shot.1003.exr' -> 'shot.####.exr'; a name that is already a pattern ('####', '%04d')
    or has no frame number is returned unchanged.
    """
    folder, name = os.path.split(path)
    if "#" in name or "%" in name:
        return path
    match = _FRAME_IN_NAME.match(name)
    if not match:
        return path
    stem, digits, extension = match.groups()
    return os.path.join(folder, stem + "#" * len(digits) + extension)


def shot_name(path: str) -> str:
    """What a plate is called in a host's names: 'sh010' for sh010.1001.exr,
    sh010.####.exr or sh010_%04d.exr; 'sh030' for sh030.mov."""
    name = os.path.basename(path)
    if is_movie(path):
        return os.path.splitext(name)[0]
    stem = os.path.basename(sequence_pattern(path)).split(".")[0]
    return _FRAME_TOKEN.sub("", stem).rstrip("_-. ") or name
