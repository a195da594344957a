"""The host session (plugin/host_session.py): what a matte does in any host, checked once with a
small fake host and the client double. The Nuke and Blender tests check only their glue: that
the node or the node group shows what the session knows and asks what its knobs say.
"""

from __future__ import annotations

import threading

import pytest

from nuke_client_double import ClientDouble, DoubleRequest
from vrmbg.plugin.host_session import OPENING, STARTING, STOPPING, session_id, session_key
from vrmbg.plugin.requests import EngineError, EngineUnavailable
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


def test_a_keyframe_added_changed_or_removed_on_disk_is_a_new_session(tmp_path):
    """Keyframes typed as a path (or a host's own keyframe folder) decide the frames: any
    keyframe file appearing, changing or going opens the matte again (the engine keeps the
    frames before the keyframe), and files of other sequences there change nothing."""
    host = FakeHost(cached="1001-1010")
    pattern = str(tmp_path / "key.####.exr")
    settings = Settings(keyframes=pattern)
    matte = host.matte(keyframes=pattern)
    matte.open()
    assert not matte.ask(PLATE, settings, FIRST, LAST)
    (tmp_path / "notes.txt").write_text("not a keyframe")
    (tmp_path / "other.1005.exr").write_bytes(b"another sequence")
    assert not matte.ask(PLATE, settings, FIRST, LAST)
    key = tmp_path / "key.1005.exr"
    key.write_bytes(b"a matte")
    assert matte.ask(PLATE, settings, FIRST, LAST)  # added
    assert not matte.ask(PLATE, settings, FIRST, LAST)
    key.write_bytes(b"a finer matte")
    assert matte.ask(PLATE, settings, FIRST, LAST)  # changed
    key.unlink()
    assert matte.ask(PLATE, settings, FIRST, LAST)  # removed


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


