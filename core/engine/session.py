"""Matte sessions: any frame of a shot, exactly as one straight run from the shot's first frame.

    session = open_session("plates/sh010.####.exr", settings)   # engine.opening
    path = session.ensure(1050)            # the plate-resolution matte EXR of frame 1050

`ensure(N)` answers at once when frame N is cached and valid. Otherwise it takes the chain's
lock, plans from the cache (the greatest frame k < N whose stored state is valid, or the
shot's first frame: `planning`), and computes k+1..N in order through the pipeline, writing
each frame's matte and state as it finishes. Because every continuation starts from the exact
stored prediction of frame k and the plate of frame k (re-read and re-prepared, which is
deterministic), the result is bit-identical to a straight run whatever the order of
requests, cancellations, or processes involved.

A second process asking for frames of a chain that is being computed waits for the lock and
picks up whatever the first one has written meanwhile (often everything it wanted).

The preview tier (`preview=True` with `preview_resolution` and/or `preroll` set) computes at a
lower inference size and/or starts at most `preroll` frames before the requested frame with a
zero prior (`tiers`); it lives in its own folders, its mattes say `vrmbg:tier=preview`, and a
final request never sees it. A preview request is answered with the final matte when that is
cached.

Keyframes (the `keyframes` setting: the artist's own mattes for some frames) are taken as
given: a keyframe's matte is the artist's, its state (the next frame's prior) is that matte at
the model's size, and the keys of its frame and every later one hold its content hash
(`chain.PlateFingerprints`), so frames before it stay valid whatever keyframes come and go
in the keyframe folder. Once it holds a keyframe, the folder itself (the pattern) is part of
the chain identity: two sessions of one shot with different keyframe sources never share (or
overwrite) mattes, and an empty keyframe folder is the shot's plain chain.

Threads: one compute pass at a time per session (`ensure*` from one thread). `status()`,
`cached_frames()`, `expected_keys()`, `matte_path()` and the properties are safe to call from
other threads while a pass runs: they read files and lock-protected counters only.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from ..cpu import lower_thread_priority, reader_threads, writer_threads
from ..errors import Cancelled, InputError, UsageError
from ..fs import remove_file
from ..io.edits import resolve_cuts
from ..io.frames import format_frame_ranges
from ..io.keyframes import KeyframeSequence
from ..io.mattes import read_matte_stamp
from ..io.plate_identity import plate_name, plate_part, plate_source, shot_id
from .cache import default_cache_root, write_shot_file
from .chain import (ENGINE_FORMAT, ChainFrames, ContentMemo, PlateFingerprints,
                    compute_identity, shot_frames)
from .cuts import DETECTOR_ID
from .frame_work import (EngineCounters, EnsureResult, FrameWork, MatteSink, ProgressCallback,
                         StaleState)
from .interfaces import ModelColour, Plates, Stepper, plate_layer, plate_padding
from .lock import ChainLock
from .pipeline import FramePipeline, Run
from .settings import SettingsLike, as_settings
from .tiers import ExactChain, PerFrameChain, PrerollChain, Tier

LOCK_POLL_SECONDS = 0.1
WAIT_RECHECK_SECONDS = 0.25  # while another process holds the lock, look for its results
MAX_REPLANS = 3  # an unreadable state file is dropped and the plan made again

# Which chain-identity field each result-affecting schema setting (`affects_result=True`)
# reaches. A setting that changes mattes but reaches no field would let two different
# results share a chain; tests check this table against the schema.
SETTING_IN_IDENTITY: dict[str, str] = {
    "layer": "layer", "part": "part",
    "ocio": "colour", "input_colorspace": "colour", "model_colorspace": "colour",
    "display": "colour", "view": "colour",
    "model": "model", "revision": "model", "trust_remote_code": "model",
    "resolution": "resolution", "preview_resolution": "resolution",
    "device": "device", "precision": "dtype", "threads": "compute",
    "preroll": "preroll", "shot_start": "shot_start",
    "cuts": "cuts", "detect_cuts": "cuts",
    # the keyframe folder names the chain; each keyframe's content reaches the frame keys
    # (`chain.PlateFingerprints`), so keyframes added, changed or removed in that folder keep
    # the chain's frames before the first one
    "keyframes": "keyframes",
    "upsample": "upsample", "upsample_radius": "upsample", "upsample_eps": "upsample",
}


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

    def __init__(self, plates: Plates, colour: ModelColour, stepper: Stepper, cache_root: str,
                 settings: SettingsLike, preview: bool = False, readers: int = 0,
                 device_colour: Any = None) -> None:
        """`stepper` runs at the final inference size; the preview stepper is derived from it.
        `readers` frames are read at once (0 = from the thread budget, `cpu.reader_threads`).
        `device_colour` (a `DeviceColour`) converts plates on the model's device instead of
        `colour`'s CPU processor. Sessions are opened by `engine.opening` (`open_shot`)."""
        self.plates = plates
        self.colour = colour
        self.device_colour = device_colour
        self.settings = as_settings(settings)
        self.content_hash = self.settings.content_hash
        self.detect_cuts = self.settings.detect_cuts
        shot = shot_frames(plates.frames, self.settings.shot_start)
        # cut lists count from the plates' first frame (a timeline starts there); cuts before
        # the shot start are dropped by ChainFrames
        cuts = resolve_cuts(self.settings.cuts, sorted(plates.frames))
        self.frames = ChainFrames(shot, cuts)
        self.layer = plate_layer(plates, self.settings.layer)
        self.part = plate_part(plates)  # the part read, by name, however it was asked for
        self.cache_root = default_cache_root(cache_root or self.settings.cache_dir)
        self.shot_dir = os.path.join(self.cache_root, shot_id(plates, self.layer, self.part))
        # reader threads (decode + colour + resize) beside the model; a movie decodes in order
        self.io_threads = (1 if plates.reads_in_order
                           else readers or reader_threads(self.settings.threads))
        self._content_memo = ContentMemo()
        self.keyframes = (KeyframeSequence(self.settings.keyframes) if self.settings.keyframes
                          else None)
        # A keyframe source holding no keyframe is no keyframe source: its chain is the
        # shot's plain one (a host passes its own keyframe folder before any key is set).
        self._keyed = self.keyframes is not None and bool(self.keyframes.frames())
        self._counters = EngineCounters()
        self._status_lock = threading.Lock()
        self._computing: int | None = None  # the frame a pass is computing now
        self._final: Tier = self._make_tier("final", stepper, 0)
        self._tier: Tier = self._preview_tier(stepper) if preview else self._final

    # ------------------------------------------------------------------ construction

    def _preview_tier(self, stepper: Stepper) -> Tier:
        """The preview chain, or the final one when no preview setting is active."""
        size = self.settings.preview_resolution
        preroll = max(0, self.settings.preroll)
        lower = size and size != stepper.resolution
        if not lower and (not preroll or not stepper.temporal):
            return self._final
        return self._make_tier("preview", stepper.at_resolution(size) if lower else stepper,
                               preroll)

    def _make_tier(self, name: str, stepper: Stepper, preroll: int) -> Tier:
        """One tier's chain: its identity decides its folder and every frame key."""
        identity = {
            "engine": ENGINE_FORMAT,
            "tier": name,
            "model": str(stepper.loaded.fingerprint),
            "resolution": int(stepper.resolution),
            "dtype": str(stepper.dtype).replace("torch.", ""),
            "device": stepper.device.type,
            "compute": compute_identity(stepper.device),  # CPU threads / GPU model
            "colour": str(self.colour.identity),
            **({"colour_path": self.device_colour.identity} if self.device_colour else {}),
            "layer": self.layer,
            "part": self.part,
            "shot_start": self.frames.first,
            "plate_fingerprint": "content" if self.content_hash else "size+mtime",
            "preroll": preroll,
        }
        if stepper.upsampling.identity != "bilinear":
            identity["upsample"] = stepper.upsampling.identity  # absent for the card's bilinear
        if self._keyed:  # absent otherwise: chains without keyframes still match
            identity["keyframes"] = self._keyframe_source()
        if self.frames.cuts or self.detect_cuts:  # absent otherwise: older chains still match
            identity["cuts"] = (format_frame_ranges(self.frames.cuts)
                                + (f"|detect={DETECTOR_ID}" if self.detect_cuts else ""))
        place = (stepper, identity, self.frames, self.shot_dir, plate_name(self.plates),
                 plate_padding(self.plates))
        if not stepper.temporal:
            identity.update(preroll=0, temporal=False)  # no prior: pre-roll means nothing
            return PerFrameChain(name, *place)
        if preroll:
            return PrerollChain(name, *place, preroll=preroll)
        return ExactChain(name, *place)

    # ------------------------------------------------------------------ public facts

    @property
    def stepper(self) -> Stepper:
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

    def _keyframe_source(self) -> str:
        """Where the keyframes live, as the chain identity holds it: relative to the cache
        root when they are inside it (a host's own keyframe folder), so a cache that moves
        whole (an unsaved script's, on its first save) keeps its chains; else absolute."""
        source = self.keyframes.source if self.keyframes is not None else ""
        inside = os.path.relpath(source, self.cache_root)
        outside = inside == os.pardir or inside.startswith(os.pardir + os.sep)
        return source if outside else inside

    @property
    def identity(self) -> dict[str, Any]:
        """The settings this chain is keyed on (readable copy)."""
        return dict(self._tier.identity)

    @property
    def counters(self) -> EngineCounters:
        """Everything this session did so far (a copy; safe from any thread)."""
        with self._status_lock:
            return replace(self._counters)

    def status(self) -> dict[str, Any]:
        """A snapshot for hosts: the frame being computed (or None) and the counters.
        Safe from any thread while a pass runs."""
        with self._status_lock:
            return {"computing": self._computing, **self._counters.to_dict()}

    def matte_path(self, frame: int) -> str:
        """Where the matte of `frame` lives in this chain (whether or not it is computed yet)."""
        return self._tier.store.matte_path(frame)

    def _fingerprints(self) -> PlateFingerprints:
        """A fresh view of the plates for one request (each plate fingerprinted once).

        InputError when the first keyframe appeared, or the last one went, since the session
        opened: the chain is another one then, and the session must be opened again (hosts
        do, as their session key follows the keyframe files)."""
        found = PlateFingerprints(self.plates, self.content_hash, self._content_memo,
                                  self.keyframes)
        if bool(found.keyframes) != self._keyed:
            change = "the first keyframe was added" if found.keyframes else \
                "the last keyframe was removed"
            raise InputError(f"{change} since this shot was opened: open it again",
                             path=self.keyframes.source if self.keyframes else "")
        return found

    # ------------------------------------------------------------------ requests

    def ensure(self, frame: int, *, progress: ProgressCallback | None = None,
               cancel: Any = None) -> str:
        """Path of the plate-resolution matte EXR of `frame`, computing what is missing.

        `progress(done, total, frame)` is called after each computed frame is written; `cancel`
        (a callable or an object with `is_set()`) is checked between frames: finished frames are
        kept and Cancelled is raised.
        """
        return self.ensure_frames([frame], progress=progress, cancel=cancel).paths[int(frame)]

    def ensure_range(self, frames: Iterable[int], *, progress: ProgressCallback | None = None,
                     cancel: Any = None) -> dict[int, str]:
        """Matte paths of several frames (e.g. a render's range) computed in one ordered pass."""
        return self.ensure_frames(frames, progress=progress, cancel=cancel).paths

    def ensure_frames(self, frames: Iterable[int], *, progress: ProgressCallback | None = None,
                      cancel: Any = None, sink: MatteSink | None = None) -> EnsureResult:
        """As `ensure_range`, returning everything the request did (paths, NaN/Inf pixels
        zeroed per frame, frames computed, counters).

        `sink` (see `MatteSink`) receives each computed matte while it is in memory, so a
        render writes its output from it instead of reading the cache's copy back; an output
        that holds the same pixels can then be the cache's matte too (written once).
        """
        targets = sorted({int(f) for f in frames})
        for frame in targets:
            if frame not in self.frames:
                raise InputError(f"frame {frame} is not a frame of the plate sequence "
                                 f"({self.frames.first}-{self.frames.frames[-1]})",
                                 path=plate_source(self.plates), frame=frame)
        result = EnsureResult(paths={})
        result.counters.frames_requested = len(targets)
        try:
            fingerprint = self._fingerprints()
            answers = self._answer_from_cache(targets, fingerprint)
            result.counters.frames_from_cache += len(answers)
            missing = [t for t in targets if t not in answers]
            if missing:
                answers.update(self._compute(missing, progress, _cancel_check(cancel), result,
                                             sink))
            self._tier.store.touch()
            result.paths = {t: answers[t] for t in targets}
            return result
        finally:
            with self._status_lock:
                self._counters.add(result.counters)
                self._computing = None

    def expected_keys(self, frames: Iterable[int]) -> dict[int, str]:
        """The key each frame has in this chain for today's plates, as its matte carries it
        (`vrmbg:key`), so callers can tell a finished output from a stale one.

        For a pre-roll chain: the key of the valid cached matte, else the key the frame gets
        from its own pre-roll start. Frames outside the shot are left out.
        """
        targets = sorted({int(f) for f in frames} & set(self.frames.frames))
        return self._tier.expected_keys(targets, self._fingerprints())

    def cached_frames(self) -> list[int]:
        """Frames of this tier whose cached matte is valid for today's plates."""
        on_disk = [f for f in self.frames.frames
                   if os.path.isfile(self._tier.store.matte_path(f))]
        return self._tier.valid_frames(on_disk, self._fingerprints())

    def keyframe_frames(self) -> list[int]:
        """Frames of the shot that have a keyframe on disk now (the artist's mattes)."""
        if self.keyframes is None:
            return []
        return [f for f in self.keyframes.frames() if f in self.frames]

    def known_cuts(self) -> list[int]:
        """The edit's cuts this session knows: those it was given, and those detected in
        frames already cached (their mattes say `vrmbg:cut=1`)."""
        found = set(self.frames.cuts)
        if self.detect_cuts:
            for frame in self.cached_frames():
                stamp = read_matte_stamp(self._tier.store.matte_path(frame)) or {}
                if stamp.get("cut") == 1:
                    found.add(frame)
        return sorted(found)

    # ------------------------------------------------------------------ answering

    def _answer_from_cache(self, targets: list[int], fingerprint: PlateFingerprints,
                           tier_only: bool = False) -> dict[int, str]:
        """Targets whose cached matte is valid now: frame -> path (final mattes preferred)."""
        if not targets:
            return {}
        answers: dict[int, str] = {}
        if self._tier is not self._final and not tier_only:
            for frame in self._final.valid_frames(targets, fingerprint):
                answers[frame] = self._final.store.matte_path(frame)  # final beats preview
        rest = [frame for frame in targets if frame not in answers]
        for frame in self._tier.valid_frames(rest, fingerprint):
            answers[frame] = self._tier.store.matte_path(frame)
        return answers

    # ------------------------------------------------------------------ computing

    def _compute(self, missing: list[int], progress: ProgressCallback | None,
                 cancelled: Callable[[], bool], result: EnsureResult,
                 sink: MatteSink | None = None) -> dict[int, str]:
        """Take the chain lock, plan from the cache, and compute the missing frames."""
        tier = self._tier
        lock = ChainLock(tier.store.lock_path)
        answered = self._wait_for_lock(lock, missing, cancelled)
        if answered is not None:  # another process computed them while we waited
            result.counters.frames_from_cache += len(answered)
            return answered
        try:
            tier.store.ensure_folders(self._describe(tier))
            write_shot_file(self.shot_dir, {"plate": plate_source(self.plates),
                                            "layer": self.layer, "part": self.part})
            tier.store.sweep_temp_files()
            fingerprint = self._fingerprints()  # plates may have changed while we waited
            answers = self._answer_from_cache(missing, fingerprint, tier_only=True)
            result.counters.frames_from_cache += len(answers)
            todo = [t for t in missing if t not in answers]
            if todo:
                try:
                    self._plan_and_run(tier, todo, fingerprint, progress, cancelled, result,
                                       sink)
                finally:
                    tier.drop_stale(fingerprint)
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
            answered.clear()  # only what is valid now counts
            answered.update(self._answer_from_cache(missing, self._fingerprints(),
                                                    tier_only=True))
            next_check = time.monotonic() + WAIT_RECHECK_SECONDS
            return len(answered) == len(missing)

        if lock.acquire(poll=LOCK_POLL_SECONDS, stop=stop_waiting):
            return None
        return answered

    def _plan_and_run(self, tier: Tier, todo: list[int], fingerprint: PlateFingerprints,
                      progress: ProgressCallback | None, cancelled: Callable[[], bool],
                      result: EnsureResult, sink: MatteSink | None = None) -> None:
        """Plan runs from the states on disk and compute them (re-planning past bad states)."""
        for attempt in range(MAX_REPLANS + 1):
            runs = tier.plan(todo, tier.store.scan_states(), fingerprint)
            try:
                self._run(tier, runs, progress, cancelled, result, sink,
                          keyframes=fingerprint.keyframes)
                return
            except StaleState as bad:
                if attempt == MAX_REPLANS:
                    raise
                remove_file(bad.path)

    def _run(self, tier: Tier, runs: list[Run], progress: ProgressCallback | None,
             cancelled: Callable[[], bool], result: EnsureResult,
             sink: MatteSink | None = None, keyframes: frozenset[int] = frozenset()) -> None:
        """Compute the planned runs through the pipeline, counting and reporting each frame.
        `keyframes`: the frames whose keys the plan folded a keyframe into."""
        work = FrameWork(self, tier, runs, result, sink, keyframes=keyframes)
        total = sum(len(run.frames) for run in runs)
        done = 0

        def on_written(frame: int) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, frame)

        pipeline = FramePipeline(read=work.read, step=work.step, load_prior=work.load_prior,
                                 write=work.write, readers=self.io_threads,
                                 prefetch=self.io_threads + 1,
                                 writers=writer_threads(self.io_threads),
                                 thread_setup=lower_thread_priority)
        began = time.perf_counter()
        try:
            pipeline.run(runs, cancelled=cancelled, on_written=on_written)
        finally:
            result.counters.seconds_computing += time.perf_counter() - began

    def mark_computing(self, frame: int | None) -> None:
        """Record the frame a pass is computing (`FrameWork.step` calls it; `status()` reads
        it from other threads)."""
        with self._status_lock:
            self._computing = frame

    def _describe(self, tier: Tier) -> dict[str, Any]:
        """What chain.json records about a chain (for people and `vrmbg cache`)."""
        return {"chain_id": tier.chain_id, "tier": tier.name, "identity": tier.identity,
                "plate": plate_source(self.plates), "matte_pattern": tier.store.matte_pattern,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "model_source": str(tier.stepper.loaded.source)}
