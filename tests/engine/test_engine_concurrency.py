"""Several processes on one cache: concurrent renders, and renders killed with SIGKILL.

Each render runs in its own Python process (as an artist's worker and a farm job would), with
the real tiny model and EXR plates. Results must equal the straight run bit for bit, no reader
may ever see a partial file, and each frame is computed once across processes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from session_helpers import (FRAMES, RESOLUTION, make_plates, make_session, model,
                                 straight_run, temp_files)
from vrmbg.core.io.mattes import read_matte
from vrmbg.core.model.loader import init_random

DRIVER = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
from vrmbg.core.engine.opening import open_session

pattern, cache, model_dir, frames, pause = sys.argv[1:6]
session = open_session(pattern, {"model": model_dir, "device": "cpu", "precision": "fp32",
                                 "resolution": %(res)d}, cache_root=cache)
stepper = session.stepper
step = stepper.step
def slow_step(*args):
    time.sleep(float(pause))  # widen the window in which a kill can land
    return step(*args)
stepper.step = slow_step
print("ready", flush=True)
for frame in json.loads(frames):
    session.ensure(frame)
print(json.dumps(session.counters.to_dict()), flush=True)
""" % {"res": RESOLUTION}


@pytest.fixture(autouse=True)
def _one_thread():
    """The render processes run on one thread, and a chain is only valid on the thread count
    it was computed with: the checks in this process open the same chain on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    root = tmp_path_factory.mktemp("concurrency")
    pattern = make_plates(str(root / "plates"))
    model_dir = init_random(str(root / "model"), "tiny", seed=5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = straight_run(pattern, model(model_dir))
    finally:
        torch.set_num_threads(threads)
    return {"root": root, "pattern": pattern, "model_dir": model_dir, "reference": reference}


def start_render(shot, cache: str, frames, pause: float = 0.0) -> subprocess.Popen:
    """A render process; returns once it has loaded the model and is about to compute."""
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, shot["pattern"], cache, shot["model_dir"],
         json.dumps(list(frames)), str(pause)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready", process.stderr.read()
    return process


def finish(process: subprocess.Popen) -> dict:
    """Wait for a render; its counters."""
    # read through the text stream that read "ready": communicate() would skip what it
    # has already buffered (a fast render's whole output)
    process.wait(timeout=240)
    out, err = process.stdout.read(), process.stderr.read()
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def check_cache_files(shot, cache: str) -> list[int]:
    """Every non-temp cached file is complete and exact; returns frames with a matte."""
    session = make_session(shot["pattern"], cache, model(shot["model_dir"]))
    present = []
    for name in sorted(os.listdir(os.path.join(session.folder, "matte"))):
        if ".vrmbg-tmp-" in name:
            continue
        frame = int(name.split(".")[-2])
        matte = read_matte(os.path.join(session.folder, "matte", name)).astype(np.float16)
        assert np.array_equal(matte, shot["reference"][frame][0]), name
        present.append(frame)
    for name in os.listdir(os.path.join(session.folder, "state")):
        if ".vrmbg-tmp-" in name:
            continue
        frame = int(name.split("_")[0])
        state = np.load(os.path.join(session.folder, "state", name))
        assert np.array_equal(state, shot["reference"][frame][1]), name
    return present


def test_two_processes_on_one_cache_compute_each_frame_once(shot, tmp_path):
    cache = str(tmp_path / "cache")
    first = start_render(shot, cache, [FRAMES[-1]], pause=0.02)
    second = start_render(shot, cache, [FRAMES[4], FRAMES[-1], FRAMES[2]], pause=0.02)
    counts = [finish(first), finish(second)]
    assert sum(c["frames_computed"] for c in counts) == len(FRAMES)
    assert check_cache_files(shot, cache) == FRAMES
    assert not temp_files(cache)


def test_kill_9_at_random_moments_then_resume_is_exact(shot, tmp_path):
    cache = str(tmp_path / "cache")
    chooser = random.Random()
    delays = [chooser.uniform(0.0, 0.6) for _ in range(3)]
    for delay in delays:
        process = start_render(shot, cache, [FRAMES[-1]], pause=0.03)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        present = check_cache_files(shot, cache)  # no partial or corrupt file, ever
        assert present == FRAMES[:len(present)], (delays, present)
    resumed = make_session(shot["pattern"], cache, model(shot["model_dir"]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed.ensure(FRAMES[-1])
    finally:
        torch.set_num_threads(threads)
    assert check_cache_files(shot, cache) == FRAMES, delays
    assert not temp_files(cache), delays
