"""Image plates as a sequence: frames found on disk, read one at a time with one part/layer
choice, and `open_plates`, the one dispatch from a plate path to its reader.

`open_plates` looks the path up in `formats.FORMATS`: a movie becomes a `movie.MovieSequence`,
anything else a `PlateSequence` whose frames `image_reader.ImageReader` decodes. Both keep the
same interface (`engine.interfaces.Plates`), so the engine cannot tell them apart.
"""

from __future__ import annotations

import hashlib
import os
from typing import Sequence

from ..errors import InputError, UsageError
from .formats import is_movie
from .frames import SequencePattern, check_path_text
from .image_reader import ImageReader
from .movie import DEFAULT_MOVIE_START, MovieSequence
from .plate_types import ImageInfo, Plate


class PlateSequence:
    """An image sequence (or single file) read frame by frame with one part/layer choice."""

    reads_in_order = False  # any frame can be read at any time, by several threads

    def __init__(self, pattern: str, *, layer: str = "", part: str = "",
                 frames: Sequence[int] | None = None) -> None:
        self.pattern = SequencePattern.parse(pattern)
        self.layer = layer.strip().rstrip(".")
        self.part = str(part).strip()
        found = self.pattern.discover() if frames is None else sorted(set(frames))
        if frames is not None and not found:
            raise UsageError("no frames requested (empty frame list)", path=pattern)
        if not found:
            raise InputError("no frames found on disk", path=pattern,
                             hint="check the path and the frame token: ####, %04d, @, $F4")
        self.frames: list[int] = list(found)
        self.first_frame: int = self.frames[0]
        self._size: tuple[int, int, int] | None = None  # width, height, from frame

    def path_for(self, frame: int) -> str:
        """The file of `frame`."""
        return self.pattern.path_for(frame)

    def info(self, frame: int) -> ImageInfo:
        """Header of `frame` for the chosen part/layer (InputError if unusable)."""
        path = self.path_for(frame)
        with ImageReader(path, frame) as reader:
            info = reader.info(self.layer, self.part)
        self._check_size(info, frame)
        return info

    def read(self, frame: int, *, keep_half: bool = False, threads: int = 0) -> Plate:
        """Decode `frame`'s display-window RGB; InputError(path, frame) on any bad frame.

        `keep_half`: a half plate may come back as float16, for callers (the colour
        conversion) that widen it block by block anyway. `threads` caps the threads that
        convert the pixels (0 = OpenImageIO's count; 1 = the calling thread only, for callers
        that read several frames at once).
        """
        path = self.path_for(frame)
        with ImageReader(path, frame) as reader:
            info = reader.info(self.layer, self.part)
            self._check_size(info, frame)
            rgb = reader.pixels(info, keep_half=keep_half, threads=threads)
        return Plate(frame=frame, path=path, rgb=rgb, info=info)

    def fingerprint(self, frame: int, content: bool = False) -> str:
        """Identity of a frame's file: size + mtime (cheap) or a hash of its bytes."""
        path = self.path_for(frame)
        return file_fingerprint(path, content=content, frame=frame)

    def _check_size(self, info: ImageInfo, frame: int) -> None:
        """Refuse a frame whose display window size differs from the sequence's."""
        if self._size is None:
            self._size = self._reference_size(info, frame)
        width, height, reference = self._size
        if (info.width, info.height) != (width, height):
            raise InputError(
                f"resolution changes inside the sequence: {info.width}x{info.height}, "
                f"but frame {reference} is {width}x{height}", path=info.path, frame=frame)

    def _reference_size(self, info: ImageInfo, frame: int) -> tuple[int, int, int]:
        """Display size of the first frame (of this one if the first cannot be read)."""
        if frame != self.first_frame:
            try:
                with ImageReader(self.path_for(self.first_frame), self.first_frame) as reader:
                    first = reader.info(self.layer, self.part)
                return first.width, first.height, self.first_frame
            except InputError:
                pass
        return info.width, info.height, frame


def file_fingerprint(path: str, *, content: bool = False, frame: int | None = None) -> str:
    """`size:mtime_ns` of a file, or `sha256:<hex>` of its bytes when `content` is set."""
    try:
        if not content:
            stat = os.stat(path)
            return f"{stat.st_size}:{stat.st_mtime_ns}"
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return f"sha256:{digest.hexdigest()}"
    except FileNotFoundError:
        raise InputError("missing frame (file not found)", path=path, frame=frame) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=path, frame=frame) from None


def open_plates(path: str, *, layer: str = "", part: str = "",
                movie_start: int = DEFAULT_MOVIE_START) -> PlateSequence | MovieSequence:
    """Open plates: a MovieSequence for a movie file, else an image PlateSequence.

    Movies have no layers or parts; asking for one is a UsageError.
    """
    if is_movie(path):
        check_path_text(path)
        if layer or part:
            raise UsageError("movies have no layers or parts; drop --layer/--part", path=path)
        return MovieSequence(path, start=movie_start)
    return PlateSequence(path, layer=layer, part=part)
