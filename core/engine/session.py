"""Matte sessions: any frame of a shot, exactly as one straight run from the shot's first frame.

    session = MatteSession(plates, colour, stepper, cache_root, settings)
    path = session.ensure(1050)            # the plate-resolution matte EXR of frame 1050

`ensure(N)` answers at once when frame N is cached and valid. Otherwise it takes the chain's
lock, finds the greatest frame k < N whose stored state is valid (or the shot's first frame),
and computes k+1..N in order through the pipeline, writing each frame's matte and state as it
finishes. Because every continuation starts from the exact stored prediction of frame k and the
plate of frame k (re-read and re-prepared, which is deterministic), the result is bit-identical
to a straight run whatever the order of requests, cancellations, or processes involved.

A second process asking for frames of a chain that is being computed waits for the lock and
picks up whatever the first one has written meanwhile (often everything it wanted).

The preview tier (`preview=True` with `preview_resolution` and/or `preroll` set) computes at a
lower inference size and/or starts at most `preroll` frames before the requested frame with a
zero prior; it lives in its own folders, its mattes say `vrmbg:tier=preview`, and a final
request never sees it. A preview request is answered with the final matte when that is cached.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..cpu import lower_thread_priority, reader_threads
from ..errors import Cancelled, InputError, UsageError
from ..mattes import write_matte
from .cache import (ChainLock, ChainStore, default_cache_root, plate_name, plate_source,
                    read_matte_stamp, shot_id, state_from_array, state_to_array,
                    write_shot_file)
from .chain import ChainFrames, chain_id, fold_keys, identity_hash, next_key, ENGINE_FORMAT
from .pipeline import FramePipeline, Prepared, Run

ProgressCallback = Callable[[int, int, int], None]  # (frames done, frames to do, frame)
LOCK_POLL_SECONDS = 0.1
WAIT_RECHECK_SECONDS = 0.25  # while another process holds the lock, look for its results
MAX_REPLANS = 3  # an unreadable state file is dropped and the plan made again


@dataclass
class EngineCounters:
    """What a session did, for the command line's `--json` summary."""

    frames_requested: int = 0
    frames_computed: int = 0  # model steps run
    frames_from_cache: int = 0  # requested frames answered without computing
    states_loaded: int = 0  # stored predictions continued from
    seconds_computing: float = 0.0  # wall time of compute passes (I/O overlapped included)
    seconds_in_model: float = 0.0  # time inside the model step alone

    @property
    def seconds_per_computed_frame(self) -> float:
        """Wall seconds per model step (0 when nothing was computed)."""
        return self.seconds_computing / self.frames_computed if self.frames_computed else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly counters."""
        return {**asdict(self), "seconds_per_computed_frame": self.seconds_per_computed_frame}


class _StaleState(Exception):
    """A state file named valid could not be read back (then it is removed and re-planned)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass
class _Tier:
    """One chain of the shot: final (exact) or preview (lower size and/or bounded pre-roll)."""

    name: str
    stepper: Any
    preroll: int
    identity: dict[str, Any]
    digest: str
    chain_id: str
    store: ChainStore


def _stamp(tier: _Tier, start: int, key: str) -> dict[str, Any]:
    """The `vrmbg:*` attributes written into each cached matte (checked on every answer)."""
    return {"key": key, "start": start, "tier": tier.name, "chain": tier.chain_id,
            "resolution": int(tier.stepper.resolution), "preroll": tier.preroll,
            "exact": int(tier.name == "final")}


def _cancel_check(cancel: Any) -> Callable[[], bool]:
    """A no-argument test from None, a callable, or a flag object with `is_set()`."""
    if cancel is None:
        return lambda: False
    if hasattr(cancel, "is_set"):
        return lambda: bool(cancel.is_set())
    if callable(cancel):
        return lambda: bool(cancel())
    raise UsageError(f"cancel must be callable or have is_set(), got {type(cancel).__name__}")


