"""Where vrmbg's files are: the cache root, and the file of a frame in a `####` pattern.

The engine and the hosts must agree on both: the engine writes its cache under the root and
answers with `####` patterns of the mattes it wrote; a host renders its input beside that
cache and reads each matte frame from the pattern. Standard library only.
"""

from __future__ import annotations

import os
import re
from typing import Mapping, Optional

CACHE_VARIABLE = "VRMBG_CACHE"
_FRAME_IN_NAME = re.compile(r"^(.*?)(\d+)(\.[^.\d][^.]*)$")


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
