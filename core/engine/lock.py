"""The per-chain lock: one process at a time computes and writes frames of a chain.

A chain's lock is an advisory `flock` on `chain.lock` in its folder (`cache.LOCK_FILE`);
readers of finished frames never need it, and a process killed while holding it releases it
(the kernel closes the file). `vrmbg cache clear|prune` take it too, so a chain in use is
never deleted. Kept apart from the cache layout because it is the one part of the cache
that is about processes rather than files.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from ..errors import OutputError
from ..fs import open_lock_file
from .cache import LOCK_FILE, guard_chain_folder

try:  # POSIX advisory locks (local disks, and NFSv4 where flock maps to byte-range locks)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt


class ChainLock:
    """An exclusive advisory lock on a chain (a lock file in the chain folder).

    Held while a process computes and writes frames of the chain; readers of finished frames
    never need it. A process killed while holding it releases it (the kernel closes the file).
    """

    def __init__(self, path: str, *, mark_root: bool = True) -> None:
        """`mark_root`: the lock is taken to compute, so a chain laid out in a cache root
        marks that root as a vrmbg cache (`cache.guard_chain_folder`); False to delete."""
        self.path = path
        self.mark_root = mark_root
        self._fd: int | None = None
        self._marked = False

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits.

        OutputError when the chain folder (or its tier or shot folder) or the lock file is a
        symbolic link: nothing is created through one.
        """
        if self._fd is not None:
            return True
        guard_chain_folder(os.path.dirname(os.path.abspath(self.path)),
                           mark=self.mark_root and not self._marked)
        self._marked = True
        while True:
            if os.path.islink(self.path):
                raise _linked_lock(self.path)
            try:
                fd = open_lock_file(self.path)
            except OSError as exc:
                if os.path.islink(self.path):
                    raise _linked_lock(self.path) from None
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


def _linked_lock(path: str) -> OutputError:
    """The error for a chain.lock that is a symbolic link (never vrmbg's own)."""
    return OutputError("the chain lock is a symbolic link: vrmbg never writes through one",
                       path=path, hint="remove the link")


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
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        return not _lock_fd(fd)
    finally:
        os.close(fd)
