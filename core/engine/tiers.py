"""The chains a session keeps for its shot: the exact chain and the preview chain.

A tier is one chain folder under one identity, with its own rules for what a valid frame is
and how missing frames are planned:

- `ExactChain` starts at the shot's first frame; frame keys fold from there. The final tier
  is always one; a preview at a lower inference size without pre-roll is one too.
- `PrerollChain` starts each computed frame at most `preroll` frames earlier with a zero
  prior; a cached frame records the start it was computed from.
- `PerFrameChain` is for per-frame models (no temporal prior): each frame is its own chain
  start, so its key covers its own plate only and any frame is computed alone, in any order.

Everything that differs between the two lives in these classes, so the session asks the
same questions of either.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

from ..errors import InputError
from ..fs import remove_file
from ..io.exr_whole import is_whole
from ..io.mattes import read_matte_stamp
from .cache import ChainStore
from .chain import ChainFrames, chain_id, fold_keys, identity_hash
from .pipeline import Run
from .planning import States, has_state, plan_exact, plan_preroll, skippable

Fingerprint = Callable[[int], str]


class Tier:
    """One chain of the shot: identity, folder, validity of cached frames, planning."""

    def __init__(self, name: str, stepper: Any, identity: Mapping[str, Any],
                 frames: ChainFrames, store_folder: str, plate_name: str,
                 padding: int) -> None:
        self.name = name
        self.stepper = stepper
        self.identity = dict(identity)
        self.frames = frames
        self.digest = identity_hash(self.identity)
        self.chain_id = chain_id(self.digest)
        self.store = ChainStore(os.path.join(store_folder, name, self.chain_id),
                                name=plate_name, padding=padding)

    preroll = 0

    @property
    def exact(self) -> bool:
        """True for the final tier: its mattes are bit-identical to a straight run."""
        return self.name == "final"

    def stamp(self, start: int, key: str) -> dict[str, Any]:
        """The `vrmbg:*` attributes written into each cached matte (checked on every answer)."""
        return {"key": key, "start": start, "tier": self.name, "chain": self.chain_id,
                "resolution": int(self.stepper.resolution), "preroll": self.preroll,
                "exact": int(self.exact)}

    def keys(self, start: int, last: int, fingerprint: Fingerprint) -> dict[int, str]:
        """Keys of the chain frames start..last for a chain starting at `start`."""
        return fold_keys(self.digest, self.frames.between(start, last), fingerprint)

    def is_valid(self, frame: int, start: int, key: str) -> bool:
        """The frame's matte carries this key and start, is whole (a matte cut short by a
        full disk has a readable header: it counts as absent and is computed again), and its
        state is on disk."""
        path = self.store.matte_path(frame)
        stamp = read_matte_stamp(path)
        return (stamp is not None and stamp.get("key") == key and stamp.get("start") == start
                and stamp.get("tier") == self.name and self.store.has_state(frame, start, key)
                and is_whole(path))

    # ---- what each kind of chain answers differently

    def valid_frames(self, targets: Sequence[int], fingerprint: Fingerprint) -> list[int]:
        """The targets (sorted) whose cached matte is valid for today's plates."""
        raise NotImplementedError

    def expected_keys(self, targets: Sequence[int],
                      fingerprint: Fingerprint) -> dict[int, str]:
        """The key each target frame's matte carries (or will carry) for today's plates."""
        raise NotImplementedError

    def plan(self, todo: Sequence[int], states: States, fingerprint: Fingerprint) -> list[Run]:
        """Runs computing every frame of `todo` (sorted) from what the cache holds."""
        raise NotImplementedError

    def drop_stale(self, fingerprint: Fingerprint) -> int:
        """Delete cached frames that no longer match today's plates; returns how many."""
        return 0

    def _forget(self, frame: int, entries: Sequence[Any]) -> None:
        """Remove a frame's state files and its matte (a stale frame must not stay visible)."""
        for path in [entry.path for entry in entries] + [self.store.matte_path(frame)]:
            remove_file(path)


