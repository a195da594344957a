"""Movie plates through PyAV (FFmpeg): a movie read as a plate sequence.

A movie (ProRes, DNxHR, H.264/HEVC in .mov/.mp4/.mxf/.mkv/.avi: `formats.FORMATS`) is read as a
plate sequence whose frames are numbered from a chosen start (1001 by default), with the same
interface as `vrmbg.core.io.plates.PlateSequence`, so the engine cannot tell them apart.

Pixels are the movie's display-referred code values in 0..1 (YUV decoded to RGB with the
matrix and range the file is tagged with; untagged HD is taken as Rec.709 limited range). No
colour conversion happens here: the colour space is chosen explicitly by the user, and
`MOVIE_DEFAULT_COLORSPACE` (Rec.709 video) is the name to use when they choose nothing.

Decoding is sequential-friendly: the file stays open and frames are decoded forward; a seek
happens only on a jump backwards or far forwards. Movies are assumed constant frame rate.

PyAV is imported where a movie is opened, not with this module: importing it costs about
65 ms, which every `vrmbg` command that reads no movie would pay. Writing movies is
`movie_writer`.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import InputError
from .ffmpeg import (AVCOL_RANGE_JPEG, AVCOL_RANGE_MPEG, AVCOL_SPC_UNSPECIFIED, ffmpeg_message,
                     fps_fraction)
from .plate_types import ImageInfo, Plate

DEFAULT_MOVIE_START = 1001  # frame number of a movie's first frame unless told otherwise

# The studio/cg configs' name for Rec.709 video (BT.1886 EOTF, gamma 2.4). Converting it to
# 'sRGB Encoded Rec.709 (sRGB)' is a pure transfer-function swap (the configs' default view
# transform is 'Un-tone-mapped'), so ordinary video reaches the model nearly unchanged.
MOVIE_DEFAULT_COLORSPACE = "Rec.1886 Rec.709 - Display"

# A forward jump of at most this many frames is decoded through instead of seeking.
_MAX_DECODE_AHEAD = 24
# Decoded frames kept, so readers on several threads asking for neighbouring frames slightly
# out of order do not force a seek back.
_KEEP_DECODED = 4


class _Overshot(InputError):
    """Decoding went past the wanted frame (a seek landed after it, or it is missing)."""


class MovieSequence:
    """A movie file seen as a plate sequence numbered from `start` (PlateSequence interface).

    Safe to read from several threads: decoding is serialised by a lock (the pixel conversion
    to float runs outside it), and the last few decoded frames are kept for readers that ask
    for neighbouring frames slightly out of order.
    """

    reads_in_order = True  # decoding runs forward: one reader, frames asked for in order

    def __init__(self, path: str, *, start: int = DEFAULT_MOVIE_START) -> None:
        import av

        self.path = os.fspath(path)
        self.pattern = self.path
        if not os.path.isfile(self.path):
            raise InputError("movie not found", path=self.path)
        try:
            self._container = av.open(self.path, "r")
            self._stream = self._container.streams.video[0]
        except IndexError:
            self._close_container()
            raise InputError("the movie has no video stream", path=self.path) from None
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"cannot open the movie ({ffmpeg_message(exc)})",
                             path=self.path) from None
        self._stream.thread_type = "AUTO"
        self.fps = Fraction(self._stream.average_rate or self._stream.guessed_rate or 24)
        self._frames_iter: Any = None
        self._next_index: int | None = None
        self._recent: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._origin_pts = self._first_frame_pts()
        count = self._frame_count()
        if count <= 0:
            raise InputError("the movie holds no video frames", path=self.path)
        self.first_frame = int(start)
        self.frames: list[int] = list(range(self.first_frame, self.first_frame + count))
        self.last_frame = self.frames[-1]

    # ---- opening helpers

    def _first_frame_pts(self) -> int:
        """Decode frame 0 (kept for the first read) and return its timestamp: the time origin."""
        import av

        self._seek(0)
        try:
            frame = next(self._frames_iter)
        except StopIteration:
            raise InputError("the movie holds no video frames", path=self.path) from None
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"cannot decode the movie ({ffmpeg_message(exc)})",
                             path=self.path) from None
        self._next_index = 1
        self._remember(0, frame)
        self._sample = frame
        return frame.pts if frame.pts is not None else 0

    def _frame_count(self) -> int:
        """Frames in the stream: the container's count, else counted by demuxing (no decoding)."""
        if self._stream.frames:
            return int(self._stream.frames)
        import av

        count = 0
        try:
            with av.open(self.path, "r") as probe:
                for packet in probe.demux(video=0):
                    if packet.size:
                        count += 1
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"cannot scan the movie ({ffmpeg_message(exc)})",
                             path=self.path) from None
        return count

    # ---- decoding

    def _index_of(self, frame: Any, fallback: int) -> int:
        """Frame index of a decoded frame from its timestamp (constant frame rate)."""
        if frame.pts is None:
            return fallback
        seconds = (frame.pts - self._origin_pts) * self._stream.time_base
        return int(round(seconds * self.fps))

    def _pts_of(self, index: int) -> int:
        return self._origin_pts + int(round(index / (self.fps * self._stream.time_base)))

    def _seek(self, index: int) -> None:
        """Position the decoder at the key frame at or before `index`."""
        import av

        try:
            if index > 0:
                self._container.seek(self._pts_of(index), stream=self._stream, backward=True)
            else:
                self._container.seek(0, stream=self._stream, backward=True)
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"cannot seek in the movie ({ffmpeg_message(exc)})",
                             path=self.path, frame=self._frame_number(index)) from None
        self._frames_iter = self._container.decode(self._stream)
        self._next_index = None  # unknown until the first frame after the seek is decoded

    def _decode_next(self, index: int) -> Any:
        """Decode frames forward until the one with `index`; InputError when it is not there."""
        import av

        fallback = self._next_index if self._next_index is not None else 0
        while True:
            try:
                frame = next(self._frames_iter)
            except StopIteration:
                frame = None
            except (av.FFmpegError, OSError) as exc:
                self._next_index = None  # the decoder is spent: the next read seeks afresh
                raise InputError(f"cannot decode the movie ({ffmpeg_message(exc)})",
                                 path=self.path, frame=self._frame_number(index)) from None
            if frame is None:
                self._next_index = None
                raise InputError("the movie ended before this frame", path=self.path,
                                 frame=self._frame_number(index))
            got = self._index_of(frame, fallback)
            self._next_index = fallback = got + 1
            self._remember(got, frame)
            if got == index:
                return frame
            if got > index:
                self._next_index = None  # a seek landed past the frame (or it is missing)
                raise _Overshot("frame not found in the movie (variable frame rate?)",
                                 path=self.path, frame=self._frame_number(index))

    def _remember(self, index: int, frame: Any) -> None:
        """Keep a decoded frame among the last few."""
        if index not in self._recent:  # each frame with its own lock for the pixel conversion
            self._recent[index] = (frame, threading.Lock())
        self._recent.move_to_end(index)
        while len(self._recent) > _KEEP_DECODED:
            self._recent.popitem(last=False)

    def _video_frame(self, index: int) -> tuple[Any, threading.Lock]:
        """Decoded frame `index` and its conversion lock, decoding forward or seeking as
        needed (call with the decoder lock held)."""
        if index in self._recent:
            self._recent.move_to_end(index)
            return self._recent[index]
        nxt = self._next_index
        if nxt is None or index < nxt or index - nxt > _MAX_DECODE_AHEAD:
            self._seek(index)
        try:
            self._decode_next(index)
        except _Overshot:
            if index == 0:
                raise
            self._seek(0)  # the key frame index was unhelpful: decode from the start
            self._decode_next(index)
        return self._recent[index]

    def _frame_number(self, index: int) -> int:
        return getattr(self, "first_frame", DEFAULT_MOVIE_START) + index

    def _index(self, frame: int) -> int:
        index = int(frame) - self.first_frame
        if not 0 <= index < len(self.frames):
            raise InputError(f"frame outside the movie ({self.first_frame}-{self.last_frame})",
                             path=self.path, frame=frame)
        return index

    # ---- PlateSequence interface

    def info(self, frame: int) -> ImageInfo:
        """Image description of a frame (size, channels, codec metadata, this frame's timecode)."""
        index = self._index(frame)
        sample = self._sample
        bits = _bit_depth(sample)
        width, height = sample.width, sample.height
        metadata, types = self._metadata(index)
        return ImageInfo(
            path=self.path, file_format="movie", width=width, height=height,
            display_window=(0, 0, width, height), data_window=(0, 0, width, height),
            channels=("R", "G", "B"), parts=(), pixel_type="uint8" if bits <= 8 else "uint16",
            bit_depth=bits, metadata=metadata, attribute_types=types)

    def _metadata(self, index: int) -> tuple[dict[str, Any], dict[str, str]]:
        """Frame rate, this frame's timecode and codec facts, typed as OIIO attributes.

        Keys follow the standard EXR names (`framesPerSecond`, `smpte:TimeCode`) so mattes written
        from a movie frame carry them like mattes of EXR plates do.
        """
        stream = self._stream
        rate = fps_fraction(self.fps)
        meta: dict[str, Any] = {
            "framesPerSecond": (rate.numerator, rate.denominator),
            "movie:codec": stream.codec_context.name,
            "movie:pix_fmt": self._sample.format.name,
            "movie:frame_index": index,
        }
        types = {"framesPerSecond": "rational", "movie:codec": "string",
                 "movie:pix_fmt": "string", "movie:frame_index": "int"}
        start_tc = stream.metadata.get("timecode") or self._container.metadata.get("timecode")
        if start_tc:
            meta["movie:start_timecode"], types["movie:start_timecode"] = str(start_tc), "string"
            packed = _timecode_plus(str(start_tc), index, self.fps)
            if packed is not None:
                meta["smpte:TimeCode"], types["smpte:TimeCode"] = (packed, 0), "timecode"
        return meta, types

    def read(self, frame: int, *, keep_half: bool = False, threads: int = 0) -> Plate:
        """Decode one frame as a Plate: rgb (H, W, 3) float32 display-referred code values 0..1.

        `keep_half` and `threads` are accepted for the plate-reader interface; movies always
        give float32, converted on the calling thread.
        """
        index = self._index(frame)
        with self._lock:
            if self._container is None:
                raise InputError("the movie was closed", path=self.path, frame=frame)
            video, frame_lock = self._video_frame(index)
        with frame_lock:  # PyAV keeps one converter per frame object
            rgb = _to_rgb01(video)
        return Plate(frame=int(frame), path=self.path, rgb=rgb, info=self.info(frame))

    def fingerprint(self, frame: int, content: bool = False) -> str:
        """Identity of a frame for chain hashes: file size+mtime+index, or a hash of its pixels."""
        index = self._index(frame)
        if content:
            rgb = self.read(frame).rgb
            digest = hashlib.blake2b(rgb.tobytes(), digest_size=16)
            digest.update(repr(rgb.shape).encode())
            return f"movie-content:{digest.hexdigest()}"
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            raise InputError(f"cannot read the movie ({exc.strerror})", path=self.path,
                             frame=frame) from None
        return f"movie:{stat.st_size}:{stat.st_mtime_ns}:{index}"

    # ---- lifetime

    def _close_container(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None

    def close(self) -> None:
        """Close the file (reading again afterwards is an error)."""
        with self._lock:
            self._frames_iter = None
            self._recent.clear()
            self._close_container()

    def __enter__(self) -> "MovieSequence":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self._close_container()
        except Exception:
            pass


def _bit_depth(frame: Any) -> int:
    """Bits per component of a decoded frame's pixel format (8 for 8-bit video)."""
    return max((component.bits for component in frame.format.components), default=8)


def _to_rgb01(frame: Any) -> np.ndarray:
    """A decoded frame as (H, W, 3) float32 RGB in 0..1 (8-bit -> /255, deeper -> /65535)."""
    from av.video.reformatter import Colorspace

    options: dict[str, Any] = {}
    if frame.colorspace == AVCOL_SPC_UNSPECIFIED and frame.height >= 720:
        options["src_colorspace"] = Colorspace.ITU709  # HD video convention when untagged
    if frame.color_range in (AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG):
        options["src_color_range"] = frame.color_range
    if _bit_depth(frame) <= 8:
        codes, scale = frame.to_ndarray(format="rgb24", **options), 1.0 / 255.0
    else:
        codes, scale = frame.to_ndarray(format="rgb48le", **options), 1.0 / 65535.0
    rgb = codes.astype(np.float32)
    rgb *= np.float32(scale)
    return np.ascontiguousarray(rgb)


_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.])(\d{2})$")


