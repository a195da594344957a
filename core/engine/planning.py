"""Which frames to compute, from which stored state: pure functions, no model and no files.

Given the shot's frames, the frames asked for, the chain keys of today's plates and what the
cache holds (state files and which cached frames are valid), a plan is a list of `Run`s: each
continues from the stored prediction of one frame (or a zero prior) and computes consecutive
chain frames in order. Planning reads nothing itself, so it can be tested with made-up caches.

Two chain kinds plan differently:
- an exact chain starts at the shot's first frame: resume after the greatest stored state
  before the first missing frame and skip frames already valid after it;
- a bounded pre-roll chain starts each frame at most `preroll` frames earlier, from a stored
  state inside that window or else from a zero prior.
An edit's cuts split the shot into segments (`ChainFrames.segment`): each is planned as a shot
of its own, and no run or pre-roll reaches back across a cut.
"""

from __future__ import annotations

from typing import Callable, Container, Mapping, Sequence

from .cache import StateEntry
from .chain import ChainFrames, fold_keys, next_key
from .pipeline import Run

States = Mapping[int, Sequence[StateEntry]]  # frame -> state files on disk


def has_state(states: States, frame: int, start: int, key: str) -> bool:
    """True when the cache holds the state of `frame` for this chain start and key."""
    return any(e.start == start and key.startswith(e.key) for e in states.get(frame, ()))


def skippable(frames: ChainFrames, todo: Sequence[int], keys: Mapping[int, str],
              states: States) -> list[int]:
    """Frames inside the requested span that an exact plan may skip if their matte is valid:
    not asked for, after the first frame asked for, and with a stored state for their key."""
    wanted = set(todo)
    first = frames.first
    return [f for f in frames.between(todo[0], todo[-1])
            if f != todo[0] and f not in wanted and has_state(states, f, first, keys[f])]


def plan_exact(frames: ChainFrames, todo: Sequence[int], keys: Mapping[int, str],
               states: States, valid: Container[int]) -> list[Run]:
    """Runs for an exact chain (from the shot start) reaching every frame of `todo`.

    `keys` holds the chain key of every frame from the shot start to `todo[-1]`; `valid` the
    frames among `skippable(...)` whose cached matte carries its key. The first run resumes
    after the greatest stored state before `todo[0]`; valid frames after it are skipped and
    later frames continue from their stored state.
    """
    first = frames.first
    before = frames.between(first, todo[0])[:-1]
    prior = next((f for f in reversed(before) if has_state(states, f, first, keys[f])), None)
    begin = first if prior is None else frames.frames[frames.index(prior) + 1]
    wanted = set(todo)
    runs: list[Run] = []
    current: Run | None = None
    for frame in frames.between(begin, todo[-1]):
        if frame > todo[0] and frame not in wanted and frame in valid \
                and has_state(states, frame, first, keys[frame]):
            current, prior = None, frame  # already valid: later frames continue from it
            continue
        if current is None:
            current = Run(prior=prior, frames=[], start=first, keys=dict(keys))
            runs.append(current)
        current.frames.append(frame)
    return runs


def plan_preroll(frames: ChainFrames, todo: Sequence[int], preroll: int, digest: str,
                 fingerprint: Callable[[int], str], states: States) -> list[Run]:
    """Runs for a bounded pre-roll chain: each frame of `todo` starts at most `preroll`
    frames earlier (from a stored state in that window, else a zero prior); requested frames
    closer than `preroll` to the previous run's end extend that run instead."""
    runs: list[Run] = []
    for target in todo:
        last = runs[-1] if runs else None
        if last and frames.index(target) - frames.index(last.frames[-1]) <= preroll \
                and frames.segment_start(target) <= last.frames[-1]:  # never across a cut
            extend(last, frames.between(last.frames[-1], target)[1:], fingerprint)
            continue
        runs.append(_preroll_run(frames, target, preroll, digest, fingerprint, states))
    return runs


def extend(run: Run, more: Sequence[int], fingerprint: Callable[[int], str]) -> None:
    """Continue a run (and its keys) over more consecutive frames of its chain."""
    key = run.keys[run.frames[-1]]
    for frame in more:
        key = next_key(key, frame, fingerprint(frame))
        run.keys[frame] = key
        run.frames.append(frame)


def _preroll_run(frames: ChainFrames, target: int, preroll: int, digest: str,
                 fingerprint: Callable[[int], str], states: States) -> Run:
    """The run reaching `target`: from the latest valid stored state within the pre-roll
    window, or from a zero prior `preroll` frames before."""
    window_start = frames.start_for(target, preroll)
    window = frames.between(window_start, target)[:-1]
    for frame in reversed(window):
        for entry in states.get(frame, ()):
            if entry.start not in frames or entry.start > frame \
                    or entry.start < frames.segment_start(target):
                continue
            keys = fold_keys(digest, frames.between(entry.start, frame), fingerprint)
            if keys[frame].startswith(entry.key):
                run = Run(prior=frame, frames=[frame], start=entry.start, keys=keys)
                extend(run, frames.between(frame, target)[1:], fingerprint)
                run.frames.pop(0)
                return run
    return Run(prior=None, frames=frames.between(window_start, target), start=window_start,
               keys=fold_keys(digest, frames.between(window_start, target), fingerprint))
