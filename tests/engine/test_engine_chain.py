"""Chain keys, lossless state storage and the per-chain lock (no model needed)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch

from vrmbg.core.engine import cache, chain
from vrmbg.core.engine.housekeeping import remove_chain
from vrmbg.core.engine.lock import ChainLock, is_locked
from vrmbg.core.engine.pipeline import FramePipeline, Prepared, Run, frames_to_read
from vrmbg.core.errors import Cancelled, InputError, OutputError

FRAMES = list(range(1001, 1011))
IDENTITY = {"model": "abc", "resolution": 1024, "dtype": "bfloat16", "device": "cpu",
            "colour": "acescg->srgb", "layer": "", "part": "", "shot_start": 1001}


def keys_with(fingerprints: dict[int, str], identity=IDENTITY, start=1001) -> dict[int, str]:
    digest = chain.identity_hash(identity)
    frames = [f for f in FRAMES if f >= start]
    return chain.fold_keys(digest, frames, lambda f: fingerprints.get(f, f"size:{f}"))


def test_changing_one_plate_changes_its_key_and_every_later_key_only():
    base = keys_with({})
    changed = keys_with({1005: "size:other"})
    assert [f for f in FRAMES if base[f] == changed[f]] == FRAMES[:4]


def test_every_setting_and_the_start_frame_give_another_chain():
    base = chain.identity_hash(IDENTITY)
    for name, value in [("model", "abd"), ("resolution", 512), ("dtype", "float32"),
                        ("device", "cuda"), ("colour", "acescct->srgb"), ("layer", "beauty"),
                        ("part", "1"), ("shot_start", 1000)]:
        other = chain.identity_hash({**IDENTITY, name: value})
        assert other != base and chain.chain_id(other) != chain.chain_id(base), name
    assert chain.identity_hash(dict(reversed(list(IDENTITY.items())))) == base
    assert keys_with({}, start=1003)[1005] != keys_with({})[1005]


def test_chain_frames_order_and_preroll_window():
    frames = chain.ChainFrames([1005, 1001, 1003, 1007])  # a stepped sequence
    assert frames.first == 1001
    assert frames.between(1003, 1007) == [1003, 1005, 1007]
    assert frames.start_for(1007, 0) == 1001
    assert frames.start_for(1007, 2) == 1003
    assert frames.start_for(1003, 5) == 1001


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_state_round_trip_is_bit_exact(tmp_path, dtype):
    generator = torch.Generator().manual_seed(1)
    pred = torch.rand(1, 1, 32, 32, generator=generator).to(dtype)
    pred = pred.contiguous(memory_format=torch.channels_last)  # as a CPU model may return it
    array = cache.state_to_array(pred)
    store = cache.ChainStore(str(tmp_path / "chain"))
    store.write_state(1001, 1001, "ab" * 32, array)
    loaded = store.read_state(1001, 1001, "ab" * 32, dtype, (1, 1, 32, 32))
    back = cache.state_from_array(loaded, dtype)
    assert back.dtype == dtype and back.is_contiguous()
    assert torch.equal(back.view(-1).float(), pred.contiguous().view(-1).float())
    assert store.read_state(1001, 1001, "ab" * 32, torch.float64) is None  # wrong dtype
    assert store.read_state(1001, 1001, "cd" * 32, dtype) is None  # other key


def test_new_state_replaces_the_frames_stale_states(tmp_path):
    store = cache.ChainStore(str(tmp_path / "chain"))
    array = np.zeros((1, 1, 4, 4), np.float32)
    store.write_state(1003, 1001, "aa" * 32, array)
    store.scan_states()
    store.write_state(1003, 1001, "bb" * 32, array)
    names = os.listdir(store.state_dir)
    assert names == [os.path.basename(store.state_path(1003, 1001, "bb" * 32))]


def test_lock_is_exclusive_and_survives_a_removed_folder(tmp_path):
    folder = tmp_path / "chain"
    first = ChainLock(str(folder / cache.LOCK_FILE))
    second = ChainLock(str(folder / cache.LOCK_FILE))
    assert first.try_acquire()
    assert is_locked(str(folder))
    assert not second.try_acquire()
    assert not second.acquire(poll=0.01, stop=lambda: True)
    assert not remove_chain(str(folder))  # never delete a chain in use
    first.release()
    assert not is_locked(str(folder))
    assert second.try_acquire()
    os.remove(folder / cache.LOCK_FILE)  # someone removed the chain under a holder
    third = ChainLock(str(folder / cache.LOCK_FILE))
    assert third.try_acquire()  # a fresh lock file: the old holder no longer guards it
    second.release()
    third.release()


def test_sweep_removes_only_temp_files(tmp_path):
    store = cache.ChainStore(str(tmp_path / "chain"), name="sh010")
    os.makedirs(store.matte_dir)
    keep = store.matte_path(1001)
    temp = os.path.join(store.matte_dir, ".sh010.1002.vrmbg-tmp-1-abcd1234.exr")
    for path in (keep, temp):
        open(path, "wb").close()
    assert store.sweep_temp_files() == 1
    assert os.listdir(store.matte_dir) == [os.path.basename(keep)]


# --------------------------------------------------------------------------- pipeline

class FakeWork:
    """Stand-in callables that record the order of events across threads."""

    def __init__(self, bad_frame=None):
        self.bad_frame = bad_frame
        self.steps: list[tuple[int, int | None]] = []
        self.written: list[int] = []

    def read(self, frame):
        if frame == self.bad_frame:
            raise InputError("corrupt", path=f"p.{frame}.exr", frame=frame)
        return Prepared(frame, frame * 10, None, 2, 2)

    def step(self, item, prev, prior):
        self.steps.append((item.frame, None if prev is None else prev.frame))
        return item.frame, item.frame

    def write(self, item, payload):
        assert payload == item.frame
        self.written.append(item.frame)


def test_pipeline_feeds_previous_frame_and_writes_everything_in_order():
    work = FakeWork()
    runs = [Run(prior=None, frames=[1, 2, 3], start=1), Run(prior=5, frames=[6, 7], start=1)]
    assert frames_to_read(runs) == [1, 2, 3, 5, 6, 7]
    reported = []
    FramePipeline(read=work.read, step=work.step, load_prior=lambda f: f,
                  write=work.write).run(runs, cancelled=lambda: False,
                                        on_written=reported.append)
    assert work.steps == [(1, None), (2, 1), (3, 2), (6, 5), (7, 6)]
    assert reported == [1, 2, 3, 6, 7]


def test_pipeline_reader_error_surfaces_as_the_original_input_error():
    work = FakeWork(bad_frame=4)
    reported = []
    with pytest.raises(InputError) as error:
        FramePipeline(read=work.read, step=work.step, load_prior=lambda f: f,
                      write=work.write).run([Run(None, [1, 2, 3, 4, 5], 1)],
                                            cancelled=lambda: False, on_written=reported.append)
    assert error.value.frame == 4 and error.value.path == "p.4.exr"
    assert reported == [1, 2, 3]  # finished frames are written before the error propagates


def test_pipeline_cancel_between_frames_keeps_finished_ones():
    work = FakeWork()
    reported = []
    with pytest.raises(Cancelled):
        FramePipeline(read=work.read, step=work.step, load_prior=lambda f: f,
                      write=work.write).run([Run(None, list(range(1, 9)), 1)],
                                            cancelled=lambda: len(work.steps) >= 3,
                                            on_written=reported.append)
    assert reported == [1, 2, 3] and work.written == [1, 2, 3]


def test_an_unusable_cache_folder_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    lock = ChainLock(str(blocker / "chain" / cache.LOCK_FILE))
    with pytest.raises(OutputError) as error:
        lock.try_acquire()
    assert str(blocker) in str(error.value)


# --------------------------------------------------------------------------- pipeline thread set-up

class SetupRecorder(FakeWork):
    """FakeWork that also records which threads were set up and which did the work."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.set_up: list[tuple[str, int]] = []
        self.read_on: set[int] = set()
        self.write_on: set[int] = set()

    def setup(self):
        with self.lock:
            self.set_up.append((threading.current_thread().name, threading.get_ident()))

    def read(self, frame):
        with self.lock:
            self.read_on.add(threading.get_ident())
        return super().read(frame)

    def write(self, item, payload):
        with self.lock:
            self.write_on.add(threading.get_ident())
        super().write(item, payload)


