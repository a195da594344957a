"""The engine worker driven line by line: every op and event, bad input, supersede, cancel.

A real `vrmbg worker` process with the tiny random model at a 64 px inference size; mattes
that come back are compared bit for bit with `vrmbg render`'s straight run.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from render_helpers import assert_same_mattes, debris, make_plates, render_args, run_process
from worker_helpers import RawWorker, frame_paths, opened, tiny_settings, write_matte_pattern

FIRST, COUNT = 1001, 8
FRAMES = list(range(FIRST, FIRST + COUNT))
RANGE = f"{FIRST}-{FIRST + COUNT - 1}"


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> str:
    return make_plates(str(tmp_path_factory.mktemp("plates")), FRAMES)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, shot, model) -> str:
    """`vrmbg render`'s straight run of the whole shot (the reference mattes)."""
    out = tmp_path_factory.mktemp("straight")
    pattern = str(out / "sh010.####.exr")
    done = run_process(render_args(shot, pattern, model, "--resolution", "64",
                                   cache=str(out / "cache")))
    assert done.returncode == 0, done.stderr
    return pattern


@pytest.fixture
def worker():
    process = RawWorker()
    yield process
    process.close()


def test_hello_answers_ready_with_protocol_engine_devices_and_schema(worker):
    ready = worker.call("hello", protocol=1)
    assert ready["event"] == "ready" and ready["protocol"] == 1
    assert ready["engine_version"] and "cpu" in ready["devices"]
    assert ready["pid"] == worker.proc.pid
    names = {p["name"]: p for p in ready["schema"]}
    assert names["model"]["default"] == "briaai/VRMBG-3.0"
    assert names["device"]["choices"] == ["auto", "cpu", "cuda", "mps"]
    assert set(names["resolution"]) >= {"kind", "label", "help", "group", "minimum", "maximum",
                                        "hosts"}


def test_open_ensure_give_exact_mattes_equal_to_a_straight_render(worker, shot, model,
                                                                  straight, tmp_path):
    answer = opened(worker, shot, tiny_settings(model, str(tmp_path / "cache")), session="sh")
    assert answer["session"] == "sh" and answer["frames"] == RANGE
    assert (answer["first"], answer["last"], answer["total"]) == (FIRST, FRAMES[-1], COUNT)
    assert answer["cached"] == "" and answer["cached_count"] == 0
    assert answer["matte_pattern"].endswith("sh010.####.exr")
    assert os.path.isabs(answer["matte_pattern"])
    assert answer["device"] == "cpu" and answer["tier"] == "final" and answer["chain_id"]
    assert "->" in answer["colour"] and answer["model_fingerprint"]
    stages = [e["stage"] for e in worker.of(worker.events[-1]["id"], "progress")]
    assert stages and set(stages) == {"loading model"}

    rid = worker.send("ensure", session="sh", frames=RANGE)
    done = worker.final(rid)
    assert done == {"id": rid, "event": "done", "frames": RANGE, "computed": COUNT,
                    "from_cache": 0, "cancelled": False, "superseded": False}
    frames = worker.of(rid, "frame")
    assert [e["frame"] for e in frames] == FRAMES
    assert all(e["exact"] and e["tier"] == "final" and e["session"] == "sh" for e in frames)
    assert all(e["path"] == answer["matte_pattern"].replace("####", str(e["frame"]))
               for e in frames)
    progress = worker.of(rid, "progress")
    assert [p["done"] for p in progress] == list(range(1, COUNT + 1))
    assert all(p["total"] == COUNT and p["stage"] == "computing" for p in progress)
    assert progress[-1]["eta_seconds"] == 0 and progress[0]["seconds_per_frame"] > 0
    assert_same_mattes(straight, answer["matte_pattern"], FRAMES)

    again = worker.send("ensure", session="sh", frame=FIRST + 3)
    assert worker.final(again)["computed"] == 0 and worker.final(again)["from_cache"] == 1
    assert [e["frame"] for e in worker.of(again, "frame")] == [FIRST + 3]


