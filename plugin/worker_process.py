"""The engine worker as a process: which Python runs it, starting it, its output, stopping it.

The engine's Python is found as: the explicit `python` argument, else $VRMBG_PYTHON, else the
installer's `engine.json` beside this file. A worker is started with an argument list (never
a shell string), in an environment without the host Python's own variables, after the workers
of hosts that died are cleaned up (`worker_registry`). Two daemon threads read its stdout
(JSON events) and stderr (its log, the last lines kept). Standard library only, Python 3.9+.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from . import engine_record, worker_registry
from .requests import EngineUnavailable

LOG_LINES_KEPT = 200
# Variables of a host's own Python that would break the engine's Python if inherited.
HOST_PYTHON_VARIABLES = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE",
                         "PYTHONNOUSERSITE", "__PYVENV_LAUNCHER__")
KILL_WAIT_SECONDS = 3.0
_NO_WINDOW = 0x08000000  # Windows CREATE_NO_WINDOW: no console pops up


def find_engine_python(explicit: str = "") -> str:
    """The engine's Python: explicit > $VRMBG_PYTHON > the installer's record."""
    python = explicit or os.environ.get("VRMBG_PYTHON", "") or \
        str(engine_record.read_record().get("python") or "")
    if not python:
        raise EngineUnavailable(
            "no engine Python is known: set VRMBG_PYTHON to the Python where vrmbg is "
            "installed, or run `vrmbg install nuke` / `vrmbg install blender` with it")
    found = python if os.path.isfile(python) else shutil.which(python)
    if not found:
        raise EngineUnavailable(f"the engine Python {python!r} does not exist (set "
                                "VRMBG_PYTHON, or re-run `vrmbg install` from the engine)")
    return found


def engine_environment(env: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """The worker's environment: as given, else ours without the host Python's variables."""
    if env is not None:
        return dict(env)
    clean = {k: v for k, v in os.environ.items() if k not in HOST_PYTHON_VARIABLES}
    clean["PYTHONIOENCODING"] = "utf-8"
    return clean


class WorkerProcess:
    """One started worker: its process, its registry record, its log and its readers."""

    def __init__(self, proc: subprocess.Popen, python: str, generation: int) -> None:
        self.proc = proc
        self.python = python
        self.generation = generation  # the client's count of workers started
        self.record = ""
        self._log: "collections.deque[str]" = collections.deque(maxlen=LOG_LINES_KEPT)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    @classmethod
    def spawn(cls, python: str, worker_args: Sequence[str], env: Optional[Mapping[str, str]],
              generation: int) -> "WorkerProcess":
        """Clean up stale workers, then start `python -m vrmbg.core worker ARGS` and record
        it; EngineUnavailable when the process cannot start."""
        worker_registry.clean_stale_workers()
        args = [python, "-m", "vrmbg.core", "worker", *worker_args]
        try:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=engine_environment(env),
                                    creationflags=_NO_WINDOW if os.name == "nt" else 0)
        except OSError as exc:
            raise EngineUnavailable(f"cannot start the engine with {python}: "
                                    f"{exc.strerror or exc}") from None
        worker = cls(proc, python, generation)
        try:
            worker.record = worker_registry.record_worker(proc.pid)
        except OSError:
            worker.record = ""
        return worker

    def read(self, on_event: Callable[[Dict[str, Any]], None],
             on_exit: Callable[["WorkerProcess"], None]) -> None:
        """Start the reader threads: every JSON event to `on_event`, then `on_exit(self)`
        when the process has ended; the log lines into the kept tail."""
        for target, name, args in ((self._read_events, "events", (on_event, on_exit)),
                                   (self._read_log, "log", ())):
            threading.Thread(target=target, args=args, daemon=True,
                             name=f"vrmbg-client-{name}-{self.generation}").start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> Optional[int]:
        return self.proc.returncode

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def log_tail(self, lines: int) -> List[str]:
        """The last lines the worker wrote to its log (stderr)."""
        with self._lock:
            return list(self._log)[-lines:] if lines > 0 else []

    def write(self, message: Mapping[str, Any]) -> bool:
        """Write one request line (False when it cannot be written: the worker died, and the
        event reader sees its end)."""
        stdin = self.proc.stdin
        if stdin is None:
            return False
        data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8")
        with self._write_lock:
            try:
                stdin.write(data)
                stdin.flush()
                return True
            except (OSError, ValueError):
                return False

    def stop(self, goodbye: Mapping[str, Any], timeout: float) -> None:
        """Ask the worker to stop (`goodbye`, then its stdin closed), then terminate it, then
        kill it."""
        if not self.alive():
            return
        self.write(goodbye)
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        if not self.wait_exit(timeout):
            self.proc.terminate()
            if not self.wait_exit(KILL_WAIT_SECONDS):
                self.kill()

    def kill(self) -> None:
        """Kill the process and wait a little for it to go."""
        try:
            self.proc.kill()
        except OSError:
            pass
        self.wait_exit(KILL_WAIT_SECONDS)

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the process to end; True when it has."""
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def forget(self) -> None:
        """Remove the worker's registry record (it has stopped)."""
        worker_registry.forget_worker(self.record)

    def _read_events(self, on_event: Callable[[Dict[str, Any]], None],
                     on_exit: Callable[["WorkerProcess"], None]) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw.decode("utf-8"))
            except ValueError:
                with self._lock:
                    self._log.append("(not an event) " + raw.decode("utf-8", "replace").strip())
                continue
            if isinstance(event, dict):
                on_event(event)
        self.proc.wait()
        on_exit(self)

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._lock:
                self._log.append(raw.decode("utf-8", "replace").rstrip())
