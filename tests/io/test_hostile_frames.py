"""Frame numbers no shot has: a one-line error at once, never memory grown from the number.

The address space is capped (RLIMIT_AS) so a range built from a hostile frame number fails
the test instead of the machine.
"""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from render_helpers import clean_env, make_plates, render_args
from vrmbg.core.errors import EXIT_INPUT, EXIT_USAGE
from worker_helpers import RawWorker

ADDRESS_SPACE = 6 << 30  # torch and its libraries map ~2-3 GB; a hostile range needs far more


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.fixture(scope="module")
def plates(tmp_path_factory) -> str:
    return make_plates(str(tmp_path_factory.mktemp("plates")), range(1001, 1004))


@pytest.mark.parametrize("frames,code", [
    ("111111111111111111111111111111", EXIT_INPUT),
    ("20000000", EXIT_INPUT),
    ("1002-20000000", EXIT_USAGE),  # more frames than any shot: refused as a typo
    ("-5", EXIT_INPUT),
])
def test_a_frame_outside_the_shot_is_refused_before_anything_is_built(plates, model, tmp_path,
                                                                      frames, code):
    args = render_args(plates, str(tmp_path / "m.####.exr"), model, "--resolution", "64",
                       f"--frames={frames}", cache=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "vrmbg.core", *args], capture_output=True,
                          text=True, timeout=300, env=clean_env(), preexec_fn=_capped)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_worker_answers_a_frame_far_past_the_shot_and_stays_alive(plates, model):
    worker = RawWorker()
    try:
        opened = worker.call("open", session="s", input=plates,
                             settings={"model": model, "device": "cpu", "resolution": 64})
        assert opened["event"] == "opened", opened
        for frame in (20000000, -20000000):
            answer = worker.call("ensure", session="s", frame=frame, timeout=120)
            assert answer["event"] == "error" and answer["code"] == EXIT_INPUT, answer
        answer = worker.call("ensure", session="s", frames="1001-111111111111111111111111",
                             timeout=120)
        assert answer["event"] == "error" and answer["code"] in (EXIT_INPUT, EXIT_USAGE), answer
        assert worker.call("status")["event"] == "status"
    finally:
        worker.close()