class SlowStart(ClientDouble):
    """A client whose worker is not running yet: sending the first request starts it, which
    takes as long as `started` is held (a first start, a model download)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.running = False
        self.started = threading.Event()
        self.starter: list = []  # the thread each open was sent from
        self.cannot_start = ""

    def open_request(self, input, settings, *, session="", preview=False):
        self.starter.append(threading.current_thread())
        if not self.running:
            assert self.started.wait(10)
            if self.cannot_start:
                raise EngineUnavailable(self.cannot_start)
            self.running = True
        return super().open_request(input, settings, session=session)


def test_a_first_open_starts_the_engine_off_the_callers_thread_and_says_so():
    host = FakeHost()
    host.client = SlowStart(FIRST, LAST, EngineError)
    matte = host.matte()
    assert matte.follow(1003)  # a playhead with no worker running: returns at once
    analysis = matte.analyse()  # so does an Analyse
    assert matte.status.working == STARTING and not matte.is_open
    assert matte.status_line().startswith("Starting the engine")
    host.client.started.set()
    assert analysis.wait(5) and matte.is_open and 1003 in matte.valid
    assert threading.main_thread() not in host.client.starter
    assert len(host.client.ops("open")) == 1
    host.client.running = False  # a blocking caller (a render) waits for the start itself
    matte.ask(PLATE, Settings(resolution=64), FIRST, LAST)
    assert matte.exact_frame(1004).endswith("1004.exr") and matte.is_open


def test_an_engine_that_cannot_start_is_the_open_s_error_in_the_background():
    host = FakeHost()
    host.client = SlowStart(FIRST, LAST, EngineError)
    host.client.cannot_start = "the engine Python '/no/python' does not exist"
    host.client.started.set()
    matte = host.matte()
    answers: list = []
    matte.open_async().add_done_callback(answers.append)
    with pytest.raises(EngineUnavailable):  # a blocking caller gets the same error raised
        matte.open(5)
    assert answers[0]["event"] == "error" and "/no/python" in answers[0]["message"]
    assert matte.status_line() == "Error: " + host.client.cannot_start


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


class Busy(ClientDouble):
    """A client whose blocking calls report work first (the model loading again after a
    release, a frame computing) and whose clear may not answer in time."""

    clear_times_out = False

    def ensure_frame(self, session, frame, *, timeout=None):
        self.emit(progress(session, frame, 0, 1))
        self.emit(progress(session, frame, 1, 1))
        return super().ensure_frame(session, frame, timeout=timeout)

    def clear(self, session, *, timeout=60.0):
        self.emit({"event": "progress", "session": session, "frame": None, "done": 0,
                   "total": 1, "stage": "loading model"})
        if self.clear_times_out:
            raise TimeoutError("no answer to clear request h1-7 within 60 s")
        return super().clear(session)


def test_no_working_text_stays_after_a_render_a_release_or_a_failed_clear():
    host = FakeHost()
    host.client = Busy(FIRST, LAST, EngineError)
    matte = host.matte()
    matte.exact_frame(1003)
    assert matte.status.working == "" and matte.status_line() == "1 of 10 frames cached"
    host.client.emit({"event": "progress", "session": matte.session, "frame": None,
                      "done": 0, "total": 1, "stage": "loading model"})
    matte.release_models()
    assert matte.status_line() == "Released 1 model(s) from memory"
    host.client.clear_times_out = True
    with pytest.raises(TimeoutError):
        matte.clear_cache()
    assert matte.status.working == ""
    assert not matte.stop() or matte.status.working != STOPPING  # nothing ran: not "stopping"


def test_a_render_beside_an_analysis_leaves_the_analysis_progress():
    host = FakeHost(hold=True)
    matte = host.matte()
    analysis = matte.analyse()
    host.client.emit(progress(matte.session, 1002, 2, 10))
    matte.exact_frame(1001)
    assert "frame 1002 (2 of 10)" in matte.status.working
    host.client.finish_ensures()
    assert analysis.wait(5) and matte.status_line().startswith("Analysed")


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
    assert one.status.notes == two.status.notes == (
        "the engine stopped (exit code -9); restarting it",)
    host.client.emit({"event": "worker_restarted", "pid": 2, "sessions": [one.session]})
    note = "the engine stopped (exit code -9) and was restarted"
    assert one.status.notes == two.status.notes == (note,)
    one.analyse().wait(5)
    assert note in one.status_text() and one.status_line().startswith("Analysed")


def test_a_worker_the_client_gave_up_on_is_never_called_restarted():
    host = FakeHost()
    matte = host.matte()
    matte.open()
    host.client.emit({"event": "worker_died", "code": -9, "restarting": True})
    host.client.emit({"event": "worker_died", "code": -9, "restarting": False})
    assert "restarted" not in matte.status.notes[-1].replace("not restarted", "")
    assert matte.status_line() == ("The engine stopped (exit code -9) and was not restarted "
                                   "(it starts when next needed)")


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


# --------------------------------------------------------------------------- the cache on disk

GB = 1024 ** 3


class SizedCache(ClientDouble):
    """A client whose answers carry the cache's place and sizes, and that answers prunes."""

    SHOT_FILES = 105  # the shot's own files (shot.json, the cache's marker): no setting's

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.chain_bytes, self.other_chains = int(0.5 * GB), 1
        self.other_bytes = int(0.75 * GB) - self.SHOT_FILES

    @property
    def shot_bytes(self) -> int:
        return self.chain_bytes + self.other_bytes + self.SHOT_FILES

    def sizes(self) -> dict:
        return {"bytes": self.chain_bytes, "shot_bytes": self.shot_bytes,
                "other_chains": self.other_chains, "other_bytes": self.other_bytes,
                "cache_root": "/shows/x/vrmbg-cache", "shot_folder": "plate-0a1b2c3d",
                "chain_folder": "plate-0a1b2c3d/final/0123456789abcdef"}

    def open_request(self, input, settings, *, session="", preview=False):
        answer = super().open_request(input, settings, session=session).wait()
        request = DoubleRequest("open", {"session": session}, self.error_class)
        request.finish(dict(answer, **self.sizes()))
        return request

    def cache_info(self, session, *, timeout=30.0):
        return dict(super().cache_info(session), **self.sizes())

    def request(self, op, **fields):
        if op != "prune":
            return super().request(op, **fields)
        self._record(op, fields)
        freed, self.other_bytes, self.other_chains = self.other_bytes, 0, 0
        request = DoubleRequest(op, fields, self.error_class)
        request.finish(dict({"event": "done", "removed": ["5c48d6cab6dba4a5"], "kept_in_use": [],
                             "bytes_freed": freed}, **self.sizes()))
        return request


def sized_host() -> FakeHost:
    host = FakeHost()
    host.client = SizedCache(FIRST, LAST, EngineError)
    return host