def test_pipeline_thread_setup_runs_on_reader_and_writer_threads_not_the_caller():
    work = SetupRecorder()
    runs = [Run(prior=None, frames=[1, 2, 3, 4], start=1), Run(prior=6, frames=[7, 8], start=1)]
    reported = []
    FramePipeline(read=work.read, step=work.step, load_prior=lambda f: f, write=work.write,
                  thread_setup=work.setup).run(runs, cancelled=lambda: False,
                                               on_written=reported.append)

    names = [name for name, _ in work.set_up]
    idents = {ident for _, ident in work.set_up}
    assert threading.get_ident() not in idents
    assert len(idents) == len(work.set_up)  # once per thread
    assert any(name.startswith("vrmbg-read") for name in names)
    assert sum(name.startswith("vrmbg-write") for name in names) == 1
    assert work.read_on <= idents and work.write_on <= idents  # set up before any work
    assert work.steps == [(1, None), (2, 1), (3, 2), (4, 3), (7, 6), (8, 7)]
    assert reported == [1, 2, 3, 4, 7, 8] and work.written == reported


class SlowFirstWrites(SetupRecorder):
    """Writes that finish out of order: the earlier the frame, the longer its write takes."""

    def write(self, item, payload):
        time.sleep(0.02 * max(0, 6 - item.frame))
        super().write(item, payload)


