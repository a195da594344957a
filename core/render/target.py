"""Where a render writes, whether it may, and what is there already.

`OutputTarget` is the render's output: an EXR sequence (`name.####.exr`) or one movie, the
kind of matte (alpha or RGBA) and its compression. It refuses outputs that would replace a
plate file (whatever the spelling of the pattern or the path to its folder: real paths and
device/inode are compared), that lie inside a cache folder, a movie of part of a shot, a
foreign movie, or a folder that cannot be written (`check`). It sweeps the temp files that
killed writers left in the output folder (`sweep_temp_files`), and it reads the stamps of
the output frames on disk to plan which to write, skip or refuse (`plan`, the decision
itself being `output_plan`'s); an output frame that is not whole is never skipped. Nothing
is created here: the output folder is made when the first matte is written, so a render
that fails early leaves nothing behind.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any, Iterable

from ..engine.cache import RENDER_CACHE_FOLDER, default_cache_root
from ..engine.interfaces import plate_origin
from ..engine.opening import Shot
from ..engine.session import MatteSession
from ..errors import EXIT_RETRY, OutputError, UsageError
from ..fs import remove_stale_temp_files
from ..io.exr_whole import is_whole
from ..io.frames import SequencePattern, format_frame_ranges
from ..io.mattes import read_matte_stamp
from ..io.plate_identity import plate_content_id, plate_part
from ...plugin.settings import Settings
from .output_plan import (START_CHANGED, OutputPlan, ShotOutputs, conflict_message,
                          mixing_message, plan_outputs, uncovered_message)
from .output_writer import movie_stamp

MOVIE_OUTPUTS = (".mov",)


class MixedChainsError(OutputError):
    """The output folder holds this shot's mattes of another chain (another thread count or
    GPU model, other settings) beside the frames asked for: a retry on a host like the one
    that made them may succeed (exit 75), or --overwrite renders them all again."""

    exit_code = EXIT_RETRY


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
    def for_output(cls, output: str, settings: Settings) -> "OutputTarget":
        """The target `output` names, with the settings' output type and compression
        (UsageError for a name that is neither a movie nor an EXR sequence)."""
        movie = os.path.splitext(output)[1].lower() in MOVIE_OUTPUTS
        return cls(output, None if movie else output_pattern(output),
                   settings.output_type, settings.compression)

    @property
    def movie(self) -> bool:
        """True when the output is one movie file."""
        return self.pattern is None

    def check(self, input_path: str, shot: Shot, overwrite: bool, cache_root: str) -> None:
        """Refuse, whatever the flags, an output that would replace a plate file (exit 5) or
        lies inside a cache folder (exit 2), and a movie of part of the shot (exit 2); refuse
        a movie vrmbg did not write for these plates unless `overwrite`, and a folder that
        cannot be written. A matte movie this shot's render wrote is rewritten (a farm retry
        succeeds). `cache_root`: the render's cache folder as given (`default_render_cache`).
        """
        plates, start = shot.plates, shot.shot_frames[0]
        self._refuse_plates(input_path, plates, shot)
        self._refuse_cache(cache_root)
        if self.movie and list(shot.frames) != list(shot.shot_frames):
            whole = format_frame_ranges(shot.shot_frames)
            raise UsageError(
                f"a movie output holds the whole shot ({whole}), never a part of it: "
                f"--frames {format_frame_ranges(shot.frames)} would write a shorter movie; "
                f"render frames {whole} (leave --frames out), or write an EXR sequence for "
                "part of a shot", path=self.path)
        if self.movie and os.path.exists(self.path) and not overwrite \
                and not self.our_movie(plates, start):
            raise OutputError("the movie exists and is not a matte movie of these plates; "
                              "pass --overwrite to replace it", path=self.path)
        folder = self.folder
        while not os.path.isdir(folder):
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError("cannot write the output here (permission denied)", path=folder)

    @property
    def folder(self) -> str:
        """The output folder (absolute; it may not exist yet)."""
        return os.path.dirname(os.path.abspath(self.path))

    def sweep_temp_files(self) -> int:
        """Delete the temp files killed writers left in the output folder (only the exact
        names vrmbg makes, and none a live writer may still be filling:
        `fs.remove_stale_temp_files`); returns how many. Call it after `check`."""
        return remove_stale_temp_files(self.folder) if os.path.isdir(self.folder) else 0

    def output_paths(self, frames: Iterable[int]) -> list[str]:
        """The output file of each of `frames` (the movie for a movie output)."""
        if self.pattern is None:
            return [self.path]
        return [self.pattern.path_for(frame) for frame in sorted(set(frames))]

    def _refuse_plates(self, input_path: str, plates: Any, shot: Shot) -> None:
        """OutputError (exit 5) naming the first output file that is a plate file: the same
        real folder and name (any spelling of the pattern, a symlinked folder), or the same
        file under another name (device and inode of a link or a hard-linked file)."""
        frames = set(getattr(plates, "frames", None) or ()) | set(shot.shot_frames) \
            | set(shot.frames)
        real = _RealNames()
        sources = {plate_origin(plates, frame) for frame in frames} | {input_path}
        sources.discard("")
        names = {real.of(path) for path in sources}
        linked = []  # existing outputs that may be a plate under another name
        for path in self.output_paths(frames):
            if real.of(path) in names:
                raise _replaces_plates(path)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(info.st_mode) or info.st_nlink > 1:
                linked.append(path)
        if not linked:
            return
        inodes = {identity for identity in map(_file_identity, sources) if identity}
        for path in linked:
            if _file_identity(path) in inodes:
                raise _replaces_plates(path)

    def _refuse_cache(self, cache_root: str) -> None:
        """UsageError (exit 2) when the output folder lies inside this render's cache, the
        user cache (where the hosts' mattes live) or any render cache (`.vrmbg-cache`):
        the cache commands delete what is there, and its chains are vrmbg's to name."""
        folder = os.path.realpath(self.folder)
        roots = [default_cache_root(cache_root)]
        try:
            roots.append(default_cache_root())  # the user cache, where hosts keep mattes
        except UsageError:  # $VRMBG_CACHE names no usable cache: this render uses another
            pass
        for root in dict.fromkeys(os.path.realpath(r) for r in roots):
            if folder == root or folder.startswith(root.rstrip(os.sep) + os.sep):
                raise UsageError(f"the output lies inside the cache folder {root}, whose "
                                 "files the cache commands delete; write the output "
                                 "elsewhere (or choose another --cache-dir)", path=self.path)
        parts = folder.split(os.sep)
        if RENDER_CACHE_FOLDER in parts:
            root = os.sep.join(parts[:parts.index(RENDER_CACHE_FOLDER) + 1])
            raise UsageError(f"the output lies inside the render cache {root}, whose files "
                             "the cache commands delete; write the output elsewhere",
                             path=self.path)

    def our_movie(self, plates: Any, start: int) -> bool:
        """True when the output movie was written by vrmbg from these plates' shot."""
        stamp = movie_stamp(self.path)
        return bool(stamp) and stamp.get("plate_id") == plate_content_id(plates, start) \
            and stamp.get("shot_start") == start and stamp.get("part", "") == plate_part(plates)

    def plan(self, shot: Shot, session: MatteSession, outputs: ShotOutputs, *, resume: bool,
             overwrite: bool) -> OutputPlan:
        """Read the stamps of the output frames on disk and plan the outputs of the opened
        `shot`; refuse conflicts (OutputError naming the frames and what they hold) and
        frames of another chain of this shot beside the request (`MixedChainsError`, exit
        75; OutputError for a moved shot start), unless `overwrite` rewrites them all."""
        assert self.pattern is not None
        existing = {f: read_matte_stamp(self.pattern.path_for(f))
                    for f in self.pattern.discover()}
        not_whole = [f for f in existing if not is_whole(self.pattern.path_for(f))]
        in_shot = set(shot.shot_frames)
        checked = set(shot.frames) | ({f for f in existing if f in in_shot}
                                      if outputs.exact else set())
        expected = session.expected_keys(sorted(checked))
        starts = {s.get("shot_start") for s in existing.values() if s}
        plate_ids = {start: plate_content_id(shot.plates, start)
                     for start in starts if isinstance(start, int) and start in in_shot}
        plate_ids[outputs.start] = outputs.plate_id
        plan = plan_outputs(shot.frames, existing, expected, outputs, plate_ids,
                            resume=resume, overwrite=overwrite, shot_frames=shot.shot_frames,
                            not_whole=not_whole)
        if plan.conflicts:
            first = min(c.frame for c in plan.conflicts)
            raise OutputError(conflict_message(plan.conflicts, outputs),
                              path=self.pattern.path_for(first))
        if plan.uncovered:
            first = min(c.frame for c in plan.uncovered)
            raise OutputError(uncovered_message(plan.uncovered, outputs),
                              path=self.pattern.path_for(first))
        if plan.mixed:
            moved = [c for c in plan.mixed if c.kind == START_CHANGED]
            mixed = moved or list(plan.mixed)
            text = mixing_message(mixed, outputs, shot.frames)
            path = self.pattern.path_for(min(c.frame for c in mixed))
            if moved:  # a retry elsewhere cannot fix it: --shot-start or --overwrite can
                raise OutputError(text, path=path)
            raise MixedChainsError(text, path=path)
        return plan


class _RealNames:
    """(real folder, file name) of paths: two spellings of one file give the same pair (each
    folder resolved once)."""

    def __init__(self) -> None:
        self._folders: dict[str, str] = {}

    def of(self, path: str) -> tuple[str, str]:
        folder, name = os.path.split(os.path.abspath(path))
        if folder not in self._folders:
            self._folders[folder] = os.path.realpath(folder)
        return self._folders[folder], name


def _file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file `path` names (links followed), None when none."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _replaces_plates(path: str) -> OutputError:
    """The refusal of an output file that is a plate file."""
    return OutputError("this output file is a plate file: writing it would replace the "
                       "plates; choose another -o", path=path)
