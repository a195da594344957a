"""Which engine workers this machine's hosts started, so a crashed host's worker is found.

Each client writes one small record per worker it starts (host pid, worker pid, and both
processes' start times) into a per-user folder in the temp directory. When a client starts
a worker it first looks at the records: a worker whose host process is gone is killed (its
start time must match, so a reused pid is never touched) and its record removed. Workers
also stop by themselves when their stdin closes; this catches the ones that cannot see it.
Standard library only.
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
    fs.make_folder(folder)
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


def clean_stale_workers() -> List[int]:
    """Kill the workers whose host process is gone; returns their pids."""
    folder = registry_dir()
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    killed = []
    for name in names:
        if not (name.startswith("host-") and name.endswith(".json")):
            continue
        path = os.path.join(folder, name)
        data = _read(path)
        host, worker = int(data.get("host_pid") or 0), int(data.get("worker_pid") or 0)
        worker_alive = bool(worker) and _alive(worker, data.get("worker_start"))
        if worker_alive and host and _alive(host, data.get("host_start")):
            continue
        if not worker_alive:
            forget_worker(path)
            continue
        if hasattr(signal, "SIGKILL"):
            try:
                os.kill(worker, signal.SIGKILL)
                killed.append(worker)
            except OSError:
                pass
        forget_worker(path)
    return killed
