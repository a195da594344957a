"""Checks of the host client (plugin/client.py) against a real worker: standard library only.

They run twice: inside pytest (tests/worker/test_worker_client.py) and under Python 3.9, the oldest
host Python (Nuke 14), as `python3.9 tests/support/client_checks.py CONTEXT.json`, which runs every
check and prints one JSON line of results. A context names the engine's Python, a plate
pattern, the tiny model and a scratch folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from typing import Any, Callable, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from plugin import client as client_module  # noqa: E402  (the plugin as a host copies it)
from plugin import worker_registry  # noqa: E402
from plugin.client import EngineClient, EngineError, EngineUnavailable  # noqa: E402

FIRST, COUNT = 1001, 8
RANGE = f"{FIRST}-{FIRST + COUNT - 1}"


def _scratch(ctx: Dict[str, Any], name: str) -> str:
    folder = os.path.join(ctx["tmp"], f"{name}-py{sys.version_info[0]}{sys.version_info[1]}")
    os.makedirs(folder, exist_ok=True)
    return folder


def _settings(ctx: Dict[str, Any], cache: str, **extra: Any) -> Dict[str, Any]:
    settings = {"model": ctx["model"], "device": "cpu", "resolution": 64, "cache_dir": cache}
    settings.update(extra)
    return settings


def _client(ctx: Dict[str, Any], **kwargs: Any) -> EngineClient:
    return EngineClient(ctx["python"], start_timeout=180, **kwargs)


def _fake_engine(folder: str, body: str) -> str:
    """An executable that stands in for the engine's Python (it ignores its arguments)."""
    path = os.path.join(folder, "fake_python")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"#!{sys.executable}\nimport json, sys, os\n{textwrap.dedent(body)}\n")
    os.chmod(path, 0o755)
    return path


# --------------------------------------------------------------------------- checks

def check_start_is_lazy_and_ready_describes_the_engine(ctx: Dict[str, Any]) -> Dict[str, Any]:
    client = _client(ctx)
    try:
        assert not client.running and client.pid is None
        ready = client.start()
        assert ready["event"] == "ready" and ready["protocol"] == 1
        assert client.running and client.pid == ready["pid"]
        assert client.start()["pid"] == ready["pid"], "a second start spawned another worker"
        record = os.path.join(worker_registry.registry_dir(),
                              f"host-{os.getpid()}-worker-{ready['pid']}.json")
        assert os.path.isfile(record), "the worker is not recorded for stale-worker clean-up"
        assert any(p["name"] == "model" for p in ready["schema"])
        deadline = time.monotonic() + 10  # the log arrives on its own pipe and thread
        while not any("ready" in line for line in client.log_tail()):
            assert time.monotonic() < deadline, client.log_tail()
            time.sleep(0.05)
        client.shutdown()
        assert not os.path.exists(record) and not _process_exists(ready["pid"])
        return {"pid": ready["pid"]}
    finally:
        client.shutdown()


def check_open_ensure_and_events(ctx: Dict[str, Any]) -> Dict[str, Any]:
    cache = _scratch(ctx, "events")
    events: List[Dict[str, Any]] = []
    threads = set()

    def listen(event: Dict[str, Any]) -> None:
        threads.add(threading.current_thread().name)
        events.append(event)

    client = _client(ctx, on_event=listen)
    try:
        opened = client.open(ctx["plates"], _settings(ctx, cache), session="shot")
        assert opened["session"] == "shot" and opened["frames"] == RANGE
        request = client.ensure("shot", frames=RANGE)
        finished = []
        request.add_done_callback(finished.append)
        done = request.wait(120)
        assert done["event"] == "done" and done["computed"] == COUNT, done
        assert finished == [done]
        frames = [e for e in request.events if e["event"] == "frame"]
        assert [e["frame"] for e in frames] == list(range(FIRST, FIRST + COUNT))
        assert [e["event"] for e in events if e["id"] == request.id][-1] == "done"
        assert threading.current_thread().name not in threads, "events on the caller's thread"
        status = client.status()
        assert status["sessions"]["shot"]["cached_count"] == COUNT
        info = client.cache_info("shot")
        assert info["cached"] == RANGE and info["bytes"] > 0
        late = []
        request.add_done_callback(late.append)
        assert late == [done], "a callback added after the end must run at once"
        return {"paths": {str(e["frame"]): e["path"] for e in frames},
                "pattern": opened["matte_pattern"]}
    finally:
        client.shutdown()


