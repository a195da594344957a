"""The host session (plugin/host_session.py): what a matte does in any host, checked once with a
small fake host and the client double. The Nuke and Blender tests check only their glue: that
the node or the node group shows what the session knows and asks what its knobs say.
"""

from __future__ import annotations

import threading

import pytest

from nuke_client_double import ClientDouble, DoubleRequest
from vrmbg.plugin.host_session import OPENING, session_id, session_key
from vrmbg.plugin.requests import EngineError
from vrmbg.plugin.session_hub import SessionHub
from vrmbg.plugin.settings import Settings
from vrmbg.plugin.status import Status, noted, status_line, status_text

FIRST, LAST = 1001, 1010
PLATE = "/shots/sh010/plate.####.exr"


class FakeHost:
    """What a host gives the hub: a client, and hooks that record what they are told."""

    def __init__(self, **double) -> None:
        self.client = ClientDouble(FIRST, LAST, EngineError, **double)
        self.changes = 0
        self.opened: list = []
        self.hub = SessionHub(lambda: self.client, on_change=self.changed,
                              on_opened=lambda session, answer: self.opened.append(answer))

    def changed(self, _session) -> None:
        self.changes += 1

    def matte(self, owner: str = "node1", **settings):
        session = self.hub.session(owner)
        session.ask(PLATE, Settings.from_mapping(settings), FIRST, LAST)
        return session


