"""Engine worker benchmark through the host client; prints one JSON object.

(a) Start: worker spawn -> `ready` (no model), and spawn -> `opened` with the demo model.
(b) Cached frame: `ensure` of a cached frame -> its `frame` event on a warm worker
    (median of many, client included). Target < 20 ms.
(c) Overhead: seconds per computed frame through the worker vs the in-process engine on the
    same plates and settings (fresh caches, runs interleaved). Target <= 1.05x. The tiny model
    at 1024 by default (model bound like the real network); `--full` uses the ~220M `full`
    configuration (random weights) at 1024.

    python tests/benchmarks/worker_bench.py [--frames 8] [--repeats 2] [--full]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line sets it

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from plate_factory import write_exr_sequence  # noqa: E402
from vrmbg.core.engine.models import ModelPool  # noqa: E402
from vrmbg.core.engine.opening import open_session  # noqa: E402
from vrmbg.core.model.loader import init_random  # noqa: E402
from vrmbg.plugin.client import EngineClient  # noqa: E402

FIRST = 1001


def start_to_ready(repeats: int) -> list[float]:
    """Seconds from spawning a worker to its `ready`."""
    times = []
    for _ in range(repeats):
        client = EngineClient(sys.executable)
        began = time.perf_counter()
        client.start()
        times.append(time.perf_counter() - began)
        client.shutdown()
    return times


def start_to_opened(plates: str, cache: str, repeats: int) -> list[float]:
    """Seconds from spawning a worker to `opened` on the demo model."""
    times = []
    for i in range(repeats):
        client = EngineClient(sys.executable)
        began = time.perf_counter()
        client.open(plates, {"model": "demo", "device": "cpu",
                             "cache_dir": os.path.join(cache, f"open{i}")})
        times.append(time.perf_counter() - began)
        client.shutdown()
    return times


def cached_frame_latency(client: EngineClient, session: str, frames: list[int],
                         samples: int) -> list[float]:
    """Seconds from sending `ensure` of a cached frame to receiving its `frame` event."""
    arrived = threading.Event()
    client.add_listener(lambda e: arrived.set() if e.get("event") == "frame" else None)
    times = []
    for i in range(samples):
        arrived.clear()
        began = time.perf_counter()
        request = client.ensure(session, frame=frames[i % len(frames)])
        arrived.wait(30)
        times.append(time.perf_counter() - began)
        request.wait(30)
    return times


def worker_seconds_per_frame(client: EngineClient, plates: str, settings: dict,
                             frames: list[int]) -> float:
    """Wall seconds per computed frame for one ensure of the whole range via the worker."""
    opened = client.open(plates, settings)
    began = time.perf_counter()
    done = client.ensure(opened["session"], frames=f"{frames[0]}-{frames[-1]}").wait(None)
    seconds = time.perf_counter() - began
    assert done["computed"] == len(frames), done
    client.close(opened["session"])
    return seconds / len(frames)


def engine_seconds_per_frame(pool: ModelPool, plates: str, settings: dict,
                             frames: list[int]) -> float:
    """The same work in this process, through the engine directly."""
    session = open_session(plates, settings, models=pool)
    began = time.perf_counter()
    session.ensure_range(frames)
    seconds = time.perf_counter() - began
    assert session.counters.frames_computed == len(frames)
    return seconds / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--full", action="store_true", help="the 220M full network at 1024")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="vrmbg-worker-bench-")
    try:
        frames = list(range(FIRST, FIRST + args.frames))
        os.makedirs(os.path.join(work, "plates"))
        plates = write_exr_sequence(os.path.join(work, "plates"), frames, name="sh.####.exr",
                                    size=(960, 540))
        config = "full" if args.full else "tiny"
        model = init_random(os.path.join(work, config), config=config, seed=0)
        base = {"model": model, "device": "cpu", "resolution": 1024}
        report: dict = {"frames": args.frames, "model": config, "resolution": 1024,
                        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}

        ready = start_to_ready(args.repeats + 1)
        report["start_to_ready_s"] = round(statistics.median(ready), 3)
        report["start_to_opened_demo_s"] = round(statistics.median(
            start_to_opened(plates, work, args.repeats + 1)), 3)

        client = EngineClient(sys.executable)
        small = dict(base, model=model if not args.full else "demo", resolution=64 if
                     not args.full else 0, cache_dir=os.path.join(work, "latency"))
        opened = client.open(plates, small)
        client.ensure(opened["session"], frames=f"{frames[0]}-{frames[-1]}").wait(None)
        latency = cached_frame_latency(client, opened["session"], frames, args.samples)
        report["cached_frame_to_event_ms"] = {
            "median": round(1000 * statistics.median(latency), 2),
            "p90": round(1000 * sorted(latency)[int(0.9 * len(latency))], 2),
            "target": "< 20"}

        pool = ModelPool()
        worker, engine = [], []
        for i in range(args.repeats):  # interleaved: both see the same machine load
            settings = dict(base, cache_dir=os.path.join(work, f"engine{i}"))
            engine.append(engine_seconds_per_frame(pool, plates, settings, frames))
            settings = dict(base, cache_dir=os.path.join(work, f"worker{i}"))
            worker.append(worker_seconds_per_frame(client, plates, settings, frames))
        client.shutdown()
        report["engine_s_per_frame"] = [round(s, 4) for s in engine]
        report["worker_s_per_frame"] = [round(s, 4) for s in worker]
        report["worker_vs_engine"] = round(min(worker) / min(engine), 3)
        report["worker_vs_engine_target"] = "<= 1.05"
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
