"""`vrmbg render-shots`: shots as parallel processes, logs, progress, failures, signals."""

from __future__ import annotations

import json
import shlex
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from vrmbg.core.cli import main
from vrmbg.core.errors import EXIT_CANCELLED, EXIT_INPUT, EXIT_RETRY, EXIT_USAGE

DEADLINE = re.compile(r"Progress: (\d+)%")

FAKE_VRMBG = textwrap.dedent("""\
    #!{python}
    # Stands in for `vrmbg render`: logs events, writes frames, reports progress, obeys
    # SIGTERM/SIGINT after the current frame. FAKE_DELAY = seconds per frame, FAKE_FAIL =
    # comma-separated shots that fail with FAKE_CODE (default 3, an input error).
    import json, os, signal, sys, time
    from vrmbg.core.io.frames import SequencePattern, parse_frame_spec

    def event(**data):
        with open({log!r}, "a") as log:
            log.write(json.dumps(dict(data, time=time.time(), pid=os.getpid())) + "\\n")

    args = sys.argv[1:]
    output = args[args.index("-o") + 1]
    shot = os.path.basename(output).split(".")[0]
    frames = parse_frame_spec(next(a[9:] for a in args if a.startswith("--frames=")))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop.append("SIGINT"))
    event(kind="start", shot=shot, args=args)
    if shot in os.environ.get("FAKE_FAIL", "").split(","):
        print(f"vrmbg: error: {{shot}}: frame {{frames[0]}}: plate missing", file=sys.stderr)
        event(kind="end", shot=shot)
        sys.exit(int(os.environ.get("FAKE_CODE", "3")))
    pattern = SequencePattern.parse(output)
    for index, frame in enumerate(frames, start=1):
        time.sleep(float(os.environ.get("FAKE_DELAY", "0")))
        with open(pattern.path_for(frame), "w") as handle:
            handle.write(str(frame))
        percent = 100 * index // len(frames)
        print(f"Progress: {{percent}}%", flush=True)
        print(f"openjd_progress: {{percent}}", flush=True)
        print(f"openjd_status: frame {{frame}}", flush=True)
        print(f"frame {{frame}} written", flush=True)
        if stop:
            event(kind="stopped", shot=shot, signal=stop[0], frame=frame)
            sys.exit(130)
    event(kind="end", shot=shot)
""")

SHOTS = [
    {"name": "sh010", "input": "plates/sh010.####.exr", "output": "mattes/sh010.####.exr",
     "frames": "1001-1004", "input_colorspace": "ACEScg"},
    {"name": "sh020", "input": "plates/sh020.####.exr", "output": "mattes/sh020.####.exr",
     "frames": "1-3"},
    {"name": "sh030", "input": "plates/sh030.####.exr", "output": "mattes/sh030.####.exr",
     "frames": "10-11"},
]


@pytest.fixture
def farm(tmp_path, monkeypatch):
    """A shot list, the fake vrmbg, and a reader for its event log."""
    (tmp_path / "mattes").mkdir()
    shotlist = tmp_path / "shots.json"
    shotlist.write_text(json.dumps({"shots": SHOTS}))
    log = tmp_path / "events.jsonl"
    fake = tmp_path / "fake-vrmbg"
    fake.write_text(FAKE_VRMBG.format(python=sys.executable, log=str(log)))
    fake.chmod(0o755)
    for name in ("FAKE_DELAY", "FAKE_FAIL", "FAKE_CODE", "VRMBG_EXECUTABLE", "VRMBG_PROGRESS"):
        monkeypatch.delenv(name, raising=False)

    class Farm:
        folder = tmp_path

        def __init__(self):
            self.shotlist, self.fake, self.log = shotlist, fake, log

        def events(self, kind=None):
            if not log.exists():
                return []
            found = [json.loads(line) for line in log.read_text().splitlines()]
            return [e for e in found if kind is None or e["kind"] == kind]

        def run(self, *extra):
            return main(["render-shots", str(shotlist), "--vrmbg", str(fake), *extra])

        def matte(self, name, frame):
            return tmp_path / "mattes" / f"{name}.{frame:04d}.exr"

    return Farm()


