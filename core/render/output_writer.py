"""Writing a render's outputs: one stamped EXR per finished frame, or one ProRes movie.

The matte itself is the chain's: read from the cache, or handed over in memory as the engine
computes it (an alpha output then becomes the cache's matte too, one file under two names).
This module adds what the output needs: the shot's and chain's `vrmbg:*` stamp, the plate's
windows and metadata, and for `--output-type rgba` the plate's RGB premultiplied in
scene-linear light, tagged with that colour space.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Mapping

import av
import numpy as np

from ..engine.cache import MATTE_COMPRESSION
from ..engine.interfaces import movie_fps, plate_origin
from ..errors import InputError
from ..fs import link_over
from ..io.frames import SequencePattern, format_frame_ranges
from ..io.halfs import copy_into, to_half
from ..io.mattes import read_matte, read_matte_stamp, write_matte
from ..io.movie_writer import write_movie
from ..io.plate_types import metadata_fps, timecode_text

DEFAULT_FPS = 24.0


class MatteWriter:
    """Writes output frames of one render: every setting is given at construction, and
    `write` / `write_from` may be called for any frames, in any order, from several threads
    at once (each frame from one thread)."""

    def __init__(self, pattern: SequencePattern, plates: Any, colour: Any,
                 stamp: Mapping[str, Any], *, output_type: str = "alpha",
                 compression: str = "zip", previous: Mapping[int, int] | None = None) -> None:
        """`previous`: frame -> the frame it continues from, for frames after a gap in the
        plates (chained over missing frames); written as `vrmbg:previous`."""
        self.pattern = pattern
        self.plates = plates
        self.colour = colour
        self.stamp = dict(stamp)
        self.rgba = output_type == "rgba"
        self.compression = compression
        self.previous = dict(previous or {})
        # An alpha output compressed as the cache's mattes holds the same pixels: the cache
        # then keeps a hard link to it instead of a second copy.
        self.share_with_cache = not self.rgba and compression == MATTE_COMPRESSION
        # RGBA is premultiplied in the config's scene-linear space, whatever the plate's.
        self.colorspace = colour.scene_linear_space if self.rgba else ""

    def path(self, frame: int) -> str:
        """The output file of `frame`."""
        return self.pattern.path_for(frame)

    def write(self, frame: int, cache_path: str) -> None:
        """Copy the finished matte of `frame` from the cache to the output, stamped."""
        self._write(frame, read_matte(cache_path), read_matte_stamp(cache_path) or {})
        if self.share_with_cache:
            share_file(self.path(frame), cache_path)

    def write_from(self, frame: int, alpha: np.ndarray, stamp: Mapping[str, Any],
                   info: Any = None) -> None:
        """Write the output of a frame the engine has just computed, from its matte in memory,
        the stamp of its cached matte and its plate's header `info` (nothing read back).

        The pixels are those a copy from the cache gives: an alpha output is rounded to half
        as the cache's matte is, and RGBA is premultiplied by the matte as the cache stores it.
        """
        if self.rgba:
            stored = np.empty(alpha.shape, np.float32)
            copy_into(stored, to_half(alpha))
            alpha = stored
        self._write(frame, alpha, stamp, info)

    def _write(self, frame: int, alpha: np.ndarray, cached: Mapping[str, Any],
               info: Any = None) -> None:
        """Write the output of `frame`: its matte, with the stamp of the cached matte it is
        (`info`: the plate's header when the caller has it)."""
        rgb = None
        if self.rgba:
            plate = self.plates.read(frame)
            rgb, info = self.colour.to_scene_linear(plate.rgb), plate.info
        elif info is None:
            info = self.plates.info(frame)
        attributes = {**self.stamp, "key": cached.get("key", ""),
                      "start": cached.get("start", 0), "tier": cached.get("tier", ""),
                      "exact": int(cached.get("tier") == "final"),
                      "plate": os.path.basename(plate_origin(self.plates, frame))}
        # what the cached matte says of its frame (an output shared with the cache is the
        # cache's matte: a resume reads the cut history and keyframe marks from it)
        for carried in ("cut", "cut_score", "keyframe", "model_kind"):
            if carried in cached:
                attributes[carried] = cached[carried]
        if self.colorspace:
            attributes["colorspace"] = self.colorspace
        if frame in self.previous:
            attributes["previous"] = self.previous[frame]
        write_matte(self.path(frame), alpha, like=info, rgb=rgb, compression=self.compression,
                    attributes=attributes, colorspace=self.colorspace)


class OutputSink:
    """The engine's `MatteSink` for a render: outputs written from the mattes in memory.

    An output that can be the cache's matte (alpha, compressed as the cache) is written at
    once, on the engine's writer threads, and the cache's name becomes a hard link to it: each
    matte is encoded once and never read back. Any other output is queued to the render's
    output thread with its matte, at most `MAX_QUEUED` at a time, so memory stays bounded when
    the engine runs ahead of the writes. Frames not in `wanted` (a lead-in) are left alone.
    """

    MAX_QUEUED = 4

    def __init__(self, writer: MatteWriter, wanted: set[int], pool: ThreadPoolExecutor) -> None:
        self.writer, self.wanted, self.pool = writer, wanted, pool
        self.queued: list[tuple[int, Future]] = []  # (frame, its output write on `pool`)
        self.written: list[int] = []  # frames whose output was written at once (whole)
        self._room = threading.BoundedSemaphore(self.MAX_QUEUED)
        self._lock = threading.Lock()

    def __call__(self, frame: int, alpha: np.ndarray, stamp: dict, info: Any,
                 cache_path: str) -> bool:
        """Write or queue the output of `frame`; True when the cache's matte is that output."""
        if frame not in self.wanted:
            return False
        if self.writer.share_with_cache:
            self.writer.write_from(frame, alpha, stamp, info)
            with self._lock:
                self.written.append(frame)
            return share_file(self.writer.path(frame), cache_path)
        self._room.acquire()
        try:
            job = self.pool.submit(self.writer.write_from, frame, alpha, dict(stamp), info)
        except BaseException:
            self._room.release()
            raise
        job.add_done_callback(lambda _: self._room.release())
        self.queued.append((frame, job))
        return False

    def completed(self) -> list[int]:
        """Frames whose output this sink wrote (a write counts once the file is whole:
        `write_matte` checks it); call once the queued writes are done (after the pool is
        shut down)."""
        with self._lock:
            done = list(self.written)
        return done + [frame for frame, job in self.queued
                       if job.done() and not job.cancelled() and job.exception() is None]

    def failures(self) -> dict[int, BaseException]:
        """Frame -> the error of each queued output write that failed (call once they are
        done: after the pool is shut down)."""
        return {frame: job.exception() for frame, job in self.queued
                if job.done() and not job.cancelled() and job.exception() is not None}


def share_file(source: str, target: str) -> bool:
    """Make `target` a hard link to `source` (one copy of the bytes on disk), replacing what
    it was; False, and `target` kept as it is, where links cannot be made (`fs.link_over`).

    Only for files with the same pixels whose `source` stamp also makes `target` valid: an
    output matte carries the cache matte's key, start and tier. vrmbg replaces files and
    never edits them in place, so the two names never come to differ in content.
    """
    return link_over(source, target)


def plate_fps(plates: Any) -> float:
    """The plate's frame rate (movie rate or EXR/DPX metadata), else 24."""
    rate = movie_fps(plates)
    if rate:
        return rate
    try:
        return metadata_fps(plates.info(plates.first_frame).metadata) or DEFAULT_FPS
    except InputError:
        return DEFAULT_FPS


MOVIE_STAMP_PREFIX = "vrmbg "  # the movie comment of a vrmbg matte movie: prefix + JSON


def write_movie_output(path: str, frames: list[int], matte_path: Callable[[int], str],
                       plates: Any, colour: Any, *, composite: bool,
                       stamp: Mapping[str, Any]) -> None:
    """Encode the finished frames as one ProRes movie (matte, or composite for rgba) at the
    plate's frame rate, starting at the first frame's timecode, stamped with `stamp` (so a
    re-run of the same render recognises the movie as its own)."""
    def images():
        for frame in frames:
            alpha = read_matte(matte_path(frame))
            if composite:
                rgb = colour.to_model(plates.read(frame).rgb)
                yield rgb * alpha[..., None]
            else:
                yield alpha

    comment = MOVIE_STAMP_PREFIX + json.dumps({**stamp, "frames": format_frame_ranges(frames)},
                                              sort_keys=True)
    write_movie(path, images(), fps=plate_fps(plates),
                kind="composite" if composite else "matte",
                timecode=plate_timecode(plates, frames[0]), comment=comment)


def plate_timecode(plates: Any, frame: int) -> str:
    """The plate's SMPTE timecode at `frame` ("HH:MM:SS:FF"), or "" when it has none."""
    try:
        packed = plates.info(frame).metadata.get("smpte:TimeCode")
    except InputError:
        return ""
    return timecode_text(packed) if isinstance(packed, tuple) and packed else ""


def movie_stamp(path: str) -> dict[str, Any] | None:
    """The stamp of a matte movie vrmbg wrote, or None for any other file."""
    try:
        with av.open(path, "r") as container:
            comment = str(container.metadata.get("comment") or "")
    except Exception:  # not a movie PyAV can open: not ours
        return None
    if not comment.startswith(MOVIE_STAMP_PREFIX):
        return None
    try:
        value = json.loads(comment[len(MOVIE_STAMP_PREFIX):])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