def test_a_frame_in_the_middle_computes_from_the_last_cached_frame(worker, shot, model,
                                                                   straight, tmp_path):
    opened(worker, shot, tiny_settings(model, str(tmp_path / "cache")), session="a")
    assert worker.call("ensure", session="a", frames=f"{FIRST}-{FIRST + 2}")["computed"] == 3
    rid = worker.send("ensure", session="a", frames=f"{FIRST + 1},{FIRST + 5}")
    assert worker.final(rid)["computed"] == 3  # 1004..1006, continuing from 1003's state
    assert [e["frame"] for e in worker.of(rid, "frame")] == [FIRST + 1, FIRST + 5]
    paths = frame_paths(worker, rid)
    check = write_matte_pattern(paths, str(tmp_path / "check"), [FIRST + 1, FIRST + 5])
    assert_same_mattes(straight, check, [FIRST + 1, FIRST + 5])


def test_status_is_answered_while_a_frame_computes(worker, shot, model, tmp_path):
    settings_ = tiny_settings(model, str(tmp_path / "cache"), resolution=256)
    opened(worker, shot, settings_, session="busy")
    rid = worker.send("ensure", session="busy", frames=RANGE)
    worker.wait_for(lambda e: e["id"] == rid and e["event"] == "frame")
    status = worker.call("status")
    assert worker.of(rid, "done") == [], "status waited for the ensure"
    assert status["busy"] is True and status["current"]["session"] == "busy"
    assert status["current"]["request"] == rid and status["queued"] == 0
    info = status["sessions"]["busy"]
    assert info["total"] == COUNT and info["cached_count"] >= 1 and info["device"] == "cpu"
    assert status["models"] and status["models"][0]["device"] == "cpu"
    worker.final(rid)
    idle = worker.call("status", session="busy")
    assert idle["busy"] is False and idle["current"] is None
    assert idle["sessions"]["busy"]["cached_count"] == COUNT
    assert idle["sessions"]["busy"]["seconds_per_frame"] > 0


def test_cancel_stops_between_frames_and_keeps_finished_frames(worker, shot, model, tmp_path):
    opened(worker, shot, tiny_settings(model, str(tmp_path / "cache"), resolution=256),
           session="c")
    rid = worker.send("ensure", session="c", frames=RANGE)
    queued = worker.send("ensure", session="c", frame=FIRST)
    worker.wait_for(lambda e: e["id"] == rid and e["event"] == "frame")
    cancel = worker.call("cancel", session="c")
    assert cancel["event"] == "done" and cancel["cancelled"] == 2
    done = worker.final(rid)
    assert done["cancelled"] is True and done["superseded"] is False
    assert 1 <= done["computed"] < COUNT
    assert worker.final(queued)["cancelled"] is True
    finished = len(worker.of(rid, "frame"))
    assert finished == done["computed"]
    rest = worker.call("ensure", session="c", frames=RANGE)
    assert rest["computed"] == COUNT - finished and rest["from_cache"] == finished


def test_supersede_ends_queued_ensures_and_the_running_playhead_one(worker, shot, model,
                                                                    tmp_path):
    opened(worker, shot, tiny_settings(model, str(tmp_path / "cache"), resolution=256),
           session="p")
    first = worker.send("ensure", session="p", frame=FRAMES[-1], supersede=True)
    queued = worker.send("ensure", session="p", frame=FRAMES[-2])
    worker.wait_for(lambda e: e["id"] == first and e["event"] == "progress")
    latest = worker.send("ensure", session="p", frame=FIRST + 2, supersede=True)
    assert worker.final(queued)["superseded"] is True
    stopped = worker.final(first)
    assert stopped["superseded"] is True and stopped["cancelled"] is False
    assert 1 <= stopped["computed"] < COUNT  # the frame being computed finished
    done = worker.final(latest)
    assert done["superseded"] is False and done["cancelled"] is False
    assert [e["frame"] for e in worker.of(latest, "frame")] == [FIRST + 2]


def test_supersede_leaves_a_running_render_alone(worker, shot, model, tmp_path):
    opened(worker, shot, tiny_settings(model, str(tmp_path / "cache"), resolution=256),
           session="r")
    render = worker.send("ensure", session="r", frames=RANGE)
    worker.wait_for(lambda e: e["id"] == render and e["event"] == "frame")
    scrub = worker.send("ensure", session="r", frame=FIRST, supersede=True)
    assert worker.final(render)["computed"] == COUNT
    assert worker.final(scrub)["from_cache"] == 1