def check_ensure_frame_blocks_and_explains_failures(ctx: Dict[str, Any]) -> Dict[str, Any]:
    cache = _scratch(ctx, "blocking")
    client = _client(ctx)
    try:
        client.open(ctx["plates"], _settings(ctx, cache), session="b")
        path = client.ensure_frame("b", FIRST + 2, timeout=120)
        assert os.path.isfile(path) and path.endswith(f"{FIRST + 2}.exr")
        try:
            client.ensure_frame("b", FIRST - 50, timeout=60)
            raise AssertionError("a frame outside the shot was answered")
        except EngineError as exc:
            assert exc.code == 3 and str(FIRST - 50) in exc.message, exc.message
        try:
            client.ensure_frame("nobody", FIRST, timeout=60)
            raise AssertionError("an unknown session was answered")
        except EngineError as exc:
            assert exc.code == 2 and "unknown session" in exc.message
        preview = client.open(ctx["plates"], _settings(ctx, cache, preview_resolution=32),
                              session="pv", preview=True)
        assert preview["tier"] == "preview"
        try:
            client.ensure_frame("pv", FIRST + 6, timeout=60)
            raise AssertionError("a preview matte was handed to a render")
        except EngineError as exc:
            assert "preview" in exc.message
        return {"path": path}
    finally:
        client.shutdown()


def check_kill_9_mid_range_restarts_and_finishes(ctx: Dict[str, Any]) -> Dict[str, Any]:
    cache = _scratch(ctx, "crash")
    events: List[Dict[str, Any]] = []
    killed: List[int] = []
    client = _client(ctx, on_event=events.append)

    def kill_after_third_frame(event: Dict[str, Any]) -> None:
        if event.get("event") == "frame" and event.get("frame") == FIRST + 2 and not killed:
            killed.append(client.pid or 0)
            os.kill(killed[0], signal.SIGKILL)

    try:
        client.open(ctx["plates"], _settings(ctx, cache, resolution=256), session="crash")
        client.add_listener(kill_after_third_frame)
        request = client.ensure("crash", frames=RANGE)
        done = request.wait(300)
        assert killed and client.pid not in (None, killed[0]), "the worker was not replaced"
        died = [e for e in events if e["event"] == "worker_died"]
        assert len(died) == 1 and died[0]["code"] == -signal.SIGKILL and died[0]["restarting"]
        assert str(killed[0]) in died[0]["message"]
        assert [e for e in events if e["event"] == "worker_restarted"]
        reopened = [e for e in events if e["event"] == "opened" and e["session"] == "crash"][-1]
        cached_at_restart = reopened["cached_count"]
        assert cached_at_restart >= 3
        assert done["computed"] == COUNT - cached_at_restart, (done, cached_at_restart)
        status = client.status(session="crash")
        assert status["sessions"]["crash"]["cached_count"] == COUNT
        assert client.restarts == 1
        frames = [e for e in request.events if e["event"] == "frame"]
        return {"pattern": reopened["matte_pattern"], "computed_after": done["computed"],
                "cached_at_restart": cached_at_restart, "frame_events": len(frames)}
    finally:
        client.shutdown()


