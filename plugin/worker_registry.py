"""Which engine workers this machine's hosts started, so a crashed host's worker is found.

Each client writes one small record per worker it starts (host pid, worker pid, and both
processes' start times) into a per-user folder in the temp directory. When a client starts
a worker it first looks at the records: a worker whose host process is gone is killed and
its record removed. Workers also stop by themselves when their stdin closes; this catches
the ones that cannot see it. Standard library only.

A kill is the one thing here that can hurt someone else, so before any kill: the folder
and the record belong to this user (not symlinks, not writable by others), and the process
is this user's, was started when the record says (a reused pid is never touched), and runs
`vrmbg worker` by its command line. Anything else is left alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

from . import fs


def my_uid() -> int:
    """This user's id (-1 where the system has none); a seam for tests."""
    return os.getuid() if hasattr(os, "getuid") else -1


def _ours(path: str, folder: bool) -> bool:
    """`path` is this user's own folder or file: not a symlink, owned by this user, and for
    a folder not writable by others, who could otherwise plant records in it (on systems
    without user ids: any existing path of that kind)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    import stat

    kind = stat.S_ISDIR(info.st_mode) if folder else stat.S_ISREG(info.st_mode)
    if not kind:
        return False
    if my_uid() < 0:
        return True
    shared = folder and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return info.st_uid == my_uid() and not shared


def process_owner(pid: int) -> Optional[int]:
    """The user id a process runs as, or None when it cannot be told."""
    if sys.platform.startswith("linux"):
        try:
            return os.stat(f"/proc/{pid}").st_uid
        except OSError:
            return None
    if os.name == "posix":
        try:
            out = subprocess.run(["ps", "-o", "uid=", "-p", str(pid)], capture_output=True,
                                 text=True, timeout=5)
            return int(out.stdout.strip())
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
    return None


def process_arguments(pid: int) -> List[str]:
    """A process's command line as words ([] when it cannot be read)."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                raw = handle.read()
        except OSError:
            return []
        return [w.decode("utf-8", "replace") for w in raw.split(b"\0") if w]
    if os.name == "posix":
        try:
            out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True,
                                 text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return []
        return out.stdout.split()
    return []


def is_vrmbg_worker(pid: int) -> bool:
    """The process runs `vrmbg worker` (`python -m vrmbg.core worker ...` or the `vrmbg`
    script's `worker` command)."""
    words = process_arguments(pid)
    for first, second in zip(words, words[1:]):
        if second == "worker" and (first == "vrmbg.core" or os.path.basename(first) == "vrmbg"):
            return True
    return False


def registry_dir() -> str:
    """The per-user folder of worker records."""
    user = str(os.getuid()) if hasattr(os, "getuid") else (os.environ.get("USERNAME") or "user")
    return os.path.join(tempfile.gettempdir(), f"vrmbg-workers-{user}")


def process_start(pid: int) -> Optional[str]:
    """A text that identifies a running process across pid reuse (its start time), or None
    when the process is not running or cannot be identified on this system."""
    if pid <= 0:
        return None
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read().decode("ascii", "replace")
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[-1].split()
        return fields[19] if len(fields) > 19 else None
    if os.name == "posix":
        try:
            out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True,
                                 text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() or None
    return None  # elsewhere: never kill, rely on the worker seeing its stdin close


def record_worker(worker_pid: int) -> str:
    """Note that this process started `worker_pid`; returns the record's path."""
    folder = registry_dir()
    fs.make_folder(folder, private=True)
    host = os.getpid()
    path = os.path.join(folder, f"host-{host}-worker-{worker_pid}.json")
    data = {"host_pid": host, "host_start": process_start(host),
            "worker_pid": worker_pid, "worker_start": process_start(worker_pid)}
    return fs.write_json(path, data)


def forget_worker(path: str) -> None:
    """Remove a worker's record (it has stopped)."""
    fs.remove_file(path)


def _read(path: str) -> Dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _alive(pid: int, start: Optional[str]) -> bool:
    """The process with this pid and start time still runs."""
    return start is not None and process_start(pid) == start


def _may_kill(pid: int) -> bool:
    """The process is this user's vrmbg worker (its start time was checked by the caller)."""
    return my_uid() >= 0 and process_owner(pid) == my_uid() and is_vrmbg_worker(pid)


def clean_stale_workers() -> List[int]:
    """Kill this user's workers whose host process is gone; returns their pids."""
    folder = registry_dir()
    if not _ours(folder, folder=True):
        return []  # someone else's folder (or a link to one): read nothing from it
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    killed = []
    for name in names:
        if not (name.startswith("host-") and name.endswith(".json")):
            continue
        path = os.path.join(folder, name)
        if not _ours(path, folder=False):
            continue
        data = _read(path)
        try:
            host, worker = int(data.get("host_pid") or 0), int(data.get("worker_pid") or 0)
        except (TypeError, ValueError):
            continue
        worker_alive = worker > 0 and _alive(worker, data.get("worker_start"))
        if worker_alive and host > 0 and _alive(host, data.get("host_start")):
            continue
        if not worker_alive:
            forget_worker(path)
            continue
        if not _may_kill(worker):
            forget_worker(path)  # a stranger: the record is wrong, the process is not ours
            continue
        if hasattr(signal, "SIGKILL"):
            try:
                os.kill(worker, signal.SIGKILL)
                killed.append(worker)
            except OSError:
                pass
        forget_worker(path)
    return killed
