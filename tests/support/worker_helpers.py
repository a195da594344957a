"""Driving a real `vrmbg worker` process line by line, for the worker tests and benchmarks.

`RawWorker` writes request lines (objects or raw bytes) and collects the event lines on a
reader thread, so a test can wait for the final event of one request and look at every event
in between.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any, Iterable

from render_helpers import clean_env

FINAL_TIMEOUT = 120.0


class RawWorker:
    """One worker process and everything it has said."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "vrmbg.core", "worker", *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env or clean_env())
        self.events: list[dict[str, Any]] = []
        self.lines: "queue.Queue[dict[str, Any] | None]" = queue.Queue()
        self.log: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_log, daemon=True).start()
        self._ids = 0
        self.ended = False  # stdout closed: no more events will come

    def _read(self) -> None:
        for raw in self.proc.stdout:
            event = json.loads(raw)  # every stdout line must be one JSON event
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def _read_log(self) -> None:
        for raw in self.proc.stderr:
            self.log.append(raw.decode("utf-8", "replace").rstrip())

    def write(self, data: bytes) -> None:
        """Send raw bytes (a line should end with a newline)."""
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, op: str, request_id: Any = None, **fields: Any) -> Any:
        """Send one request; returns its id."""
        if request_id is None:
            self._ids += 1
            request_id = f"t{self._ids}"
        self.write((json.dumps({"id": request_id, "op": op, **fields}) + "\n").encode())
        return request_id

    def final(self, request_id: Any, timeout: float = FINAL_TIMEOUT) -> dict[str, Any]:
        """The final event of a request (waiting for it)."""
        return self.wait_for(lambda e: e["id"] == request_id
                             and e["event"] not in ("progress", "frame"), timeout)

    def wait_for(self, match, timeout: float = FINAL_TIMEOUT) -> dict[str, Any]:
        """The first event (seen so far or coming) that `match` accepts."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if match(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    raise AssertionError(f"no matching event; log: {self.log[-5:]}; "
                                         f"events: {self.events[-5:]}")
                self._cond.wait(min(left, 0.2))

    def call(self, op: str, timeout: float = FINAL_TIMEOUT, **fields: Any) -> dict[str, Any]:
        """Send a request and return its final event."""
        return self.final(self.send(op, **fields), timeout)

    def of(self, request_id: Any, event: str | None = None) -> list[dict[str, Any]]:
        """Events of one request (of one kind), in order."""
        with self._cond:
            return [e for e in self.events if e["id"] == request_id
                    and (event is None or e["event"] == event)]

    def close(self, timeout: float = 30.0) -> int:
        """Close stdin and wait for the exit code."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def tiny_settings(model: str, cache: str, **extra: Any) -> dict[str, Any]:
    """Worker settings for the tiny test model on the CPU at a small inference size."""
    return {"model": model, "device": "cpu", "resolution": 64, "cache_dir": cache, **extra}


def opened(worker: RawWorker, plates: str, settings: dict[str, Any], **fields: Any) -> dict:
    """Open a session and demand success."""
    answer = worker.call("open", input=plates, settings=settings, **fields)
    assert answer["event"] == "opened", answer
    return answer


def frame_paths(worker: RawWorker, request_id: Any) -> dict[int, str]:
    """frame -> matte path from a request's `frame` events."""
    return {e["frame"]: e["path"] for e in worker.of(request_id, "frame")}


def write_matte_pattern(paths: dict[int, str], folder: str, frames: Iterable[int]) -> str:
    """Hard-link mattes named by frame into one folder as sh010.####.exr (for comparisons)."""
    os.makedirs(folder, exist_ok=True)
    for frame in frames:
        os.link(paths[frame], os.path.join(folder, f"sh010.{frame:04d}.exr"))
    return os.path.join(folder, "sh010.####.exr")