class HeldOpens(ClientDouble):
    """A client whose opens are answered only when told (a model that takes time to load)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.opens: list = []

    def open_request(self, input, settings, *, session="", preview=False):
        answer = super().open_request(input, settings, session=session)
        held = DoubleRequest("open", {"session": session}, self.error_class)
        self.opens.append((held, answer.wait()))
        return held

    def answer_opens(self) -> None:
        for held, answer in self.opens:
            held.finish(answer)
        self.opens = []


# --------------------------------------------------------------------------- sessions

def test_a_session_is_named_by_its_owner_and_what_decides_its_frames():
    key = session_key(PLATE, {"b": 1, "a": 2}, (FIRST, LAST))
    assert key == session_key(PLATE, {"a": 2, "b": 1}, (FIRST, LAST))  # order is no matter
    name = session_id("node1", key)
    assert name.startswith("node1-") and len(name) == len("node1-") + 10
    assert session_id("node1", session_key(PLATE, {"a": 3})) != name


def test_opening_loads_once_and_takes_the_engines_word_for_valid_frames():
    host = FakeHost(cached="1001-1003,1005")
    matte = host.matte(model="demo")
    assert not matte.is_open and matte.status_line() == "Not analysed yet"
    opened = matte.open()
    assert opened["event"] == "opened" and matte.is_open
    assert matte.valid == {1001, 1002, 1003, 1005}
    assert matte.open() is not None and len(host.client.ops("open")) == 1  # open already
    (_, plate, settings, session), = host.client.ops("open")
    assert plate == PLATE and session == matte.session
    assert settings == Settings(model="demo").to_mapping()  # every setting, on the wire
    assert host.opened == [opened]
    assert matte.status_text(1004).splitlines() == [
        "4 of 10 frames cached | cpu bf16", "frame 1004: not computed yet (shows black)"]


def test_one_open_at_a_time_for_one_key():
    host = FakeHost()
    host.client = HeldOpens(FIRST, LAST, EngineError)
    matte = host.matte()
    first, second = matte.open_async(), matte.open_async()
    assert first is second and len(host.client.ops("open")) == 1
    assert matte.status.working == OPENING and not matte.is_open
    host.client.answer_opens()
    assert first.done() and matte.is_open and matte.status.working == ""


def test_a_changed_setting_is_a_new_session_and_nothing_stays_valid():
    host = FakeHost(cached="1001-1010")
    matte = host.matte(resolution=512)
    matte.open()
    old = matte.session
    assert not matte.ask(PLATE, Settings(resolution=512), FIRST, LAST)  # the same: no change
    assert matte.ask(PLATE, Settings(resolution=256), FIRST, LAST)
    assert matte.valid == set() and not matte.is_open  # stale at once, before any answer
    matte.open()
    assert matte.session != old and host.client.ops("close") == [("close", old)]
    assert host.client.ops("open")[1][2]["resolution"] == 256


def test_nothing_to_ask_means_nothing_valid():
    host = FakeHost(cached="1001-1010")
    matte = host.matte()
    matte.open()
    assert matte.drop() and not matte.is_open and matte.valid == set()
    with pytest.raises(ValueError):
        matte.open()


def test_a_failed_open_is_the_last_error():
    host = FakeHost()
    host.client.fail = "no such model"
    matte = host.matte()
    with pytest.raises(EngineError):
        matte.open()
    assert matte.status_line() == "Error: no such model" and matte.status.working == ""


# --------------------------------------------------------------------------- the playhead

def test_following_asks_without_waiting_and_the_newest_frame_wins():
    host = FakeHost(hold=True)
    matte = host.matte()
    assert matte.follow(1005) and matte.follow(1007)
    assert not matte.follow(1007)  # asked already
    asks = [(c[2], c[4]) for c in host.client.ops("ensure")]
    assert asks == [(1005, True), (1007, True)]  # superseding, never blocking
    host.client.finish_ensures()
    assert {1005, 1007} <= matte.valid  # from the frame events and the cache read after
    assert not matte.follow(1005)  # valid: nothing to ask


def test_frames_followed_while_the_model_loads_ask_only_for_the_newest():
    host = FakeHost()
    host.client = HeldOpens(FIRST, LAST, EngineError)
    matte = host.matte()
    for frame in (1002, 1003, 1004):
        matte.follow(frame)
    host.client.answer_opens()
    assert [c[2] for c in host.client.ops("ensure")] == [1004]


def test_following_reads_the_cache_again_for_frames_computed_on_the_way():
    host = FakeHost()
    matte = host.matte()
    host.client.computed[session_id("node1", matte.want_key)] = {1001, 1002, 1003}
    answers = []
    matte.follow(1004, then=answers.append)
    assert answers and answers[0]["event"] == "done"
    assert matte.valid == {1001, 1002, 1003, 1004}
    assert host.client.ops("cache_info")


def test_clamped_frames_are_the_nearest_of_the_shot():
    host = FakeHost()
    matte = host.matte()
    matte.open()
    matte.follow(FIRST - 20, clamp=True)
    assert matte.exact_frame(LAST + 20, clamp=True).endswith(f"{LAST}.exr")
    assert [c[2] for c in host.client.ops("ensure")] == [FIRST]
    assert host.client.ops("ensure_frame")[0][2] == LAST


# --------------------------------------------------------------------------- renders

def test_an_exact_frame_blocks_and_is_valid_after():
    host = FakeHost()
    matte = host.matte()
    path = matte.exact_frame(1003)
    assert path.endswith("matte.1003.exr") and 1003 in matte.valid
    assert host.client.ops("ensure") == []  # the blocking call, never the playhead's


def test_an_exact_frame_that_fails_says_why():
    host = FakeHost()
    matte = host.matte()
    matte.open()
    host.client.fail = "cannot read /shots/sh010.1003.exr (frame 1003): truncated file"
    with pytest.raises(EngineError):
        matte.exact_frame(1003)
    assert "truncated file" in matte.status_line() and 1003 not in matte.valid


# --------------------------------------------------------------------------- analysis

def progress(session: str, frame: int, done: int, total: int) -> dict:
    return {"event": "progress", "session": session, "frame": frame, "done": done,
            "total": total, "seconds_per_frame": 2.5, "eta_seconds": 22.5,
            "stage": "computing"}


def test_an_analysis_shows_progress_and_stops_when_cancelled():
    host = FakeHost(hold=True)
    matte = host.matte()
    analysis = matte.analyse(f"{FIRST}-{LAST}")
    (_, session, frame, frames, supersede), = host.client.ops("ensure")
    assert (frame, frames, supersede) == (None, f"{FIRST}-{LAST}", False)
    host.client.emit(progress(session, 1001, 1, 10))
    assert analysis.fraction == pytest.approx(0.1) and matte.fraction() == pytest.approx(0.1)
    assert matte.status_line() == "Computing: frame 1001 (1 of 10), about 22 s left"
    assert "2.50 s/frame" in matte.status_text()
    analysis.cancel()
    assert analysis.wait(5) and host.client.ops("cancel")
    assert analysis.summary() == "Stopped: 1/10 frames done (finished frames are kept)"
    assert matte.status_line() == analysis.summary()


def test_an_analysis_that_finishes_says_what_it_did():
    host = FakeHost()
    matte = host.matte()
    matte.fail("an old error")
    analysis = matte.analyse()  # the whole shot, from the opened answer
    assert analysis.wait(5) and analysis.fraction == 1.0 and analysis.total == 10
    assert analysis.summary() == "Analysed 10 frames (0 computed, 0 from cache)"
    assert matte.status.last_error == "" and matte.status_line() == analysis.summary()
    assert matte.valid == set(range(FIRST, LAST + 1))


def test_an_analysis_that_fails_is_the_last_error():
    host = FakeHost()
    host.client.fail = "gated model"
    matte = host.matte()
    analysis = matte.analyse()
    assert analysis.wait(5) and analysis.error == "gated model" and analysis.result is None
    assert analysis.summary() == matte.status_line() == "Error: gated model"


def test_stop_clear_and_release_reach_the_engine_and_the_status():
    host = FakeHost(hold=True, cached="1001-1004")
    matte = host.matte()
    assert not matte.stop()  # nothing open: nothing to stop
    matte.analyse()
    assert matte.stop() and host.client.ops("cancel")
    matte.clear_cache()
    assert host.client.ops("clear") and matte.valid == set()
    assert matte.release_models() == 1
    assert matte.status.notes[-2:] == ("cache cleared", "released 1 model(s) from memory")


# --------------------------------------------------------------------------- events

def test_only_exact_final_frames_of_the_open_session_count_as_valid():
    host = FakeHost()
    matte = host.matte()
    matte.open()
    other = host.matte("node2")
    other.open()
    for event in ({"frame": 1002}, {"frame": 1003, "exact": False, "tier": "preview"},
                  {"frame": 1004, "session": other.session}):
        host.client.emit(dict({"event": "frame", "session": matte.session, "path": "x"},
                              **event))
    assert matte.valid == {1002} and other.valid == {1004}


def test_a_worker_death_is_noted_in_every_matte_and_kept_past_the_next_outcome():
    host = FakeHost()
    one, two = host.matte(), host.matte("node2")
    one.open()  # a worker runs (the hub listens to its client)
    host.client.emit({"event": "worker_died", "code": -9, "restarting": True})
    note = "the engine stopped (exit code -9) and was restarted"
    assert one.status.notes == two.status.notes == (note,)
    one.analyse().wait(5)
    assert note in one.status_text() and one.status_line().startswith("Analysed")


def test_events_reach_the_host_from_the_reader_thread():
    host = FakeHost()
    matte = host.matte()
    matte.open()
    before = host.changes
    reader = threading.Thread(target=host.client.emit,
                              args=(progress(matte.session, 1002, 2, 10),))
    reader.start()
    reader.join()
    assert host.changes > before and "frame 1002 (2 of 10)" in matte.status.working


def test_answers_on_the_reader_thread_never_ask_the_host_for_its_client():
    host = FakeHost(hold=True)
    asked_from = []
    host.hub._get_client = lambda: (asked_from.append(threading.current_thread()), host.client)[1]
    matte = host.matte()
    matte.follow(1003)
    analysis = matte.analyse()
    reader = threading.Thread(target=host.client.finish_ensures)  # the answers arrive there
    reader.start()
    reader.join()
    assert analysis.wait(5) and 1003 in matte.valid
    assert set(asked_from) == {threading.main_thread()}  # e.g. Blender's preferences: bpy


def test_forgetting_a_matte_closes_its_session_and_a_new_client_loses_them_all():
    host = FakeHost()
    one, two = host.matte(), host.matte("node2")
    one.open()
    two.open()
    host.hub.forget("node1")
    assert host.client.ops("close") == [("close", one.session)]
    host.client = ClientDouble(FIRST, LAST, EngineError)  # e.g. another engine Python
    host.hub.client()
    assert not two.is_open  # its worker is gone: it opens again in the new one
    two.open()
    assert host.client.ops("open")


# --------------------------------------------------------------------------- status text

def test_the_status_reads_the_same_in_every_host():
    status = Status(cached=4, total=10, device="cuda", precision="fp16", seconds_per_frame=0.25,
                    working="computing: frame 1005 (5 of 10)", last_error="disk full")
    noted(status, "cache cleared")
    assert status_text(status, 1006).splitlines() == [
        "4 of 10 frames cached | cuda fp16 | 0.25 s/frame", "computing: frame 1005 (5 of 10)",
        "frame 1006: not computed yet (shows black)", "cache cleared", "last error: disk full"]
    assert status_line(status) == "Computing: frame 1005 (5 of 10)"
    status.working = ""
    assert status_line(status) == "Error: disk full"
    status.last_error = ""
    assert status_line(status) == "Cache cleared"
    for note in ("a", "b", "c"):
        noted(status, note)
    assert status.notes == ("b", "c")