def test_cache_info_clear_release_close_and_shutdown(worker, shot, model, tmp_path):
    cache = str(tmp_path / "cache")
    answer = opened(worker, shot, tiny_settings(model, cache), session="k")
    worker.call("ensure", session="k", frames=f"{FIRST}-{FIRST + 2}")
    info = worker.call("cache_info", session="k")
    assert info["event"] == "cache" and info["cached"] == f"{FIRST}-{FIRST + 2}"
    assert info["cached_count"] == 3 and info["bytes"] > 0
    assert info["folder"].startswith(cache) and info["matte_pattern"] == answer["matte_pattern"]

    released = worker.call("release")
    assert released == {"id": released["id"], "event": "done", "released": 1}
    assert worker.call("status")["models"] == []
    rid = worker.send("ensure", session="k", frame=FIRST + 3)
    assert worker.final(rid)["computed"] == 1
    assert [e["stage"] for e in worker.of(rid, "progress")][0] == "loading model"

    assert worker.call("clear", session="k") == {"id": worker.events[-1]["id"], "event": "done",
                                                 "removed": True}
    assert worker.call("cache_info", session="k")["cached_count"] == 0
    assert not os.path.exists(info["folder"])
    assert worker.call("close", session="k")["event"] == "done"
    gone = worker.call("ensure", session="k", frame=FIRST)
    assert gone["event"] == "error" and gone["code"] == 2 and "unknown session" in gone["message"]
    assert worker.call("shutdown")["event"] == "done"
    assert worker.proc.wait(30) == 0


def test_the_worker_exits_0_when_stdin_closes(worker):
    worker.call("hello")
    assert worker.close() == 0


def test_engine_errors_name_the_file_and_keep_the_worker_alive(worker, model, tmp_path):
    missing = str(tmp_path / "nope" / "sh010.####.exr")
    error = worker.call("open", input=missing, settings=tiny_settings(model, str(tmp_path)))
    assert error["event"] == "error" and error["code"] == 3 and "nope" in error["message"]
    assert "traceback" not in error
    bad_model = worker.call("open", input=missing, settings={"model": str(tmp_path / "x"),
                                                             "device": "cpu"})
    assert bad_model["event"] == "error" and bad_model["code"] in (3, 4)
    assert worker.call("hello")["event"] == "ready"


def test_frames_outside_the_shot_are_an_input_error(worker, shot, model, tmp_path):
    opened(worker, shot, tiny_settings(model, str(tmp_path / "cache")), session="o")
    error = worker.call("ensure", session="o", frame=FIRST - 1)
    assert error["event"] == "error" and error["code"] == 3 and str(FIRST - 1) in error["message"]
    assert worker.call("status", session="o")["sessions"]["o"]["last_error"]


BAD_LINES = [
    (b"not json", None, "not valid JSON"),
    (b"[1, 2]", None, "JSON object"),
    (b'{"op": "hello"}', None, "id"),
    (b'{"id": true, "op": "hello"}', None, "id"),
    (b'{"id": 7, "op": "explode"}', 7, "unknown op"),
    (b'{"id": 8, "op": "hello", "colour": 1}', 8, "unknown field"),
    (b'{"id": 9, "op": "ensure", "session": "x", "frame": "1001"}', 9, "integer"),
    (b'{"id": 10, "op": "ensure", "session": "x", "frame": true}', 10, "integer"),
    (b'{"id": 11, "op": "ensure", "session": "x"}', 11, "either"),
    (b'{"id": 12, "op": "ensure", "session": "x", "frame": 1}', 12, "unknown session"),
    (b'{"id": 13, "op": "open", "input": "a.exr", "settings": {"colour": 1}}', 13, "colour"),
    (b'{"id": 14, "op": "open", "input": "a.exr", "settings": {"device": "tpu"}}', 14, "device"),
    (b'{"id": 15, "op": "cache_info"}', 15, "missing field"),
    (b'{"id": "s", "op": "status", "session": "ghost"}', "s", "unknown session"),
    (b'\xff\xfe{"id": 1}', None, "UTF-8"),
    # Lone surrogates (how a non-UTF-8 path reads in Python), NUL bytes, deep nesting.
    (b'{"id":"\\ud800","op":"nope"}', None, "id"),
    (b'{"id": 16, "op": "open", "input": "/p/\\udcff/a.####.exr"}', 16, "input"),
    (b'{"id": 17, "op": "open", "input": "/p/a\\u0000.####.exr"}', 17, "NUL"),
    (b'{"id": 18, "op": "status", "session": "\\udc80"}', 18, "session"),
    (b'{"id": 19, "op": "open", "input": "a", "settings": {"\\ud800": 1}}', 19, "settings"),
    (b'{"id": 20, "op": "hello", "client": ' + b"[" * 100000 + b"]" * 100000 + b"}",
     None, "nests too deeply"),
    (b'{"id": 21, "op": "open", "input": "a", "settings": ' + b'{"a":' * 20 + b"1"
     + b"}" * 20 + b"}", 21, "nests too deeply"),
]