class ExactChain(Tier):
    """A chain from the shot's first frame (or from the edit's cut before a frame): every
    frame's key covers every earlier plate of its segment."""

    def _by_segment(self, targets: Sequence[int]) -> list[tuple[int, list[int]]]:
        """The targets grouped by the segment start they chain from, in order."""
        groups: dict[int, list[int]] = {}
        for frame in targets:
            groups.setdefault(self.frames.segment_start(frame), []).append(frame)
        return sorted(groups.items())

    def _keys_of(self, targets: Sequence[int], fingerprint: Fingerprint) -> dict[int, str]:
        """Each target's key, folded from its segment's start."""
        keys: dict[int, str] = {}
        for start, group in self._by_segment(targets):
            keys.update(self.keys(start, group[-1], fingerprint))
        return keys

    def valid_frames(self, targets: Sequence[int], fingerprint: Fingerprint) -> list[int]:
        keys = self._keys_of(targets, fingerprint)
        return [f for f in targets
                if self.is_valid(f, self.frames.segment_start(f), keys[f])]

    def expected_keys(self, targets: Sequence[int],
                      fingerprint: Fingerprint) -> dict[int, str]:
        keys = self._keys_of(targets, fingerprint)
        return {frame: keys[frame] for frame in targets}

    def plan(self, todo: Sequence[int], states: States, fingerprint: Fingerprint) -> list[Run]:
        runs: list[Run] = []
        for start, group in self._by_segment(todo):
            segment = self.frames.segment(start)
            keys = self.keys(start, group[-1], fingerprint)
            candidates = skippable(segment, group, keys, states)
            valid = {f for f in candidates if self.is_valid(f, start, keys[f])}
            runs.extend(plan_exact(segment, group, keys, states, valid))
        return runs

    def drop_stale(self, fingerprint: Fingerprint) -> int:
        """Hosts read the chain's matte folder as a sequence, so a matte left over from
        before a plate was replaced must not stay visible."""
        states = self.store.scan_states()
        stored = sorted(f for f in states if f in self.frames)
        if not stored:
            return 0
        try:
            keys = self._keys_of(stored, fingerprint)
        except InputError:  # a plate is missing: leave its frames for later requests
            return 0
        dropped = 0
        for frame in stored:
            if has_state(states, frame, self.frames.segment_start(frame), keys[frame]):
                continue
            self._forget(frame, states[frame])
            dropped += 1
        return dropped


class PrerollChain(Tier):
    """A bounded pre-roll chain: each run starts at most `preroll` frames before its frame."""

    def __init__(self, *args: Any, preroll: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.preroll = preroll

    def _stamped_start(self, frame: int) -> int | None:
        """The chain start recorded in the frame's cached matte, when it is a usable one."""
        stamp = read_matte_stamp(self.store.matte_path(frame))
        start = stamp.get("start") if stamp else None
        if not isinstance(start, int) or start not in self.frames or start > frame:
            return None
        return start

    def _valid(self, frame: int, fingerprint: Fingerprint) -> bool:
        start = self._stamped_start(frame)
        return start is not None and self.is_valid(frame, start,
                                                   self.keys(start, frame, fingerprint)[frame])

    def valid_frames(self, targets: Sequence[int], fingerprint: Fingerprint) -> list[int]:
        return [f for f in targets if self._valid(f, fingerprint)]

    def expected_keys(self, targets: Sequence[int],
                      fingerprint: Fingerprint) -> dict[int, str]:
        """The key of the valid cached matte, else the key the frame gets from its own
        pre-roll start."""
        expected = {}
        for frame in targets:
            start = self._stamped_start(frame)
            if start is not None and self._valid(frame, fingerprint):
                expected[frame] = self.keys(start, frame, fingerprint)[frame]
            else:
                start = self.frames.start_for(frame, self.preroll)
                expected[frame] = self.keys(start, frame, fingerprint)[frame]
        return expected

    def plan(self, todo: Sequence[int], states: States, fingerprint: Fingerprint) -> list[Run]:
        return plan_preroll(self.frames, todo, self.preroll, self.digest, fingerprint, states)


class PerFrameChain(Tier):
    """Frames of a per-frame model: each frame starts its own chain of one frame.

    A jump computes exactly that frame; a changed plate invalidates that frame only; frames
    may be rendered in any order or in parallel chunks, all exact.
    """

    def stamp(self, start: int, key: str) -> dict[str, Any]:
        """As every tier's, saying the matte comes from a per-frame model."""
        return {**super().stamp(start, key), "model_kind": "per-frame"}

    def _key(self, frame: int, fingerprint: Fingerprint) -> str:
        return self.keys(frame, frame, fingerprint)[frame]

    def valid_frames(self, targets: Sequence[int], fingerprint: Fingerprint) -> list[int]:
        return [f for f in targets if self.is_valid(f, f, self._key(f, fingerprint))]

    def expected_keys(self, targets: Sequence[int],
                      fingerprint: Fingerprint) -> dict[int, str]:
        return {frame: self._key(frame, fingerprint) for frame in targets}

    def plan(self, todo: Sequence[int], states: States, fingerprint: Fingerprint) -> list[Run]:
        return [Run(prior=None, frames=[frame], start=frame,
                    keys={frame: self._key(frame, fingerprint)}) for frame in todo]

    def drop_stale(self, fingerprint: Fingerprint) -> int:
        """Remove cached frames whose plate changed (hosts read the folder as a sequence)."""
        dropped = 0
        for frame, entries in self.store.scan_states().items():
            if frame not in self.frames:
                continue
            try:
                key = self._key(frame, fingerprint)
            except InputError:  # a plate is missing: leave its frame for later requests
                continue
            if has_state({frame: entries}, frame, frame, key):
                continue
            self._forget(frame, entries)
            dropped += 1
        return dropped