def max_overlap(events) -> int:
    """Most shots running at the same moment, from start/end events."""
    points = sorted((e["time"], 1 if e["kind"] == "start" else -1) for e in events
                    if e["kind"] in ("start", "end", "stopped"))
    running = best = 0
    for _, step in points:
        running += step
        best = max(best, running)
    return best


def test_every_shot_renders_with_prefixed_logs_and_overall_progress(farm, capsys):
    assert farm.run("--jobs", "2", "--device", "cpu") == 0
    out = capsys.readouterr().out
    for name, frames in (("sh010", range(1001, 1005)), ("sh020", range(1, 4)),
                         ("sh030", range(10, 12))):
        for frame in frames:
            assert farm.matte(name, frame).is_file()
            assert f"[{name}] frame {frame} written" in out
    # the shots' own progress lines are folded into one overall progress, not echoed
    assert not re.search(r"\[sh0\d0\] (Progress|openjd_)", out)
    values = [int(v) for v in DEADLINE.findall(out)]
    assert values == sorted(values) and values[-1] == 100 and values.count(100) >= 1
    assert all(0 <= v <= 100 for v in values)
    openjd = [int(v) for v in re.findall(r"^openjd_progress: (\d+)$", out, re.M)]
    assert openjd == values


def test_job_wide_and_per_shot_settings_reach_each_command(farm):
    assert farm.run("--device", "cpu", "--input-colorspace", "ARRI LogC4") == 0
    args = {e["shot"]: e["args"] for e in farm.events("start")}
    assert "--input-colorspace=ACEScg" in args["sh010"]  # the shot's own value wins
    assert "--input-colorspace=ARRI LogC4" in args["sh020"]
    assert all("--device=cpu" in a for a in args.values())
    assert args["sh030"][:5] == ["render", str(farm.folder / "plates" / "sh030.####.exr"),
                                 "-o", str(farm.folder / "mattes" / "sh030.####.exr"),
                                 "--frames=10-11"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_at_most_n_shots_run_at_once(farm, monkeypatch, jobs):
    monkeypatch.setenv("FAKE_DELAY", "0.25")
    assert farm.run("--jobs", str(jobs)) == 0
    assert max_overlap(farm.events()) == jobs
    assert len(farm.events("start")) == 3


def test_a_failed_shot_is_summarised_and_the_others_still_render(farm, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_FAIL", "sh020")
    assert farm.run("--jobs", "2") == EXIT_INPUT  # every failure was an input error
    captured = capsys.readouterr()
    assert "[sh020] vrmbg: error: sh020: frame 1: plate missing" in captured.out
    assert "sh020 (exit 3 (input error))" in captured.err
    assert "2 of 3 shots done" in captured.err
    assert farm.matte("sh010", 1004).is_file() and farm.matte("sh030", 11).is_file()
    assert 100 not in [int(v) for v in DEADLINE.findall(captured.out)]


def test_different_failures_give_the_first_failed_shots_code(farm, monkeypatch, capsys):
    """Exit 1 is kept for bugs: shots failing on their input give the code of the first
    shot that failed, in shot-list order."""
    monkeypatch.setenv("FAKE_FAIL", "sh010,sh030")
    bad = farm.folder / "bad-vrmbg"
    bad.write_text(f"#!/bin/sh\ncase \"$*\" in *sh030*) exit 4;; esac\nexec {farm.fake} \"$@\"\n")
    bad.chmod(0o755)
    code = main(["render-shots", str(farm.shotlist), "--vrmbg", str(bad)])
    err = capsys.readouterr().err
    assert code == EXIT_INPUT
    assert "sh010 (exit 3 (input error))" in err and "sh030 (exit 4 (model error))" in err


def test_a_shot_killed_by_the_system_asks_for_a_retry(farm, capsys):
    killed = farm.folder / "killed-vrmbg"
    killed.write_text(f'#!/bin/sh\ncase "$*" in *sh020*) kill -9 $$;; esac\n'
                      f'exec {farm.fake} "$@"\n')
    killed.chmod(0o755)
    code = main(["render-shots", str(farm.shotlist), "--vrmbg", str(killed)])
    assert code == EXIT_RETRY
    assert "sh020 (killed by SIGKILL)" in capsys.readouterr().err


def test_fail_fast_starts_no_further_shot(farm, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_FAIL", "sh010")
    assert farm.run("--fail-fast") == EXIT_INPUT
    assert [e["shot"] for e in farm.events("start")] == ["sh010"]
    assert "not started: sh020, sh030" in capsys.readouterr().err


def test_executable_from_the_environment(farm, monkeypatch):
    monkeypatch.setenv("VRMBG_EXECUTABLE", str(farm.fake))
    assert main(["render-shots", str(farm.shotlist)]) == 0
    assert len(farm.events("start")) == 3


def test_missing_executable_is_a_usage_error(farm, capsys):
    code = main(["render-shots", str(farm.shotlist), "--vrmbg", str(farm.folder / "nope")])
    assert code == EXIT_USAGE
    assert "not found" in capsys.readouterr().err
    assert farm.events() == []


def test_dry_run_prints_commands_and_runs_nothing(farm, capsys):
    assert farm.run("--dry-run", "--precision", "fp32") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["sh010", "sh020", "sh030"]
    assert all("--precision=fp32" in line and str(farm.fake) in line for line in lines)
    assert farm.events() == []


def test_concurrent_shots_share_the_cores_unless_told(farm, capsys):
    from vrmbg.core.cpu import usable_cores

    def threads_of(*extra):
        assert farm.run("--dry-run", *extra) == 0
        lines = capsys.readouterr().out.splitlines()
        return {line.split(":")[0]: [word.split("=", 1)[1] for word in shlex.split(
            line.split(": ", 1)[1]) if word.startswith("--threads=")] for line in lines}

    share = str(max(1, usable_cores() // 2))
    assert threads_of("--jobs", "2") == {name: [share] for name in ("sh010", "sh020", "sh030")}
    assert threads_of("--jobs", "2", "--threads", "3") == {
        name: ["3"] for name in ("sh010", "sh020", "sh030")}
    assert threads_of() == {name: [] for name in ("sh010", "sh020", "sh030")}  # one at a time


def test_bad_jobs_value(farm, capsys):
    assert farm.run("--jobs", "0") == EXIT_USAGE


# -- signals (a real parent process) --------------------------------------------------


def _start_parent(farm, *extra):
    env = dict(os.environ, FAKE_DELAY="0.4")
    return subprocess.Popen(
        [sys.executable, "-m", "vrmbg.core", "render-shots", str(farm.shotlist),
         "--vrmbg", str(farm.fake), "--jobs", "2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_starts(farm, parent, count, timeout=60.0):
    deadline = time.monotonic() + timeout
    while len(farm.events("start")) < count:
        if parent.poll() is not None or time.monotonic() > deadline:
            parent.kill()
            pytest.fail(f"shots did not start: {parent.communicate()}")
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_running_shots_after_their_frame_and_starts_no_more(farm, signum):
    parent = _start_parent(farm)
    _wait_for_starts(farm, parent, 2)
    parent.send_signal(signum)
    out, err = parent.communicate(timeout=60)
    assert parent.returncode == EXIT_CANCELLED, err
    stopped = farm.events("stopped")
    assert sorted(e["shot"] for e in stopped) == ["sh010", "sh020"]
    assert all(e["signal"] == "SIGTERM" for e in stopped)  # forwarded as a clean stop
    for event in stopped:  # the frame in progress was finished and kept
        assert farm.matte(event["shot"], event["frame"]).is_file()
    assert sorted(e["shot"] for e in farm.events("start")) == ["sh010", "sh020"]
    assert "not started: sh030" in err
    assert not farm.matte("sh030", 10).exists()