def check_a_missing_engine_python_is_a_clear_error(ctx: Dict[str, Any]) -> Dict[str, Any]:
    missing = os.path.join(ctx["tmp"], "no such dir", "python3")
    client = EngineClient(missing)
    try:
        client.start()
        raise AssertionError("started without an engine")
    except EngineUnavailable as exc:
        assert "does not exist" in exc.message and missing in exc.message
    saved = os.environ.pop("VRMBG_PYTHON", None)
    try:
        try:
            EngineClient().start()
            raise AssertionError("started without knowing the engine")
        except EngineUnavailable as exc:
            assert "VRMBG_PYTHON" in exc.message
    finally:
        if saved is not None:
            os.environ["VRMBG_PYTHON"] = saved
    os.environ["VRMBG_PYTHON"] = ctx["python"]
    try:
        client = EngineClient()
        assert client.start()["protocol"] == 1
        client.shutdown()
    finally:
        os.environ.pop("VRMBG_PYTHON", None)
        if saved is not None:
            os.environ["VRMBG_PYTHON"] = saved
    return {}


def check_another_protocol_is_refused(ctx: Dict[str, Any]) -> Dict[str, Any]:
    fake = _fake_engine(_scratch(ctx, "protocol"), """
        hello = json.loads(sys.stdin.readline())
        print(json.dumps({"id": hello["id"], "event": "ready", "protocol": 99}), flush=True)
        sys.stdin.read()
    """)
    client = EngineClient(fake, start_timeout=30)
    try:
        client.start()
        raise AssertionError("a worker of another protocol was accepted")
    except EngineUnavailable as exc:
        assert "protocol 99" in exc.message and "vrmbg install" in exc.message
    return {}


def check_an_engine_that_dies_at_start_says_why(ctx: Dict[str, Any]) -> Dict[str, Any]:
    fake = _fake_engine(_scratch(ctx, "dies"), """
        print("ModuleNotFoundError: No module named 'vrmbg'", file=sys.stderr, flush=True)
        sys.exit(3)
    """)
    try:
        EngineClient(fake, start_timeout=30).start()
        raise AssertionError("a dead engine was accepted")
    except EngineUnavailable as exc:
        assert "code 3" in exc.message and "No module named" in exc.message, exc.message
    return {}


def check_restarts_are_bounded(ctx: Dict[str, Any]) -> Dict[str, Any]:
    fake = _fake_engine(_scratch(ctx, "bounded"), """
        for line in sys.stdin:
            request = json.loads(line)
            if request["op"] == "hello":
                print(json.dumps({"id": request["id"], "event": "ready", "protocol": 1,
                                  "pid": os.getpid()}), flush=True)
            else:
                os._exit(9)
    """)
    deaths: List[Dict[str, Any]] = []
    client = EngineClient(fake, start_timeout=30, max_restarts=2,
                          on_event=lambda e: deaths.append(e) if e["event"] == "worker_died"
                          else None)
    try:
        request = client.request("status")
        try:
            request.wait(60)
            raise AssertionError("a worker that always dies answered")
        except EngineUnavailable as exc:
            assert "code 9" in exc.message and "not restarted" in exc.message, exc.message
        assert len(deaths) == 3 and client.restarts == 2
        assert [d["restarting"] for d in deaths] == [True, True, False]
    finally:
        client.shutdown()
    return {}


def check_shutdown_stops_the_worker_and_ends_waiting_requests(ctx: Dict[str, Any]) -> Dict:
    cache = _scratch(ctx, "shutdown")
    client = _client(ctx)
    client.open(ctx["plates"], _settings(ctx, cache, resolution=256), session="s")
    pid = client.pid
    request = client.ensure("s", frames=RANGE)
    client.shutdown(timeout=30)
    assert not client.running and client.pid is None
    assert not _process_exists(pid)
    try:
        final = request.wait(10)
        assert final.get("cancelled") or final.get("computed") == COUNT, final
    except EngineUnavailable as exc:
        assert "shut down" in exc.message
    assert client.start()["pid"] != pid, "a shut-down client must start a fresh worker"
    client.shutdown()
    return {}


def check_shared_client_is_one_per_process(ctx: Dict[str, Any]) -> Dict[str, Any]:
    first = client_module.shared_client(python=ctx["python"])
    assert client_module.shared_client() is first
    return {}


