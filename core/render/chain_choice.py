"""Which chain answers a render: the exact chain, or a bounded pre-roll when asked for.

A render with `--preroll N` starting mid-shot may start each frame N frames earlier from an
empty prior (an approximation, stamped `vrmbg:exact=0`) instead of computing every frame
from the shot start. It does so only when that saves work and changes something: a per-frame
model, a pre-roll reaching the shot start or a cut, or a cached frame just before the
request all give the exact chain. `--no-resume` drops the exact chain's cached frames first.
"""

from __future__ import annotations

import os

from ..engine.housekeeping import remove_chain
from ..engine.opening import Shot
from ..engine.session import MatteSession
from ..errors import OutputError
from .summary import RenderLog


def choose_session(shot: Shot, cache_root: str, *, resume: bool,
                   log: RenderLog) -> MatteSession:
    """The session answering the opened `shot`: exact, or bounded pre-roll when asked for
    and the cache cannot continue exactly (then the summary says the render is not exact,
    and why is logged)."""
    exact = shot.session(cache_root=cache_root)
    if not resume:
        restart_chain(exact.folder)
    preroll = shot.settings.preroll
    first = shot.frames[0]
    index = shot.shot_frames.index(first)
    if preroll <= 0 or not shot.stepper.temporal:
        return exact  # a per-frame model is exact whatever frame it starts at
    if index - preroll <= 0:  # a pre-roll from the shot start is the exact chain
        if index:
            log.warn(f"the pre-roll reaches the shot start {shot.shot_frames[0]}: "
                     "rendering exactly")
        return exact
    if exact.frames.start_for(first, preroll) == exact.frames.segment_start(first):
        log.warn(f"the pre-roll reaches the cut at {exact.frames.segment_start(first)}: "
                 "rendering exactly")
        return exact
    previous = shot.shot_frames[index - 1]
    if previous in set(exact.cached_frames()):
        log.warn(f"frame {previous} is cached: rendering exactly, pre-roll not needed")
        return exact
    approx = shot.session(cache_root=cache_root, preview=True)
    log.summary.exact = False
    log.warn(f"approximate: frames start {preroll} frame(s) before {first} from an empty "
             "prior (--preroll); the output is labelled vrmbg:exact=0")
    return approx


def restart_chain(folder: str) -> None:
    """`--no-resume`: drop the chain's cached frames so it is computed from the shot start."""
    if os.path.isdir(folder) and not remove_chain(folder):
        raise OutputError("cannot restart the chain: another render is computing it",
                          path=folder)
