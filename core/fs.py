"""Atomic file writes: a reader (a Nuke Read node, a farm job on shared storage) sees either
the old file or the complete new one, never a partial file.

The writer fills a temp file in the destination folder (same file system, so the final
`os.replace` is an atomic rename) whose name keeps the destination's extension, so
OpenImageIO picks the same format. The temp name starts with a dot and carries `.vrmbg-tmp-`,
so sequence discovery never mistakes it for a frame.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from typing import Callable

from .errors import OutputError

TEMP_MARKER = ".vrmbg-tmp-"
LOW_SPACE_BYTES = 1 << 20  # below this much room a failed write is reported as a full disk


def temp_path_for(path: str) -> str:
    """A unique temp file name beside `path` with the same extension."""
    folder, name = os.path.split(os.fspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}{ext}")


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
        _remove_quietly(tmp)
        raise full or OutputError(f"cannot write ({exc.strerror or exc})", path=path) from None
    except BaseException:
        _remove_quietly(tmp)
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
        return OutputError(f"cannot {what}: disk quota exceeded", path=path,
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
    return OutputError(f"cannot {what}: no space left on the device", path=path,
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


def _remove_quietly(path: str) -> None:
    """Delete `path` if it exists, ignoring errors (used while another error propagates)."""
    try:
        os.remove(path)
    except OSError:
        pass
