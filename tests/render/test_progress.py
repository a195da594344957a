"""Progress output as farms parse it, the terminal bar, and cancellation by real signals."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from vrmbg.core.errors import EXIT_CANCELLED, Cancelled
from vrmbg.core.render.progress import CancelFlag, Progress

DEADLINE = re.compile(r"Progress: (\d+)%")  # Deadline's default stdout handler
OPENJD = re.compile(r"openjd_progress: (\d+(\.\d+)?)")


def deadline_values(text: str) -> list[int]:
    return [int(m.group(1)) for m in DEADLINE.finditer(text)]


def openjd_values(text: str) -> list[float]:
    return [float(m.group(1)) for m in OPENJD.finditer(text)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- plain lines (farms) --------------------------------------------------------------


def test_plain_lines_parse_with_deadline_and_openjd_patterns():
    out = io.StringIO()
    progress = Progress(7, label="sh010", mode="plain", stream=out)
    for _ in range(7):
        progress.advance()
    progress.close()
    text = out.getvalue()
    deadline, openjd = deadline_values(text), openjd_values(text)
    assert len(deadline) == 7 and len(openjd) == 7
    assert deadline == [int(v) for v in openjd]
    assert deadline == sorted(deadline)
    assert deadline[-1] == 100
    assert all(0 <= v <= 100 for v in deadline)
    assert [100 * k // 7 for k in range(1, 8)] == deadline


def test_each_openjd_progress_line_is_followed_by_a_status_line():
    out = io.StringIO()
    progress = Progress(2, label="sh010", mode="plain", stream=out)
    progress.advance(message="frame 1001")
    progress.advance()
    lines = out.getvalue().splitlines()
    for index, line in enumerate(lines):
        if line.startswith("openjd_progress: "):
            assert lines[index + 1].startswith("openjd_status: ")
    statuses = [line for line in lines if line.startswith("openjd_status: ")]
    assert statuses == ["openjd_status: sh010 frame 1001", "openjd_status: sh010 2/2 frames"]


def test_plain_lines_go_to_stdout_not_the_bar_stream(capsys):
    progress = Progress(2, mode="plain")
    progress.advance(2)
    progress.close()
    captured = capsys.readouterr()
    assert deadline_values(captured.out) == [100]
    assert captured.err == ""


def test_never_reports_100_before_the_work_is_done():
    out = io.StringIO()
    progress = Progress(1000, mode="plain", stream=out)
    progress.advance(999)
    progress.close()  # incomplete: no closing 100%
    assert deadline_values(out.getvalue()) == [99]
    assert openjd_values(out.getvalue()) == [99.0]


def test_progress_never_goes_down_and_is_clamped():
    out = io.StringIO()
    progress = Progress(10, mode="plain", stream=out)
    progress.update(6)
    progress.update(3)  # late report from an earlier frame
    progress.advance(50)
    assert deadline_values(out.getvalue()) == [60, 60, 100]
    assert progress.done == 10


def test_status_message_stays_on_one_line():
    out = io.StringIO()
    Progress(1, mode="plain", stream=out).advance(message="line one\nline two")
    assert "openjd_status: line one line two" in out.getvalue().splitlines()


def test_context_manager_completes_on_success_only():
    out = io.StringIO()
    with Progress(4, mode="plain", stream=out) as progress:
        progress.advance()
    assert deadline_values(out.getvalue()) == [25, 100]

    out = io.StringIO()
    with pytest.raises(RuntimeError):
        with Progress(4, mode="plain", stream=out) as progress:
            progress.advance()
            raise RuntimeError("bad frame")
    assert deadline_values(out.getvalue()) == [25]


def test_empty_work_closes_at_100():
    out = io.StringIO()
    Progress(0, mode="plain", stream=out).close()
    assert deadline_values(out.getvalue()) == [100]


def test_quiet_prints_nothing():
    out, err = io.StringIO(), io.StringIO()
    with Progress(3, mode="quiet", stream=err, out=out) as progress:
        progress.advance()
        progress.echo("log line")
    assert out.getvalue() == "" and err.getvalue() == ""


def test_auto_mode_is_plain_on_a_pipe_and_honours_the_environment(monkeypatch):
    monkeypatch.delenv("VRMBG_PROGRESS", raising=False)
    out = io.StringIO()
    progress = Progress(1, stream=out)  # StringIO is not a terminal
    progress.advance()
    assert deadline_values(out.getvalue()) == [100]

    monkeypatch.setenv("VRMBG_PROGRESS", "quiet")
    out = io.StringIO()
    Progress(1, stream=out).advance()
    assert out.getvalue() == ""


def test_an_explicit_stream_takes_the_plain_lines_off_stdout(capsys):
    err = io.StringIO()
    with Progress(2, mode="plain", stream=err) as progress:
        progress.advance()
    assert deadline_values(err.getvalue()) == [50, 100]
    assert capsys.readouterr().out == ""


def test_unknown_mode_is_a_usage_error():
    from vrmbg.core.errors import UsageError
    with pytest.raises(UsageError):
        Progress(1, mode="fancy")


# -- terminal bar ---------------------------------------------------------------------


def test_bar_shows_counts_speed_and_eta_on_one_line():
    clock, bar, out = FakeClock(), io.StringIO(), io.StringIO()
    progress = Progress(10, label="sh010", stream=bar, out=out, mode="bar", clock=clock)
    progress.advance()  # the first frame starts the speed measurement
    for _ in range(2):
        clock.now += 4.0  # 4 s per frame
        progress.advance()
    text = bar.getvalue()
    assert out.getvalue() == ""  # nothing for farm parsers
    assert "\n" not in text
    last = text.split("\r")[-1]
    assert "sh010" in last and "3/10" in last and "30%" in last
    assert "4.0 s/frame" in last
    assert "ETA 0:28" in last  # 7 frames left at 4 s each
    progress.close()
    assert bar.getvalue().endswith("\n")


def test_bar_reports_fps_when_fast_and_throttles_redraws():
    clock, bar = FakeClock(), io.StringIO()
    progress = Progress(100, stream=bar, out=io.StringIO(), mode="bar", clock=clock)
    for _ in range(50):
        progress.advance()  # no time passes: only the first draw happens
    assert bar.getvalue().count("\r") == 1
    clock.now += 1.0
    progress.advance(50)  # done: always drawn
    last = bar.getvalue().split("\r")[-1]
    assert "100/100" in last and "fps" in last


def test_echo_puts_log_lines_on_stdout_and_redraws_the_bar():
    clock, bar, out = FakeClock(), io.StringIO(), io.StringIO()
    progress = Progress(4, stream=bar, out=out, mode="bar", clock=clock)
    progress.advance()
    drawn = bar.getvalue().count("1/4")
    progress.echo("[sh010] reading plates")
    assert out.getvalue() == "[sh010] reading plates\n"
    assert bar.getvalue().count("1/4") == drawn + 1


# -- cancellation ---------------------------------------------------------------------


def test_cancel_flag_restores_previous_handlers():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with CancelFlag():
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_cancel_flag_set_by_request_raises_cancelled():
    flag = CancelFlag()
    flag.raise_if_set()  # not set: nothing happens
    flag.set("worker cancel")
    assert flag.is_set() and flag.signal_name == "worker cancel"
    with pytest.raises(Cancelled) as info:
        flag.raise_if_set()
    assert info.value.exit_code == EXIT_CANCELLED
    assert "worker cancel" in str(info.value)


FRAME_LOOP = textwrap.dedent("""
    import sys, time
    from vrmbg.core.render.progress import CancelFlag
    with CancelFlag() as cancel:
        print("ready", flush=True)
        frame = 0
        while not cancel.is_set():
            frame += 1
            time.sleep(0.05)  # a frame being computed
            print(f"frame {frame} done", flush=True)
        print(f"stopped by {cancel.signal_name}", flush=True)
    sys.exit(130)