def check_a_host_that_dies_takes_its_worker_with_it(ctx: Dict[str, Any]) -> Dict[str, Any]:
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {ROOT!r})
        from plugin.client import EngineClient
        client = EngineClient({ctx["python"]!r})
        print(client.start()["pid"], flush=True)
        os._exit(0)   # a crashed host: no shutdown, no atexit
    """)
    host = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=240)
    assert host.returncode == 0, host.stderr
    worker = int(host.stdout.strip())
    deadline = time.monotonic() + 30
    while _process_exists(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _process_exists(worker), "the orphaned worker kept running"
    return {"worker": worker}


def check_stale_workers_of_dead_hosts_are_killed(ctx: Dict[str, Any]) -> Dict[str, Any]:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    # Stand-ins whose command line reads `vrmbg.core worker`, as a real worker's does.
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)", "-m", "vrmbg.core", "worker"]
    stale = subprocess.Popen(sleeper)
    alive = subprocess.Popen(sleeper)
    folder = worker_registry.registry_dir()
    os.makedirs(folder, exist_ok=True)
    records = []
    for host, worker in ((gone.pid, stale.pid), (os.getpid(), alive.pid)):
        path = os.path.join(folder, f"host-{host}-worker-{worker}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"host_pid": host, "host_start": worker_registry.process_start(host)
                       or "gone", "worker_pid": worker,
                       "worker_start": worker_registry.process_start(worker)}, handle)
        records.append(path)
    try:
        killed = worker_registry.clean_stale_workers()
        assert stale.pid in killed and alive.pid not in killed, killed
        assert stale.wait(10) == -signal.SIGKILL
        assert alive.poll() is None, "a live host's worker was killed"
        assert not os.path.exists(records[0]) and os.path.exists(records[1])
    finally:
        for proc in (stale, alive):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for path in records:
            worker_registry.forget_worker(path)
    return {}


def check_stale_worker_cleanup_never_kills_a_stranger(ctx: Dict[str, Any]) -> Dict[str, Any]:
    """A record planted for a process that is not a vrmbg worker, or in a folder this user
    does not own, never gets that process killed."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m",
                               "vrmbg.core", "worker"])
    folder = worker_registry.registry_dir()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    records = []
    for proc in (stranger, worker):
        path = os.path.join(folder, f"host-{gone.pid}-worker-{proc.pid}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"host_pid": gone.pid, "host_start": "gone", "worker_pid": proc.pid,
                       "worker_start": worker_registry.process_start(proc.pid)}, handle)
        records.append(path)
    real_uid = worker_registry.my_uid
    try:
        worker_registry.my_uid = lambda: real_uid() + 1  # the folder is another user's
        assert worker_registry.clean_stale_workers() == []
        assert worker.poll() is None and all(os.path.exists(p) for p in records)
        worker_registry.my_uid = real_uid
        killed = worker_registry.clean_stale_workers()
        assert killed == [worker.pid], killed
        assert stranger.poll() is None, "a process that is not a vrmbg worker was killed"
    finally:
        worker_registry.my_uid = real_uid
        for proc in (stranger, worker):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for path in records:
            worker_registry.forget_worker(path)
    return {}


def _process_exists(pid: Any) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        finished, _status = os.waitpid(int(pid), os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return worker_registry.process_start(int(pid)) is not None


CHECKS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {
    name: fn for name, fn in sorted(globals().items()) if name.startswith("check_")}


def run_all(ctx: Dict[str, Any]) -> Dict[str, Any]:
    """Run every check; returns {name: {"ok": bool, "result"| "error": ...}}."""
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, "result": check(ctx)}
        except BaseException:  # report every failure, keep running the others
            results[name] = {"ok": False, "error": traceback.format_exc()}
    return results


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        context = json.load(handle)
    print(json.dumps({"python": sys.version.split()[0], "results": run_all(context)}))
