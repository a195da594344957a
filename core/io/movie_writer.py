"""Movie output through PyAV (FFmpeg): mattes and composites as ProRes .mov, atomically.

`write_movie` writes a matte as ProRes 4444 with the matte in alpha (and as grey RGB), or a
composite as ProRes 422 HQ of premultiplied RGB, tagged Rec.709 limited range. The file is
filled under a temp name and renamed over the target (`fs.atomic_write`): no partial movie on
any error, and the movie written is read back (its header only) to hold every frame encoded
before it replaces anything.

PyAV is imported when a movie is written, not with this module (about 65 ms that every
command writing no movie would pay).
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Iterable

import numpy as np

from ..errors import OutputError, UsageError
from ..fs import atomic_write, disk_full_error
from .ffmpeg import AVCOL_RANGE_MPEG, BT709, ffmpeg_message, fps_fraction

_KINDS = {
    # kind: (ProRes profile, encoder pixel format, source numpy layout)
    "matte": ("4444", "yuva444p10le", "rgba64le"),
    "composite": ("hq", "yuv422p10le", "rgb48le"),
}


def _codes16(frame: np.ndarray, kind: str) -> np.ndarray:
    """One output frame as uint16 code values: matte -> grey RGB + alpha, composite -> RGB."""
    data = np.asarray(frame, dtype=np.float32)
    if kind == "matte":
        if data.ndim == 3 and data.shape[2] == 1:
            data = data[..., 0]
        if data.ndim != 2:
            raise ValueError(f"a matte frame must be (H, W), got shape {data.shape}")
        data = np.repeat(data[..., None], 4, axis=2)
    else:
        if data.ndim != 3 or data.shape[2] not in (3, 4):
            raise ValueError(f"a composite frame must be (H, W, 3|4), got shape {data.shape}")
        if data.shape[2] == 4:
            data = data[..., :3] * data[..., 3:4]  # straight RGBA -> premultiplied RGB
    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(np.round(np.clip(data, 0.0, 1.0) * 65535.0).astype(np.uint16))


def _encode(tmp: str, frames: Iterable[np.ndarray], rate: Fraction, kind: str,
            timecode: str, comment: str = "") -> int:
    """Encode `frames` into a new ProRes .mov at `tmp`; returns the number of frames."""
    import av
    from av.video.reformatter import ColorRange, Colorspace

    profile, pix_fmt, layout = _KINDS[kind]
    count = 0
    with av.open(tmp, "w", format="mov") as container:
        stream = container.add_stream("prores_ks", rate=rate)
        stream.options = {"profile": profile, "vendor": "apl0"}
        if timecode:
            stream.metadata["timecode"] = timecode
        if comment:
            container.metadata["comment"] = comment
        for frame in frames:
            codes = _codes16(frame, kind)
            if count == 0:
                stream.height, stream.width = codes.shape[:2]
                stream.pix_fmt = pix_fmt
                context = stream.codec_context
                context.colorspace = context.color_primaries = context.color_trc = BT709
                context.color_range = AVCOL_RANGE_MPEG
            elif codes.shape[:2] != (stream.height, stream.width):
                raise OutputError(f"frame {count} is {codes.shape[1]}x{codes.shape[0]}, "
                                  f"the movie is {stream.width}x{stream.height}")
            video = av.VideoFrame.from_ndarray(codes, format=layout).reformat(
                format=pix_fmt, dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
            video.pts = count
            container.mux(stream.encode(video))
            count += 1
        if count:
            container.mux(stream.encode(None))
    return count


def write_movie(path: str, frames: Iterable[np.ndarray], *, fps: float | int | str | Fraction,
                kind: str, timecode: str = "", comment: str = "") -> None:
    """Write frames as a ProRes .mov, atomically (no partial file on any error).

    kind="matte": each frame is an (H, W) alpha in 0..1, written as ProRes 4444 with the matte
    in alpha and as grey RGB (mattes are data: no colour conversion).
    kind="composite": each frame is (H, W, 3) premultiplied RGB code values in 0..1, or
    (H, W, 4) straight RGBA which is premultiplied here; written as ProRes 422 HQ (no alpha).
    Values are tagged Rec.709 (limited range); NaN/Inf become 0 and values are clamped.
    `timecode` ("HH:MM:SS:FF") is the start timecode written into the movie, if given;
    `comment` goes into the movie's comment metadata.
    """
    if kind not in _KINDS:
        raise UsageError(f"unknown movie kind {kind!r}; use 'matte' or 'composite'")
    if os.path.splitext(os.fspath(path))[1].lower() != ".mov":
        raise UsageError("ProRes movies are written as .mov; change the output extension",
                         path=path)
    rate = fps_fraction(fps)

    def write(tmp: str) -> None:
        import av

        try:
            count = _encode(tmp, frames, rate, kind, timecode, comment)
        except (av.FFmpegError, ValueError) as exc:
            raise OutputError(f"cannot encode the movie ({ffmpeg_message(exc)})",
                              path=path) from None
        if count == 0:
            raise OutputError("no frames to write", path=path)
        found = _frames_in(tmp)
        if found != count:
            reason = f"the movie written holds {found} of its {count} frames"
            raise disk_full_error(os.fspath(path), "finish the movie", reason=reason) \
                or OutputError(f"cannot finish the movie: {reason}", path=path)

    atomic_write(os.fspath(path), write)


def _frames_in(path: str) -> int:
    """How many frames the movie at `path` says it holds (its index, no decoding); 0 when
    it cannot be opened (a file cut short has no index)."""
    import av

    try:
        with av.open(path, "r") as container:
            return int(container.streams.video[0].frames or 0)
    except (av.FFmpegError, IndexError, OSError, ValueError):
        return 0