def test_several_writers_write_side_by_side_and_report_in_order():
    work = SlowFirstWrites()
    reported = []
    FramePipeline(read=work.read, step=work.step, load_prior=lambda f: f, write=work.write,
                  writers=3, thread_setup=work.setup).run(
        [Run(None, [1, 2, 3, 4, 5, 6], 1)], cancelled=lambda: False,
        on_written=reported.append)
    assert reported == [1, 2, 3, 4, 5, 6]  # progress and outputs follow the shot's order
    assert sorted(work.written) == reported and work.written != reported  # written at once
    assert len(work.write_on) > 1
    assert sum(name.startswith("vrmbg-write") for name, _ in work.set_up) <= 3


class OneFailedWrite(SlowFirstWrites):
    """Frame 2's write fails, slowly: the writes of later frames finish before it does."""

    def write(self, item, payload):
        if item.frame == 2:
            time.sleep(0.1)
            raise OutputError("disk quota exceeded", path="m.2.exr", frame=2)
        super().write(item, payload)


def test_a_failed_write_still_reports_every_frame_the_other_writers_finished():
    work = OneFailedWrite()
    reported = []
    with pytest.raises(OutputError) as error:
        FramePipeline(read=work.read, step=work.step, load_prior=lambda f: f,
                      write=work.write, writers=3).run(
            [Run(None, [1, 2, 3, 4], 1)], cancelled=lambda: False, on_written=reported.append)
    assert error.value.frame == 2
    assert sorted(work.written) == [1, 3, 4]
    assert reported == [1, 3, 4]  # what is on disk is what is reported


def test_writer_threads_follow_the_readers():
    from vrmbg.core.cpu import writer_threads

    assert [writer_threads(n) for n in (1, 2, 3, 4, 8)] == [1, 1, 1, 2, 4]


def test_pipeline_without_thread_setup_still_runs():
    work = SetupRecorder()
    FramePipeline(read=work.read, step=work.step, load_prior=lambda f: f,
                  write=work.write).run([Run(None, [1, 2, 3], 1)], cancelled=lambda: False,
                                        on_written=lambda frame: None)
    assert work.set_up == [] and work.written == [1, 2, 3]