@pytest.fixture(scope="module")
def shared_worker():
    """One worker for the bad-input tests (each checks only the events it caused)."""
    process = RawWorker()
    yield process
    process.close()


@pytest.mark.parametrize("line,request_id,words", BAD_LINES)
def test_bad_requests_get_one_error_and_the_next_request_works(shared_worker, line,
                                                               request_id, words):
    worker = shared_worker
    seen = len(worker.events)
    worker.write(line + b"\n")
    ping = worker.send("hello", request_id=f"ping-{seen}")
    assert worker.final(ping)["event"] == "ready"
    caused = worker.events[seen:]
    assert [e["event"] for e in caused] == ["error", "ready"], caused
    error = caused[0]
    assert error["id"] == request_id and error["code"] == 2
    assert words.lower() in error["message"].lower() and "\n" not in error["message"]


def test_a_refused_open_leaves_later_opens_answered(shared_worker, shot):
    worker = shared_worker
    bad = worker.send("open", input="/plates/\udcff/sh010.####.exr", session="bad")
    assert worker.final(bad, timeout=30)["event"] == "error"
    good = worker.send("open", input=shot, session="good",
                       settings={"model": "/no/such/model"})
    answer = worker.final(good, timeout=60)
    assert answer["id"] == good and answer["event"] in ("opened", "error")
    assert "internal error" not in answer.get("message", "")
    assert worker.proc.poll() is None


def test_a_request_alone_cannot_switch_on_downloaded_model_code(shared_worker):
    """A host knob saved in someone else's scene reaches the worker as a setting: refused
    unless the worker's own user allowed it (flag or environment)."""
    answer = shared_worker.call("open", input="/plates/a.####.exr",
                                settings={"trust_remote_code": True})
    assert answer["event"] == "error" and answer["code"] == 4
    assert "trust_remote_code refused" in answer["message"]
    assert "--trust-remote-code" in answer["message"]


def test_a_line_over_1_mib_is_refused_and_the_next_request_works(shared_worker):
    worker = shared_worker
    seen = len(worker.events)
    worker.write(b'{"id": 1, "op": "hello", "x": "' + b"a" * (1024 * 1024 + 10) + b'"}\n')
    assert worker.call("hello", request_id="after-big")["event"] == "ready"
    error = worker.events[seen]
    assert error["event"] == "error" and error["id"] is None and "limit" in error["message"]


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                     | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_OPS = st.sampled_from(["hello", "open", "ensure", "cancel", "status", "cache_info", "clear",
                        "prune", "close", "bogus", ""])
_REQUESTS = st.fixed_dictionaries({"op": _OPS}, optional={
    "id": _JSON, "session": _JSON, "frame": _JSON, "frames": _JSON, "input": _JSON,
    "settings": _JSON, "supersede": _JSON, "protocol": _JSON, "max_bytes": _JSON,
    "scope": _JSON}).map(
        lambda d: json.dumps(d).encode())
