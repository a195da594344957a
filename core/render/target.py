"""Where a render writes, whether it may, and what is there already.

`OutputTarget` is the render's output: an EXR sequence (`name.####.exr`) or one movie, the
kind of matte (alpha or RGBA) and its compression. It refuses outputs that would replace the
plates or a foreign movie, or that cannot be written (`check`), and it reads the stamps of
the output frames on disk to plan which to write, skip or refuse (`plan`, the decision
itself being `output_plan`'s). Nothing is created here: the output folder is made when the
first matte is written, so a render that fails early leaves nothing behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from ..engine.cache import RENDER_CACHE_FOLDER, default_cache_root
from ..engine.opening import Shot
from ..engine.session import MatteSession
from ..errors import OutputError, UsageError
from ..io.frames import SequencePattern
from ..io.mattes import read_matte_stamp
from ..io.plate_identity import plate_content_id, plate_part
from .output_plan import OutputPlan, ShotOutputs, conflict_message, plan_outputs
from .output_writer import movie_stamp

MOVIE_OUTPUTS = (".mov",)


def default_render_cache(output: str) -> str:
    """$VRMBG_CACHE, else a `.vrmbg-cache` folder beside the output.

    Beside the output (usually shared storage) lets every farm chunk of a shot, on any
    machine, continue from frames another chunk finished.
    """
    if os.environ.get("VRMBG_CACHE"):
        return default_cache_root()
    return os.path.join(os.path.dirname(os.path.abspath(output)), RENDER_CACHE_FOLDER)


def output_pattern(output: str) -> SequencePattern:
    """The output sequence pattern; it must be an EXR with a frame token."""
    if os.path.splitext(output)[1].lower() != ".exr":
        raise UsageError("mattes are written as EXR sequences (name.####.exr) or a .mov movie",
                         path=output)
    pattern = SequencePattern.parse(output)
    if not pattern.is_sequence:
        raise UsageError("the output needs a frame token, e.g. mattes/sh010.####.exr",
                         path=output)
    return pattern


@dataclass(frozen=True)
class OutputTarget:
    """A render's output: an EXR sequence (`pattern`) or a movie, and what it holds."""

    path: str  # as given: a `####` pattern or a movie file
    pattern: SequencePattern | None  # None for a movie
    output_type: str  # "alpha" or "rgba"
    compression: str

    @classmethod
    def for_output(cls, output: str, settings: Mapping[str, Any]) -> "OutputTarget":
        """The target `output` names, with the settings' output type and compression
        (UsageError for a name that is neither a movie nor an EXR sequence)."""
        movie = os.path.splitext(output)[1].lower() in MOVIE_OUTPUTS
        return cls(output, None if movie else output_pattern(output),
                   str(settings.get("output_type") or "alpha"),
                   str(settings.get("compression") or "zip"))

    @property
    def movie(self) -> bool:
        """True when the output is one movie file."""
        return self.pattern is None

    def check(self, input_path: str, plates: Any, start: int, overwrite: bool) -> None:
        """Refuse outputs that would replace the plates or another movie, or cannot be
        written. A matte movie this shot's render wrote is rewritten (a farm retry succeeds).
        """
        if os.path.abspath(self.path) == os.path.abspath(input_path):
            raise UsageError("the output would replace the plates; choose another -o",
                             path=self.path)
        if self.movie and os.path.exists(self.path) and not overwrite \
                and not self.our_movie(plates, start):
            raise OutputError("the movie exists and is not a matte movie of these plates; "
                              "pass --overwrite to replace it", path=self.path)
        folder = os.path.dirname(os.path.abspath(self.path))
        while not os.path.isdir(folder):
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError("cannot write the output here (permission denied)", path=folder)

    def our_movie(self, plates: Any, start: int) -> bool:
        """True when the output movie was written by vrmbg from these plates' shot."""
        stamp = movie_stamp(self.path)
        return bool(stamp) and stamp.get("plate_id") == plate_content_id(plates, start) \
            and stamp.get("shot_start") == start and stamp.get("part", "") == plate_part(plates)

    def plan(self, shot: Shot, session: MatteSession, outputs: ShotOutputs, *, resume: bool,
             overwrite: bool) -> OutputPlan:
        """Read the stamps of the output frames on disk and plan the outputs of the opened
        `shot`; refuse conflicts (OutputError naming the frames and what they hold)."""
        assert self.pattern is not None
        existing = {f: read_matte_stamp(self.pattern.path_for(f))
                    for f in self.pattern.discover()}
        in_shot = set(shot.shot_frames)
        checked = set(shot.frames) | ({f for f in existing if f in in_shot}
                                      if outputs.exact else set())
        expected = session.expected_keys(sorted(checked))
        starts = {s.get("shot_start") for s in existing.values() if s}
        plate_ids = {start: plate_content_id(shot.plates, start)
                     for start in starts if isinstance(start, int) and start in in_shot}
        plate_ids[outputs.start] = outputs.plate_id
        plan = plan_outputs(shot.frames, existing, expected, outputs, plate_ids,
                            resume=resume, overwrite=overwrite)
        if plan.conflicts:
            first = min(c.frame for c in plan.conflicts)
            raise OutputError(conflict_message(plan.conflicts, outputs),
                              path=self.pattern.path_for(first))
        return plan