class MatteSession:
    """One shot under one set of settings, answering frames from and into the temporal cache."""

    def __init__(self, plates: Any, colour: Any, stepper: Any, cache_root: str,
                 settings: Mapping[str, Any], preview: bool = False) -> None:
        """`stepper` runs at the final inference size; the preview stepper is derived from it."""
        self.plates = plates
        self.colour = colour
        self.settings = dict(settings)
        self.content_hash = bool(self.settings.get("content_hash", False))
        self.frames = ChainFrames(plates.frames)
        self.layer = str(getattr(plates, "layer", self.settings.get("layer", "")) or "")
        self.part = str(getattr(plates, "part", self.settings.get("part", "")) or "")
        self.cache_root = default_cache_root(cache_root or self.settings.get("cache_dir", ""))
        self.shot_dir = os.path.join(self.cache_root, shot_id(plates, self.layer, self.part))
        self.counters = EngineCounters()
        self.bad_pixels: dict[int, int] = {}  # frame -> NaN/Inf pixels zeroed (callers warn)
        # reader threads (decode + colour + resize) beside the model; a movie decodes in order
        self.io_threads = (reader_threads(int(self.settings.get("threads") or 0))
                           if hasattr(plates, "path_for") else 1)
        self._content_memo: dict[tuple, str] = {}
        self._call_memo: dict[int, str] = {}
        self._final = self._make_tier("final", stepper, 0)
        self._tier = self._final
        if preview:
            self._tier = self._preview_tier(stepper)

    # ------------------------------------------------------------------ construction

    def _preview_tier(self, stepper: Any) -> _Tier:
        """The preview chain, or the final one when no preview setting is active."""
        size = int(self.settings.get("preview_resolution") or 0)
        preroll = max(0, int(self.settings.get("preroll") or 0))
        lower = size and size != stepper.resolution
        if not lower and not preroll:
            return self._final
        preview_stepper = type(stepper)(stepper.loaded, size) if lower else stepper
        return self._make_tier("preview", preview_stepper, preroll)

    def _make_tier(self, name: str, stepper: Any, preroll: int) -> _Tier:
        """Identity, chain id and folder of one tier's chain."""
        identity = {
            "engine": ENGINE_FORMAT,
            "tier": name,
            "model": str(stepper.loaded.fingerprint),
            "resolution": int(stepper.resolution),
            "dtype": str(stepper.dtype).replace("torch.", ""),
            "device": stepper.device.type,
            "colour": str(self.colour.identity),
            "layer": self.layer,
            "part": self.part,
            "shot_start": self.frames.first,
            "plate_fingerprint": "content" if self.content_hash else "size+mtime",
            "preroll": preroll,
        }
        digest = identity_hash(identity)
        cid = chain_id(digest)
        name_prefix = plate_name(self.plates)
        padding = max(4, int(getattr(getattr(self.plates, "pattern", None), "padding", 4) or 4))
        store = ChainStore(os.path.join(self.shot_dir, name, cid), name=name_prefix,
                           padding=padding)
        return _Tier(name, stepper, preroll, identity, digest, cid, store)

    # ------------------------------------------------------------------ public facts

    @property
    def stepper(self) -> Any:
        """The frame stepper of this session's tier (its model, device and inference size)."""
        return self._tier.stepper

    @property
    def tier(self) -> str:
        """'final' or 'preview'."""
        return self._tier.name

    @property
    def chain_id(self) -> str:
        """Short id of this session's chain (its folder name)."""
        return self._tier.chain_id

    @property
    def folder(self) -> str:
        """This session's chain folder."""
        return self._tier.store.folder

    @property
    def matte_pattern(self) -> str:
        """The cached matte sequence as a `####` pattern, for a Read node or an Image node."""
        return self._tier.store.matte_pattern

    @property
    def identity(self) -> dict[str, Any]:
        """The settings this chain is keyed on (readable copy)."""
        return dict(self._tier.identity)

    def matte_path(self, frame: int) -> str:
        """Where the matte of `frame` lives in this chain (whether or not it is computed yet)."""
        return self._tier.store.matte_path(frame)

    # ------------------------------------------------------------------ requests

    def ensure(self, frame: int, *, progress: ProgressCallback | None = None,
               cancel: Any = None) -> str:
        """Path of the plate-resolution matte EXR of `frame`, computing what is missing.

        `progress(done, total, frame)` is called after each computed frame is written; `cancel`
        (a callable or an object with `is_set()`) is checked between frames: finished frames are
        kept and Cancelled is raised.
        """
        return self.ensure_range([frame], progress=progress, cancel=cancel)[int(frame)]

    def ensure_range(self, frames: Iterable[int], *, progress: ProgressCallback | None = None,
                     cancel: Any = None) -> dict[int, str]:
        """Matte paths of several frames (e.g. a render's range) computed in one ordered pass."""
        targets = sorted({int(f) for f in frames})
        for frame in targets:
            if frame not in self.frames:
                raise InputError(f"frame {frame} is not a frame of the plate sequence "
                                 f"({self.frames.first}-{self.frames.frames[-1]})",
                                 path=plate_source(self.plates), frame=frame)
        self._call_memo = {}
        self.counters.frames_requested += len(targets)
        answers = self._answer_from_cache(targets)
        self.counters.frames_from_cache += len(answers)
        missing = [t for t in targets if t not in answers]
        if missing:
            answers.update(self._compute(missing, progress, _cancel_check(cancel)))
        self._tier.store.touch()
        return {t: answers[t] for t in targets}

    def expected_keys(self, frames: Iterable[int]) -> dict[int, str]:
        """The key each frame has in this chain for today's plates, as its matte carries it
        (`vrmbg:key`), so callers can tell a finished output from a stale one.

        For a pre-roll chain: the key of the valid cached matte, else the key the frame gets
        from its own pre-roll start. Frames outside the shot are left out.
        """
        targets = sorted({int(f) for f in frames} & set(self.frames.frames))
        if not targets:
            return {}
        self._call_memo = {}
        tier = self._tier
        if tier.preroll == 0:
            keys = self._keys(tier, self.frames.first, targets[-1])
            return {frame: keys[frame] for frame in targets}
        expected = {}
        for frame in targets:
            stamp = read_matte_stamp(tier.store.matte_path(frame))
            if stamp and self._valid_in_tier(tier, frame, None):
                expected[frame] = str(stamp["key"])
            else:
                start = self.frames.start_for(frame, tier.preroll)
                expected[frame] = self._keys(tier, start, frame)[frame]
        return expected

    def cached_frames(self) -> list[int]:
        """Frames of this tier whose cached matte is valid for today's plates."""
        self._call_memo = {}
        on_disk = [f for f in self.frames.frames
                   if os.path.isfile(self._tier.store.matte_path(f))]
        return sorted(self._answer_from_cache(on_disk, tier_only=True))

    # ------------------------------------------------------------------ keys and validity

    def _fingerprint(self, frame: int) -> str:
        """Plate fingerprint of `frame`, read once per request (content hashes once per file)."""
        cached = self._call_memo.get(frame)
        if cached is not None:
            return cached
        if self.content_hash and hasattr(self.plates, "path_for"):
            try:
                stat = os.stat(self.plates.path_for(frame))
                memo_key = (frame, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
            except OSError:
                memo_key = None
            value = self._content_memo.get(memo_key) if memo_key else None
            if value is None:
                value = self.plates.fingerprint(frame, content=True)
                if memo_key:
                    self._content_memo[memo_key] = value
        else:
            value = self.plates.fingerprint(frame, content=self.content_hash)
        self._call_memo[frame] = value
        return value

    def _keys(self, tier: _Tier, start: int, last: int) -> dict[int, str]:
        """Keys of the chain frames start..last for a chain starting at `start`."""
        return fold_keys(tier.digest, self.frames.between(start, last), self._fingerprint)

    def _is_valid(self, tier: _Tier, frame: int, start: int, key: str) -> bool:
        """The frame's matte carries this key and start, and its state is on disk."""
        stamp = read_matte_stamp(tier.store.matte_path(frame))
        return (stamp is not None and stamp.get("key") == key and stamp.get("start") == start
                and stamp.get("tier") == tier.name and tier.store.has_state(frame, start, key))

    def _valid_in_tier(self, tier: _Tier, frame: int,
                       final_keys: dict[int, str] | None) -> bool:
        """Validity of one frame of `tier`, whatever chain start its matte was computed from."""
        if tier.preroll == 0:
            return final_keys is not None and self._is_valid(tier, frame, self.frames.first,
                                                             final_keys[frame])
        stamp = read_matte_stamp(tier.store.matte_path(frame))
        start = stamp.get("start") if stamp else None
        if not isinstance(start, int) or start not in self.frames or start > frame:
            return False
        key = self._keys(tier, start, frame)[frame]
        return self._is_valid(tier, frame, start, key)

    def _answer_from_cache(self, targets: list[int], tier_only: bool = False) -> dict[int, str]:
        """Targets whose cached matte is valid now: frame -> path (final mattes preferred)."""
        if not targets:
            return {}
        answers: dict[int, str] = {}
        first = self.frames.first
        if self._tier is not self._final and not tier_only:
            final_keys = self._keys(self._final, first, targets[-1])
            for frame in targets:  # a valid final matte beats any preview
                if self._is_valid(self._final, frame, first, final_keys[frame]):
                    answers[frame] = self._final.store.matte_path(frame)
        rest = [frame for frame in targets if frame not in answers]
        if rest:
            exact_keys = (self._keys(self._tier, first, rest[-1]) if self._tier.preroll == 0
                          else None)
            for frame in rest:
                if self._valid_in_tier(self._tier, frame, exact_keys):
                    answers[frame] = self._tier.store.matte_path(frame)
        return answers

    # ------------------------------------------------------------------ computing

    def _compute(self, missing: list[int], progress: ProgressCallback | None,
                 cancelled: Callable[[], bool]) -> dict[int, str]:
        """Take the chain lock, plan from the cache, and compute the missing frames."""
        tier = self._tier
        lock = ChainLock(tier.store.lock_path)
        answered = self._wait_for_lock(lock, missing, cancelled)
        if answered is not None:  # another process computed them while we waited
            self.counters.frames_from_cache += len(answered)
            return answered
        try:
            tier.store.ensure_folders(self._describe(tier))
            write_shot_file(self.shot_dir, {"plate": plate_source(self.plates),
                                            "layer": self.layer, "part": self.part})
            tier.store.sweep_temp_files()
            self._call_memo = {}  # plates may have changed while we waited
            answers = self._answer_from_cache(missing, tier_only=True)
            self.counters.frames_from_cache += len(answers)
            todo = [t for t in missing if t not in answers]
            if todo:
                try:
                    self._plan_and_run(tier, todo, progress, cancelled)
                finally:
                    if tier.preroll == 0:
                        self._drop_stale(tier)
                answers.update({t: tier.store.matte_path(t) for t in todo})
            return answers
        finally:
            lock.release()

    def _wait_for_lock(self, lock: ChainLock, missing: list[int],
                       cancelled: Callable[[], bool]) -> dict[int, str] | None:
        """Wait for the chain lock; returns the answers instead if another process made them."""
        answered: dict[int, str] = {}
        next_check = time.monotonic() + WAIT_RECHECK_SECONDS

        def stop_waiting() -> bool:
            nonlocal next_check
            if cancelled():
                raise Cancelled("cancelled while waiting for another render of this shot",
                                path=self._tier.store.folder)
            if time.monotonic() < next_check:
                return False
            self._call_memo = {}
            answered.clear()  # only what is valid now counts
            answered.update(self._answer_from_cache(missing, tier_only=True))
            next_check = time.monotonic() + WAIT_RECHECK_SECONDS
            return len(answered) == len(missing)

        if lock.acquire(poll=LOCK_POLL_SECONDS, stop=stop_waiting):
            return None
        return answered

    def _plan_and_run(self, tier: _Tier, todo: list[int], progress: ProgressCallback | None,
                      cancelled: Callable[[], bool]) -> None:
        """Plan runs from the states on disk and compute them (re-planning past bad states)."""
        for attempt in range(MAX_REPLANS + 1):
            states = tier.store.scan_states()
            runs = (self._plan_exact(tier, todo, states) if tier.preroll == 0
                    else self._plan_preroll(tier, todo, states))
            try:
                self._run(tier, runs, progress, cancelled)
                return
            except _StaleState as bad:
                if attempt == MAX_REPLANS:
                    raise
                try:
                    os.remove(bad.path)
                except OSError:
                    pass

    def _drop_stale(self, tier: _Tier) -> int:
        """Delete cached frames of the exact chain that no longer match today's plates.

        Hosts read the chain's matte folder as a sequence, so a matte left over from before a
        plate was replaced must not stay visible. Returns the number of frames dropped.
        """
        states = tier.store.scan_states()
        stored = sorted(f for f in states if f in self.frames)
        if not stored:
            return 0
        first = self.frames.first
        try:
            keys = self._keys(tier, first, stored[-1])
        except InputError:  # a plate is missing: leave its frames for later requests
            return 0
        dropped = 0
        for frame in stored:
            if self._has_state(states, frame, first, keys[frame]):
                continue
            for path in [entry.path for entry in states[frame]] + [tier.store.matte_path(frame)]:
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
            dropped += 1
        return dropped

    @staticmethod
    def _has_state(states: Mapping[int, list], frame: int, start: int, key: str) -> bool:
        """True when the scanned states hold `frame` for this start and key."""
        return any(e.start == start and key.startswith(e.key) for e in states.get(frame, ()))

    def _plan_exact(self, tier: _Tier, todo: list[int], states: Mapping[int, list]) -> list[Run]:
        """Runs for an exact chain: resume after the greatest stored state before the first
        missing frame, skip frames already valid, compute every other frame up to the last."""
        first = self.frames.first
        keys = self._keys(tier, first, todo[-1])
        before = self.frames.between(first, todo[0])[:-1]
        prior = next((f for f in reversed(before) if self._has_state(states, f, first, keys[f])),
                     None)
        begin = first if prior is None else self.frames.frames[self.frames.index(prior) + 1]
        wanted = set(todo)
        runs: list[Run] = []
        current: Run | None = None
        for frame in self.frames.between(begin, todo[-1]):
            skip = (frame > todo[0] and frame not in wanted
                    and self._has_state(states, frame, first, keys[frame])
                    and self._is_valid(tier, frame, first, keys[frame]))
            if skip:  # already valid: later frames continue from its stored state
                current, prior = None, frame
                continue
            if current is None:
                current = Run(prior=prior, frames=[], start=first, keys=keys)
                runs.append(current)
            current.frames.append(frame)
        return runs

    def _plan_preroll(self, tier: _Tier, todo: list[int],
                      states: Mapping[int, list]) -> list[Run]:
        """Runs for a bounded pre-roll chain: each frame starts at most `preroll` frames earlier
        (from a stored state in that window, else a zero prior); close frames share a run."""
        runs: list[Run] = []
        for target in todo:
            last = runs[-1] if runs else None
            if last and (self.frames.index(target) - self.frames.index(last.frames[-1])
                         <= tier.preroll):
                self._extend(last, self.frames.between(last.frames[-1], target)[1:])
                continue
            runs.append(self._preroll_run(tier, target, states))
        return runs

    def _extend(self, run: Run, frames: list[int]) -> None:
        """Continue a run (and its keys) over more frames of the same chain."""
        key = run.keys[run.frames[-1]]
        for frame in frames:
            key = next_key(key, frame, self._fingerprint(frame))
            run.keys[frame] = key
            run.frames.append(frame)

    def _preroll_run(self, tier: _Tier, target: int, states: Mapping[int, list]) -> Run:
        """The run reaching `target`: from a valid stored state within the pre-roll window, or
        from a zero prior `preroll` frames before."""
        window_start = self.frames.start_for(target, tier.preroll)
        window = self.frames.between(window_start, target)[:-1]
        for frame in reversed(window):
            for entry in states.get(frame, ()):
                if entry.start not in self.frames or entry.start > frame:
                    continue
                keys = self._keys(tier, entry.start, frame)
                if keys[frame].startswith(entry.key):
                    run = Run(prior=frame, frames=[frame], start=entry.start, keys=keys)
                    self._extend(run, self.frames.between(frame, target)[1:])
                    run.frames.pop(0)
                    return run
        frames = self.frames.between(window_start, target)
        return Run(prior=None, frames=frames, start=window_start,
                   keys=self._keys(tier, window_start, target))

    def _run(self, tier: _Tier, runs: list[Run], progress: ProgressCallback | None,
             cancelled: Callable[[], bool]) -> None:
        """Compute the planned runs through the pipeline, counting and reporting each frame."""
        work = _FrameWork(self, tier, runs)
        total = sum(len(run.frames) for run in runs)
        done = 0

        def on_written(frame: int) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, frame)

        pipeline = FramePipeline(read=work.read, step=work.step, load_prior=work.load_prior,
                                 write=work.write, readers=self.io_threads,
                                 thread_setup=lower_thread_priority)
        began = time.perf_counter()
        try:
            pipeline.run(runs, cancelled=cancelled, on_written=on_written)
        finally:
            self.counters.seconds_computing += time.perf_counter() - began

    def _describe(self, tier: _Tier) -> dict[str, Any]:
        """What chain.json records about a chain (for people and `vrmbg cache`)."""
        return {"chain_id": tier.chain_id, "tier": tier.name, "identity": tier.identity,
                "plate": plate_source(self.plates), "matte_pattern": tier.store.matte_pattern,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "model_source": str(getattr(tier.stepper.loaded, "source", ""))}