_LINES = st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                   _JSON.map(lambda v: json.dumps(v).encode()), _REQUESTS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_LINES, min_size=1, max_size=5))
def test_fuzzed_lines_never_crash_the_worker(shared_worker, lines):
    fuzz_worker = shared_worker
    for line in lines:
        fuzz_worker.write(line.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n")
    ping = fuzz_worker.send("status")
    assert fuzz_worker.final(ping, timeout=60)["event"] == "status"
    assert fuzz_worker.proc.poll() is None
    assert not [e for e in fuzz_worker.events if e["event"] == "error" and e["code"] == 1], \
        "an internal error"


def test_two_workers_on_one_cache_give_identical_uncorrupted_mattes(shot, model, straight,
                                                                    tmp_path):
    cache = str(tmp_path / "shared")
    workers = [RawWorker(), RawWorker()]
    try:
        answers = [opened(w, shot, tiny_settings(model, cache), session="same") for w in workers]
        assert answers[0]["matte_pattern"] == answers[1]["matte_pattern"]
        ids = [w.send("ensure", session="same", frames=RANGE) for w in workers]
        dones = [w.final(i) for w, i in zip(workers, ids)]
        assert all(d["event"] == "done" and not d["cancelled"] for d in dones)
        assert sum(d["computed"] for d in dones) >= COUNT
        for w, i in zip(workers, ids):
            assert [e["frame"] for e in w.of(i, "frame")] == FRAMES
        assert_same_mattes(straight, answers[0]["matte_pattern"], FRAMES)
        assert debris(cache) == []
    finally:
        for w in workers:
            w.close()


def test_cuts_and_edge_upsampling_reach_the_worker_as_they_reach_a_render(worker, shot, model,
                                                                         tmp_path):
    """A host's session with an edit's cut and the colour-guided edges gives the mattes a
    `vrmbg render` with the same flags gives, and the cut frame says it restarted."""
    from vrmbg.core.io.mattes import read_matte_stamp

    cut = FIRST + 4
    out = tmp_path / "render"
    pattern = str(out / "sh010.####.exr")
    done = run_process(render_args(shot, pattern, model, "--resolution", "64", "--cuts",
                                   str(cut), "--upsample", "guided-colour",
                                   cache=str(out / "cache")))
    assert done.returncode == 0, done.stderr
    settings = tiny_settings(model, str(tmp_path / "cache"), cuts=str(cut),
                             upsample="guided-colour")
    edit = opened(worker, shot, settings, session="edit")
    rid = worker.send("ensure", session="edit", frames=RANGE)
    assert worker.final(rid)["computed"] == COUNT
    paths = frame_paths(worker, rid)
    assert_same_mattes(pattern, write_matte_pattern(paths, str(tmp_path / "w"), FRAMES), FRAMES)
    assert read_matte_stamp(paths[cut]).get("cut") == 1
    assert all(read_matte_stamp(paths[f]).get("cut") is None for f in FRAMES if f != cut)
    plain = opened(worker, shot, tiny_settings(model, str(tmp_path / "cache")), session="plain")
    assert plain["chain_id"] != edit["chain_id"]  # the cut and edges are part of the chain


def test_a_per_frame_model_answers_a_jump_with_that_frame_alone(worker, shot, tmp_path):
    """Public per-frame weights in a host: a jump to the last frame computes one frame, and it
    is the matte `vrmbg render` gives that frame."""
    from vrmbg.core.io.mattes import read_matte_stamp
    from vrmbg.core.model import ModelConfig, init_random

    per_frame = init_random(str(tmp_path / "per-frame"),
                            ModelConfig.preset("tiny").replace(in_channels=3), seed=3)
    opened(worker, shot, tiny_settings(per_frame, str(tmp_path / "cache")), session="pf")
    last = FRAMES[-1]
    rid = worker.send("ensure", session="pf", frames=str(last))
    assert worker.final(rid)["computed"] == 1
    path = frame_paths(worker, rid)[last]
    assert read_matte_stamp(path)["model_kind"] == "per-frame"
    out = tmp_path / "render"
    pattern = str(out / "sh010.####.exr")
    done = run_process(render_args(shot, pattern, per_frame, "--resolution", "64", "--frames",
                                   str(last), cache=str(out / "cache")))
    assert done.returncode == 0, done.stderr
    assert_same_mattes(pattern, write_matte_pattern({last: path}, str(tmp_path / "w"), [last]),
                       [last])