""")

ABORT_LOOP = textwrap.dedent("""
    import sys, time
    from vrmbg.core.render.progress import CancelFlag
    try:
        with CancelFlag(notify=False) as cancel:
            print("ready", flush=True)
            told = False
            while True:
                time.sleep(0.02)
                if cancel.is_set() and not told:
                    print("flag set", flush=True)
                    told = True
    except KeyboardInterrupt:
        print("aborted", flush=True)
        sys.exit(3)
""")


def _spawn(code: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def _wait_for_line(process: subprocess.Popen, wanted: str) -> str:
    """Read the child's output up to the line `wanted`; return what was read."""
    seen = ""
    for line in process.stdout:
        seen += line
        if line.strip() == wanted:
            return seen
    pytest.fail(f"child ended before printing {wanted!r}")


def _finish(process: subprocess.Popen) -> tuple[str, str]:
    """Wait for the child; read what is left through the same buffered pipes."""
    process.wait(timeout=20)
    return process.stdout.read(), process.stderr.read()


def test_sigterm_sets_the_flag_and_the_current_frame_finishes():
    process = _spawn(FRAME_LOOP)
    before = _wait_for_line(process, "frame 1 done")
    process.send_signal(signal.SIGTERM)
    out, err = _finish(process)
    lines = (before + out).strip().splitlines()
    assert process.returncode == 130  # not killed by the signal (that would be -15)
    assert lines[-1] == "stopped by SIGTERM"
    assert re.fullmatch(r"frame \d+ done", lines[-2])
    assert "SIGTERM received" in err


def test_second_sigint_aborts_at_once():
    process = _spawn(ABORT_LOOP)
    process.send_signal(signal.SIGINT)
    _wait_for_line(process, "flag set")
    process.send_signal(signal.SIGINT)
    out, _ = _finish(process)
    assert process.returncode == 3
    assert out.strip().splitlines()[-1] == "aborted"


def test_plain_lines_give_the_farm_log_speed_and_eta():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(4, label="sh010", stream=out, mode="plain", clock=clock)
    for frame in range(1001, 1005):
        progress.advance(message=f"frame {frame}")
        clock.now += 5.0  # 5 s per frame
    statuses = [line for line in out.getvalue().splitlines() if line.startswith("openjd_status")]
    assert statuses[0] == "openjd_status: sh010 frame 1001"  # no speed known yet
    assert statuses[1].endswith("ETA 0:10") and statuses[2].endswith("ETA 0:05"), statuses
    assert statuses[-1] == "openjd_status: sh010 frame 1004"