class _FrameWork:
    """The per-frame operations of one compute pass, as the pipeline calls them.

    `read` runs on reader threads, `step` and `load_prior` on the caller's thread (the model
    is serial), `write` on the writer thread.
    """

    def __init__(self, session: MatteSession, tier: _Tier, runs: list[Run]) -> None:
        self.session, self.tier, self.stepper = session, tier, tier.stepper
        self.where = {f: run for run in runs for f in run.frames}  # frame -> run (start, keys)
        for run in runs:
            if run.prior is not None:
                self.where.setdefault(run.prior, run)

    def read(self, frame: int) -> Prepared:
        """Decode, colour-convert and resize one plate frame for the model.

        A half plate stays half until the colour conversion widens it block by block, and
        each frame is converted on its reader thread: the frames in flight are the
        parallelism, so no frame spreads over the cores the model is using.
        """
        plate = self.session.plates.read(frame, keep_half=True, threads=1)
        colour = self.session.colour
        rgb01 = colour.to_model(plate.rgb, threads=1)
        bad = int(getattr(colour, "last_bad_pixels", 0) or 0)  # per thread in ColourTransform
        if bad:
            self.session.bad_pixels[frame] = bad
        cur = self.stepper.prepare(rgb01)
        return Prepared(frame, cur, plate.info, plate.rgb.shape[0], plate.rgb.shape[1])

    def load_prior(self, frame: int) -> Any:
        """The stored prediction of `frame`, exactly as it was computed."""
        run = self.where[frame]
        resolution = self.stepper.resolution
        array = self.tier.store.read_state(frame, run.start, run.keys[frame], self.stepper.dtype,
                                           (1, 1, resolution, resolution))
        if array is None:
            raise _StaleState(self.tier.store.state_path(frame, run.start, run.keys[frame]))
        self.session.counters.states_loaded += 1
        return state_from_array(array, self.stepper.dtype, self.stepper.device)

    def step(self, item: Prepared, prev: Prepared | None, prior: Any) -> tuple[Any, Any]:
        """One model step; the next frame continues from the state as stored on disk."""
        counters = self.session.counters
        began = time.perf_counter()
        pred = self.stepper.step(item.cur, prev.cur if prev else None, prior)
        array = state_to_array(pred)  # the exact bits a resumed run will load
        state = state_from_array(array, self.stepper.dtype, self.stepper.device)
        counters.seconds_in_model += time.perf_counter() - began
        counters.frames_computed += 1
        return state, (state, array)

    def write(self, item: Prepared, payload: tuple[Any, np.ndarray]) -> None:
        """The plate-resolution matte first, then the state that makes the frame valid."""
        state, array = payload
        run = self.where[item.frame]
        key = run.keys[item.frame]
        alpha = self.stepper.to_plate(state, item.height, item.width)
        write_matte(self.tier.store.matte_path(item.frame), alpha, like=item.info,
                    compression="zip", attributes=_stamp(self.tier, run.start, key))
        self.tier.store.write_state(item.frame, run.start, key, array)