def test_the_shots_cache_size_is_shown_with_the_status_and_follows_new_frames():
    host = sized_host()
    matte = host.matte()
    assert matte.cache_size_text() == ""  # not known before the engine has said
    matte.open()
    assert matte.cache_size_text() == "cache 1.2 GB (768.0 MB for other settings)"
    assert matte.status_text().splitlines()[0] == (
        "0 of 10 frames cached | cpu bf16 | cache 1.2 GB (768.0 MB for other settings)")
    host.client.chain_bytes += GB  # frames were added: the next answer says so
    matte.follow(1005)
    assert matte.cache_size_text().startswith("cache 2.2 GB")
    matte.ask(PLATE, Settings(resolution=256), FIRST, LAST)
    assert matte.cache_size_text() == ""  # other settings: not known until opened


def test_a_shot_with_one_chain_has_no_other_settings_to_speak_of():
    host = sized_host()
    host.client.other_bytes, host.client.other_chains = 0, 0  # the shot's own files remain
    matte = host.matte()
    matte.open()
    assert matte.cache_size_text() == "cache 512.0 MB"  # no "(105 bytes for other settings)"
    host.client.other_bytes, host.client.other_chains = 0, 1  # an empty chain of another
    matte.refresh_cache_size()
    assert matte.cache_size_text() == "cache 512.0 MB (0 bytes for other settings)"


def test_pruning_keeps_what_is_shown_and_says_what_it_freed():
    host = sized_host()
    matte = host.matte()
    answer = matte.prune_cache()
    (_, fields), = host.client.ops("prune")
    assert fields == {"session": matte.session, "max_bytes": 0, "scope": "shot"}
    assert answer["removed"] and matte.cache_size_text() == "cache 512.0 MB"
    assert matte.status.notes[-1] == "pruned 1 chain(s) of other settings, freed 768.0 MB"
    matte.prune_cache("20G", whole_cache=True)
    assert host.client.ops("prune")[-1][1]["max_bytes"] == 20 * GB
    assert host.client.ops("prune")[-1][1]["scope"] == "cache"
    with pytest.raises(ValueError):
        matte.prune_cache("lots")


def test_the_engines_chain_folder_is_what_a_first_save_moves():
    host = sized_host()
    one, two = host.matte(), host.matte("node2")
    one.open()
    assert (one.cache_root, one.shot_folder) == ("/shows/x/vrmbg-cache", "plate-0a1b2c3d")
    assert one.chain_folder == "plate-0a1b2c3d/final/0123456789abcdef"
    assert two.chain_folder == ""  # not open: nothing of its is in any cache yet
    assert host.hub.chain_folders("/shows/x/vrmbg-cache") == ["plate-0a1b2c3d/final/0123456789abcdef"]
    assert host.hub.chain_folders("/elsewhere") == []


def test_on_windows_opening_stops_with_one_line_and_starts_nothing(monkeypatch):
    from vrmbg.plugin.platform_check import unsupported_platform
    from vrmbg.plugin.requests import EngineUnavailable

    host = FakeHost()
    matte = host.matte()
    monkeypatch.setattr("sys.platform", "win32")
    line = unsupported_platform()
    assert "Linux and macOS" in line and "\n" not in line
    with pytest.raises(EngineUnavailable) as raised:
        matte.open()
    assert raised.value.message == line and matte.status_line() == "Error: " + line
    with pytest.raises(EngineUnavailable):
        matte.follow(1003)  # a playhead stops the same way
    assert host.client.calls == []
    monkeypatch.setattr("sys.platform", "darwin")
    assert unsupported_platform() == "" and matte.open()["event"] == "opened"


HUB_OFFLINE = ("cannot reach huggingface.co to fetch briaai/VRMBG-3.0 and it is not in the "
               "local cache: check the network or proxy, or point --model at a local folder "
               "holding config.json + model.safetensors")


def test_hub_weights_a_farm_cannot_fetch_are_said_up_front_with_the_fix():
    host = FakeHost()
    host.client.fail = HUB_OFFLINE
    matte = host.matte()
    with pytest.raises(EngineError) as raised:
        matte.exact_frame(1001)  # a render: it stops with the reason
    for shown in (raised.value.message, matte.status_line()):
        assert "cannot reach huggingface.co to fetch briaai/VRMBG-3.0" in shown
        assert "point the Model setting at a local folder" in shown and "--model" not in shown
        assert "HF_HUB_OFFLINE=1 on the farm" in shown
