"""The one module in core that writes, renames, links and deletes files.

Every change vrmbg makes on disk goes through here, so the rules live in one place:

- Atomic writes: a reader (a Nuke Read node, a farm job on shared storage) sees either the old
  file or the complete new one, never a partial file.
- Temp files carry an exact name (`temp_path_for`), and only names of exactly that form are
  ever swept (`is_temp_name`).
- Deletes never follow a symlink: a symlinked folder is unlinked, never emptied.

The writer fills a temp file in the destination folder (same file system, so the final
`os.replace` is an atomic rename) whose name keeps the destination's extension, so
OpenImageIO picks the same format. The temp name starts with a dot and carries `.vrmbg-tmp-`,
so sequence discovery never mistakes it for a frame.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
import uuid
from typing import Callable, Iterator

from .errors import NoSpaceError, OutputError

TEMP_MARKER = ".vrmbg-tmp-"
LOW_SPACE_BYTES = 1 << 20  # below this much room a failed write is reported as a full disk


# `.{stem}.vrmbg-tmp-h{host 8 hex}-{pid}-{8 hex}{ext}` (older releases: without the host
# part): the only names `remove_temp_files` and `remove_stale_temp_files` delete.
_TEMP_NAME = re.compile(r"^\..+" + re.escape(TEMP_MARKER)
                        + r"(?:h[0-9a-f]{8}-)?[0-9]+-[0-9a-f]{8}(\.[A-Za-z0-9]+)?$")


def host_tag() -> str:
    """This machine's short tag in temp names, so a sweep can tell its own dead writers'
    leftovers (safe to delete at once) from another host's (whose pid means nothing here)."""
    digest = hashlib.sha1(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()
    return "h" + digest[:8]


def temp_path_for(path: str) -> str:
    """A unique temp file name beside `path` with the same extension."""
    folder, name = os.path.split(os.fspath(path))
    stem, ext = os.path.splitext(name)
    unique = f"{host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return os.path.join(folder, f".{stem}{TEMP_MARKER}{unique}{ext}")


def is_temp_name(name: str) -> bool:
    """True only for a name `temp_path_for` makes (a killed process's leftover)."""
    return bool(_TEMP_NAME.match(name))


def remove_temp_files(folder: str) -> int:
    """Delete the temp files a killed process left in `folder`; returns how many.

    Only regular files whose name has exactly the form `temp_path_for` makes are removed;
    a name that merely contains the marker is someone else's file.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    removed = 0
    for name in names:
        path = os.path.join(folder, name)
        if is_temp_name(name) and os.path.isfile(path) and not os.path.islink(path):
            removed += remove_file(path)
    return removed


def make_folder(path: str) -> None:
    """Create `path` and its missing parents (no error when it exists)."""
    os.makedirs(path, exist_ok=True)


def remove_file(path: str) -> bool:
    """Delete one file (or symlink, never its target) if present; True when removed."""
    try:
        os.remove(path)
        return True
    except OSError:
        return False


def remove_empty_folder(path: str) -> bool:
    """Remove `path` if it is an empty folder; True when removed."""
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False


def remove_tree(path: str) -> None:
    """Delete a folder and what it holds; a symlink is unlinked, never followed."""
    if os.path.islink(path):
        remove_file(path)
        return
    shutil.rmtree(path, ignore_errors=True)


def rename(source: str, target: str) -> None:
    """Rename `source` to `target` atomically (same file system); OSError when it cannot."""
    os.rename(source, target)


def replace(source: str, target: str) -> None:
    """Move `source` over `target` atomically (same file system); OSError when it cannot."""
    os.replace(source, target)


def copy_file(source: str, target: str) -> None:
    """Copy a file with its times and mode, making the target's folder."""
    make_folder(os.path.dirname(target) or ".")
    shutil.copy2(source, target)


def link_over(source: str, target: str) -> bool:
    """Make `target` a hard link to `source`, atomically replacing what it was; False (and
    `target` untouched) where links cannot be made (another file system, SMB)."""
    try:
        if os.path.lexists(target) and os.path.samefile(source, target):
            return True
    except OSError:
        return False
    tmp = temp_path_for(target)
    try:
        os.link(source, tmp)
        os.replace(tmp, target)
        return True
    except OSError:
        remove_file(tmp)
        return False


@contextlib.contextmanager
def scratch_folder(prefix: str, folder: str | None = None) -> Iterator[str]:
    """A fresh folder (in `folder`, else the system temp folder) removed on exit."""
    path = tempfile.mkdtemp(prefix=prefix, dir=folder)
    try:
        yield path
    finally:
        remove_tree(path)


@contextlib.contextmanager
def scratch_file(prefix: str, suffix: str) -> Iterator[str]:
    """A fresh empty file in the system temp folder, removed on exit."""
    handle, path = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    os.close(handle)
    try:
        yield path
    finally:
        remove_file(path)


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call `write(tmp)` to fill a temp file, fsync it and rename it over `path`.

    Missing parent folders are created. On any error (KeyboardInterrupt included) the temp
    file is removed and the error propagates; OS errors of this function itself become
    OutputError naming `path`.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder ({exc.strerror})", path=path) from None
    tmp = temp_path_for(path)
    try:
        write(tmp)
        if not os.path.isfile(tmp):
            raise OutputError("the writer produced no file", path=path)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        full = disk_full_error(path, "write", code=exc.errno, reason=str(exc))
        remove_file(tmp)
        raise full or OutputError(f"cannot write ({exc.strerror or exc})", path=path) from None
    except BaseException:
        remove_file(tmp)
        raise
    _fsync_folder(folder)


def atomic_write_text(path: str, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically (config, JSON and card files)."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    atomic_write(path, write)


def disk_full_error(path: str, what: str, *, code: int | None = None, reason: str = "",
                    check_free: bool = True) -> OutputError | None:
    """An OutputError saying the disk is full (or the quota used up) when that is why writing
    `path` failed; None when it is not.

    `code` is the failure's errno when known: ENOSPC/EDQUOT decide, any other errno (a
    read-only or forbidden folder) is not a full disk. Writers that give no errno say it in
    their own words ("Failed OpenEXR write", "65536 requested and 14272 written"), so then a
    "no space" in `reason`, or less than 1 MiB left where `path` lives (`check_free`), tells.
    Call it before the temp file is removed: its partial bytes are part of what ran out.
    """
    if code == errno.EDQUOT:
        return NoSpaceError(f"cannot {what}: disk quota exceeded", path=path,
                           hint="free some space or write elsewhere")
    full = code == errno.ENOSPC or "no space" in reason.lower()
    if not full and code is None and check_free:
        try:
            free = shutil.disk_usage(os.path.dirname(os.path.abspath(path)) or ".").free
        except OSError:
            return None
        full = free < LOW_SPACE_BYTES
    if not full:
        return None
    return NoSpaceError(f"cannot {what}: no space left on the device", path=path,
                       hint="free some space or write elsewhere")


def _fsync_file(path: str) -> None:
    """Flush a file's data to the storage device."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: str) -> None:
    """Flush the rename itself (POSIX only; best effort, some file systems refuse)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def touch(path: str) -> bool:
    """Set an existing file's modification time to now; False when it cannot (missing)."""
    try:
        os.utime(path)
        return True
    except OSError:
        return False


def remove_path(path: str) -> None:
    """Delete what `path` names if anything: a file, a link (never its target) or a folder
    with what it holds; OSError when it cannot (unlike `remove_file` / `remove_tree`)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def append_text(path: str, text: str) -> None:
    """Append UTF-8 `text` to a file another program owns (made, with its folder, when
    missing); not atomic, so only for adding whole lines. OSError when it cannot."""
    make_folder(os.path.dirname(path) or ".")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def open_lock_file(path: str) -> int:
    """Open `path` for an advisory lock, creating it (empty) and its folder when missing;
    returns the file descriptor (the caller locks and closes it). Never through a symbolic
    link: where `path` is a link (to a file or to nothing) the open fails (OSError, ELOOP
    on Linux) and nothing is created."""
    make_folder(os.path.dirname(path) or ".")
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)


# A temp file of another host (or of an older release, whose names carry no host) that is
# unchanged this long is a killed writer's.
STALE_TEMP_SECONDS = 120.0
_TEMP_PID = re.compile(re.escape(TEMP_MARKER)
                       + r"(?:(h[0-9a-f]{8})-)?([0-9]+)-[0-9a-f]{8}(\.[A-Za-z0-9]+)?$")


def remove_stale_temp_files(folder: str, min_age: float = STALE_TEMP_SECONDS) -> int:
    """Delete the temp files killed writers left in a folder that other writers may be
    filling at the same time (an output folder that several renders, on several hosts,
    write into at once); returns how many.

    As `remove_temp_files`: only regular files (never a link or a folder) named exactly as
    `temp_path_for` names them. And only those no writer can still be filling: one of this
    host whose process is gone (the name carries host and pid) goes at once, so a re-run
    right after a killed render leaves nothing behind; one of another host (or an unnamed
    host) only when unchanged for `min_age` seconds (a live writer changes its temp file
    as it fills it and renames it within moments).
    """
    import stat
    import time

    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    now, here = time.time(), host_tag()
    removed = 0
    for name in names:
        match = _TEMP_PID.search(name)
        if not is_temp_name(name) or match is None:
            continue
        host, pid = match.group(1), int(match.group(2))
        if host in (None, here) and _process_alive(pid):
            continue
        path = os.path.join(folder, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and (host == here or now - info.st_mtime >= min_age):
            removed += remove_file(path)
    return removed


def _process_alive(pid: int) -> bool:
    """True when `pid` is a process of this host (any user's), or cannot be told."""
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True
