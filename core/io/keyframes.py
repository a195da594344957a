"""Keyframes: the artist's own mattes for some frames of a shot, as an image sequence.

    keys = KeyframeSequence("/shots/sh010/key.####.exr")
    keys.frames()                      # every frame with a file on disk, e.g. [1010, 1050]
    keys.content_hash(1050)            # part of the chain key of 1050 and every later frame
    keys.read(1050, 1920, 1080)        # (1080, 1920) float32 alpha in [0, 1]

A keyframe replaces the model's matte of its frame, and the frames after it continue from it
(the temporal prior), so a correction or a coarse hint matte carries forward. Files are read
the way plates are (`image_reader.ImageReader`): the display window is what counts, a data
window smaller or larger than it is padded with 0 or cropped, and every bad file is an
InputError naming the file and frame. Which channel holds the matte: `A` when there is one
(EXR, PNG/TIFF with alpha), else the only channel (a single-channel EXR, a grey PNG/TIFF).
A keyframe whose display window is not the plate's size is refused: mattes are never
resized behind the artist's back.

Content hashes are the bytes of the file, kept while the file is unchanged on disk (inode,
size, mtime, ctime), so a request hashes each keyframe once per version of it.
"""

from __future__ import annotations

import hashlib
import os
import threading

import numpy as np

from ..errors import InputError, UsageError
from .formats import is_movie
from .frames import SequencePattern
from .image_reader import ImageReader
from .plate_types import ImageInfo


class KeyframeSequence:
    """The keyframe files of one shot: which frames have one, their hashes, their mattes."""

    def __init__(self, pattern: str) -> None:
        """`pattern`: an image sequence pattern (`####`, `%04d`, `@@@@`, `$F4`) or one file.
        UsageError for a movie or a malformed pattern; no file needs to exist yet."""
        text = os.fspath(pattern)
        if is_movie(text):
            raise UsageError("keyframes are an image sequence (EXR, PNG, TIFF), not a movie",
                             path=text)
        self.source = os.path.abspath(text)  # the chain identity holds it: one spelling
        self.pattern = SequencePattern.parse(self.source)
        self._lock = threading.Lock()
        self._hashes: dict[tuple, str] = {}

    def frames(self) -> list[int]:
        """Frames with a keyframe file on disk now, sorted."""
        return self.pattern.discover()

    def path_for(self, frame: int) -> str:
        """The keyframe file of `frame` (whether or not it exists)."""
        return self.pattern.path_for(frame)

    def content_hash(self, frame: int) -> str:
        """`sha256:<hex>` of the keyframe file's bytes (InputError when it cannot be read)."""
        path = self.path_for(frame)
        try:
            stat = os.stat(path)
        except OSError as exc:
            reason = "file not found" if isinstance(exc, FileNotFoundError) else exc.strerror
            raise InputError(f"cannot read the keyframe ({reason})", path=path,
                             frame=frame) from None
        memo = (frame, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        with self._lock:
            known = self._hashes.get(memo)
        if known is None:
            known = _hash_file(path, frame)
            with self._lock:
                self._hashes[memo] = known
        return known

    def info(self, frame: int, width: int, height: int) -> ImageInfo:
        """Header facts of the keyframe's matte channel, checked against the plate's display
        size (`width` x `height`); InputError names the file and frame otherwise."""
        with ImageReader(self.path_for(frame), frame) as reader:
            return self._matte_info(reader, frame, width, height)

    def read(self, frame: int, width: int, height: int) -> np.ndarray:
        """The keyframe's matte over the display window: (height, width) float32 in [0, 1]
        (NaN and negatives read as 0, values above 1 as 1)."""
        with ImageReader(self.path_for(frame), frame) as reader:
            info = self._matte_info(reader, frame, width, height)
            alpha = reader.pixels(info)[..., 0]
        alpha = np.nan_to_num(alpha, nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(alpha, 0.0, 1.0).astype(np.float32, copy=False)

    def _matte_info(self, reader: ImageReader, frame: int, width: int,
                    height: int) -> ImageInfo:
        """The channel holding the matte, in the first part, with the size check."""
        channels = list(reader.specs[0].channelnames)
        name = "A" if "A" in channels else (channels[0] if len(channels) == 1 else "")
        if not name:
            raise InputError(f"a keyframe needs an alpha channel A or a single grey channel "
                             f"(channels: {', '.join(channels)})", path=reader.path,
                             frame=frame)
        info = reader.info_for_channels(0, [name])
        if (info.width, info.height) != (width, height):
            raise InputError(f"the keyframe is {info.width}x{info.height} but the plate is "
                             f"{width}x{height}", path=reader.path, frame=frame,
                             hint="a keyframe matches the plate's display window")
        return info


def _hash_file(path: str, frame: int) -> str:
    """SHA-256 of a file's bytes, as `sha256:<hex>`."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise InputError(f"cannot read the keyframe ({exc.strerror})", path=path,
                         frame=frame) from None
    return f"sha256:{digest.hexdigest()}"