def _timecode_plus(start: str, frames: int, fps: Fraction) -> int | None:
    """SMPTE timecode `frames` after `start` ("HH:MM:SS:FF"), packed as in EXR/OIIO
    (BCD digits: frames bits 0-5, seconds 8-14, minutes 16-22, hours 24-29).

    Drop-frame timecodes (";") and unparsable text give None (the start is still recorded).
    """
    match = _TIMECODE.match(start.strip())
    base = int(round(fps))
    if match is None or match.group(4) != ":" or base <= 0:
        return None
    hh, mm, ss, _, ff = match.groups()
    total = ((int(hh) * 60 + int(mm)) * 60 + int(ss)) * base + int(ff) + frames
    total %= 24 * 3600 * base
    seconds = total // base
    digits = (total % base, seconds % 60, seconds // 60 % 60, seconds // 3600)
    return sum(((value // 10) << 4 | value % 10) << shift
               for value, shift in zip(digits, (0, 8, 16, 24)))


def read_movie_frames(path: str, *, alpha: bool = False) -> list[np.ndarray]:
    """All frames of a (short) movie as float32 arrays in 0..1: RGB, or RGBA with `alpha`.

    A convenience for checks and tests; use MovieSequence for plates.
    """
    import av

    layout = "rgba64le" if alpha else "rgb48le"
    out = []
    try:
        with av.open(os.fspath(path), "r") as container:
            for frame in container.decode(video=0):
                codes = frame.to_ndarray(format=layout)
                out.append(codes.astype(np.float32) / np.float32(65535.0))
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"cannot read the movie ({ffmpeg_message(exc)})", path=path) from None
    return out
