"""The engine worker as a process: which Python runs it, starting it, its output, stopping it.

The engine's Python is found as: the explicit `python` argument, else $VRMBG_PYTHON, else the
installer's `engine.json` beside this file. A worker is started with an argument list (never
a shell string), in an environment without the host Python's own variables, after the workers
of hosts that died are cleaned up (`worker_registry`). Two daemon threads read its stdout
(JSON events) and stderr (its log, the last lines kept). Standard library only, Python 3.9+.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import shutil
import subprocess
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from . import engine_record, worker_registry
from .platform_check import unsupported_platform
from .protocol import TRUST_REMOTE_CODE_VARIABLE
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


def engine_python_problem(python: str) -> str:
    """Why `python` cannot run the engine ("" when it can): vrmbg must import there. Asked
    once per version of the file (a host's preferences redraw often)."""
    try:
        changed = os.path.getmtime(python)
    except OSError as error:
        return f"{python} cannot run: {error.strerror or error}"
    return _engine_problem(python, changed)


@functools.lru_cache(maxsize=8)
def _engine_problem(python: str, _changed: float) -> str:
    try:
        done = subprocess.run([python, "-c", "import vrmbg.core.worker"], capture_output=True,
                              text=True, timeout=60, env=engine_environment(None))
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{python} cannot run: {error}"
    if done.returncode:
        return (f"vrmbg is not installed for {python} (choose the Python of the environment "
                "vrmbg is installed in)")
    return ""


def engine_python_text(explicit: str = "") -> str:
    """The engine Python a client would start (`find_engine_python`), or why it cannot: a
    line for a host's preferences."""
    try:
        python = find_engine_python(explicit)
    except EngineUnavailable as error:
        return error.message
    return engine_python_problem(python) or python


def engine_environment(env: Optional[Mapping[str, str]],
                       allow_remote_code: bool = False) -> Dict[str, str]:
    """The worker's environment: as given, else ours without the host Python's variables.

    `allow_remote_code`: the person running the host allowed downloaded model code in their
    own host preferences (never a value read from a scene or script), so the worker may run
    a model's own code when a matte asks for it (`trust_remote_code`); without it the worker
    refuses that setting unless this user's own environment already allows it.
    """
    if env is not None:
        chosen = dict(env)
    else:
        chosen = {k: v for k, v in os.environ.items() if k not in HOST_PYTHON_VARIABLES}
        chosen["PYTHONIOENCODING"] = "utf-8"
    if allow_remote_code:
        chosen[TRUST_REMOTE_CODE_VARIABLE] = "1"
    return chosen


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
              generation: int, allow_remote_code: bool = False) -> "WorkerProcess":
        """Clean up stale workers, then start `python -m vrmbg.core worker ARGS` and record
        it; EngineUnavailable when the process cannot start (on Windows, at once, saying
        vrmbg runs on Linux and macOS)."""
        unsupported = unsupported_platform()
        if unsupported:
            raise EngineUnavailable(unsupported)
        worker_registry.clean_stale_workers()
        args = [python, "-m", "vrmbg.core", "worker", *worker_args]
        try:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE,
                                    env=engine_environment(env, allow_remote_code),
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
