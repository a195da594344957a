"""Chain keys: what makes a cached frame valid.

A *chain* is one shot under one set of result-affecting settings. Its identity (model weights
fingerprint, inference resolution, dtype, device class, colour identity, EXR layer/part, how
plates are fingerprinted, tier, engine format) is hashed into `identity_hash`; the chain's folder
is named by a short prefix of it (the chain id). From there every frame gets a key:

    h_start(s) = H("start", identity_hash, s)          s = the chain's first frame (shot start)
    h_f        = H("frame", h_prev, f, fingerprint(plate f) [+ hash of keyframe f])

A cached frame is used only when the key stored with it equals the one recomputed from today's
plates, so replacing or touching plate frame 1050 invalidates 1050 and every later frame, and
nothing before; a changed setting gives another identity, so another chain folder. Keyframes
(the artist's mattes) enter the keys the same way a plate does: a keyframe added, changed or
removed at 1050 invalidates 1050 onwards, and frames before it stay valid; their pattern (where
the keyframes live) is part of the identity, so two keyframe sources never share a chain.

The preview tier's bounded pre-roll starts a chain at a later frame `s` with a zero prior: the
start frame is part of h_start, so such frames can never pass for frames of the exact chain.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import threading
from typing import Any, Callable, Mapping, Sequence

from ..errors import InputError, UsageError
from .interfaces import plate_file

# Bump when the meaning of cached files changes (state layout, matte attributes, key recipe):
# older caches then simply stop matching instead of being misread.
ENGINE_FORMAT = 1

CHAIN_ID_LENGTH = 16
# Joins a keyframe's content hash to its frame's plate fingerprint (`PlateFingerprints`).
KEYFRAME_MARK = "|keyframe:"


def canonical_json(value: Any) -> str:
    """JSON text that is identical for equal values (sorted keys, no whitespace)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      default=str)


def _digest(*parts: str) -> str:
    """SHA-256 hex of the parts, each length-prefixed so no two part lists collide."""
    sha = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        sha.update(len(data).to_bytes(8, "little"))
        sha.update(data)
    return sha.hexdigest()


def identity_hash(identity: Mapping[str, Any]) -> str:
    """Hash of a chain identity (the settings that change results)."""
    return _digest("vrmbg-chain", str(ENGINE_FORMAT), canonical_json(dict(identity)))


def chain_id(identity_digest: str) -> str:
    """Short, folder-friendly id of a chain (a prefix of its identity hash)."""
    return identity_digest[:CHAIN_ID_LENGTH]


def start_key(identity_digest: str, start_frame: int) -> str:
    """h_start: the key the chain's first frame folds into (zero prior before it)."""
    return _digest("start", identity_digest, str(int(start_frame)))


def next_key(previous_key: str, frame: int, fingerprint: str) -> str:
    """h_f = H(h_prev, f, fingerprint of plate f)."""
    return _digest("frame", previous_key, str(int(frame)), fingerprint)


class ChainFrames:
    """The frames of a shot in chain order, and the keys of runs of them.

    `frames` is the plate sequence's frame list (sorted); the frame before `f` in the chain is
    the previous entry of that list, so a sequence stepped `x2` chains every second frame.
    `cuts` are frames where an edit starts a new shot: each starts a segment whose chain
    begins there with a zero prior, exactly like the shot's first frame.
    """

    def __init__(self, frames: Sequence[int], cuts: Sequence[int] = ()) -> None:
        self.frames = sorted(int(f) for f in frames)
        self._index = {f: i for i, f in enumerate(self.frames)}
        self.starts = sorted({self.frames[0], *(int(c) for c in cuts if int(c) in self._index)})
        self.cuts = self.starts[1:]

    def segment_start(self, frame: int) -> int:
        """The frame the chain through `frame` starts at: the last cut at or before it, or
        the shot's first frame."""
        return self.starts[bisect.bisect_right(self.starts, frame) - 1]

    def segment_end(self, frame: int) -> int:
        """The last frame of the segment holding `frame` (the frame before the next cut)."""
        later = bisect.bisect_right(self.starts, frame)
        if later == len(self.starts):
            return self.frames[-1]
        return self.frames[self._index[self.starts[later]] - 1]

    def segment(self, frame: int) -> "ChainFrames":
        """The frames of the segment holding `frame`, as a shot of their own."""
        return ChainFrames(self.between(self.segment_start(frame), self.segment_end(frame)))

    @property
    def first(self) -> int:
        """The shot's first frame (the start of the exact chain)."""
        return self.frames[0]

    def __contains__(self, frame: int) -> bool:
        return frame in self._index

    def index(self, frame: int) -> int:
        """Position of `frame` in the chain (KeyError when not a frame of the shot)."""
        return self._index[frame]

    def between(self, first: int, last: int) -> list[int]:
        """Frames of the chain from `first` to `last` inclusive, in order."""
        return self.frames[self._index[first]:self._index[last] + 1]

    def start_for(self, frame: int, preroll: int) -> int:
        """First frame of a chain reaching `frame`: its segment's start, or `preroll` frames
        before when that is later (a pre-roll never reaches back across a cut)."""
        start = self.segment_start(frame)
        if preroll <= 0:
            return start
        return max(start, self.frames[max(0, self._index[frame] - preroll)])


def shot_frames(frames: Sequence[int], shot_start: Any = "") -> list[int]:
    """The frames of a shot: the plate frames from `shot_start` on (empty = from the first
    plate frame on disk).

    Fixing the start keeps a chain when head frames are added to the plate folder later.
    UsageError for a start that is not a number, InputError for one with no plate frame.
    """
    ordered = sorted(int(f) for f in frames)
    text = str(shot_start if shot_start is not None else "").strip()
    if not text:
        return ordered
    try:
        start = int(text)
    except ValueError:
        raise UsageError(f"shot start must be a frame number, got {text!r}") from None
    if start not in ordered:
        first = ordered[0] if ordered else start
        raise InputError(f"the shot start {start} has no plate frame (the plates start at "
                         f"{first})", frame=start)
    return [f for f in ordered if f >= start]


def compute_identity(device: Any) -> str:
    """What besides the settings changes a model step's bits: on a CPU the thread count
    (torch splits sums differently over other thread counts) and the vector instruction set
    its kernels use (AVX2, AVX512...); on CUDA the GPU model.

    Part of a chain's identity, so a chain is only ever continued where a straight run of it
    gives the same bits.
    """
    import torch

    kind = getattr(device, "type", str(device))
    if kind == "cpu":
        capability = torch.backends.cpu.get_cpu_capability()
        return f"cpu:threads={torch.get_num_threads()}:{capability}"
    if kind == "cuda":
        index = getattr(device, "index", None)
        return f"cuda:{torch.cuda.get_device_name(index if index is not None else 0)}"
    return str(kind)


def fold_keys(identity_digest: str, frames: Sequence[int],
              fingerprint: Callable[[int], str]) -> dict[int, str]:
    """Keys of consecutive chain frames `frames[0]..frames[-1]`, the first being the start."""
    keys: dict[int, str] = {}
    if not frames:
        return keys
    key = start_key(identity_digest, frames[0])
    for frame in frames:
        key = next_key(key, frame, fingerprint(frame))
        keys[frame] = key
    return keys


class ContentMemo:
    """Content fingerprints kept across requests, keyed by each file's identity on disk
    (inode, size, mtime, ctime), so hashing a plate's bytes happens once per file version.
    Shared by every request of a session; safe from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple, str] = {}

    def get(self, key: tuple) -> str | None:
        """The fingerprint stored for this file identity, if any."""
        with self._lock:
            return self._values.get(key)

    def put(self, key: tuple, value: str) -> None:
        """Remember a fingerprint for this file identity."""
        with self._lock:
            self._values[key] = value


class PlateFingerprints:
    """The plate fingerprints of one request: each frame is fingerprinted at most once, so a
    request sees one consistent state of the plates. A new request makes a new object, so a
    plate replaced between requests is always noticed.

    With keyframes (`io.keyframes.KeyframeSequence`), the fingerprint of a keyframe's frame
    also holds the content hash of its keyframe file. Keys fold fingerprints in chain order,
    so the key of frame f covers every keyframe at or before f (frame and content), and
    nothing after it: adding, changing or removing the keyframe at k changes the keys of k
    and every later frame only, and frames before the first keyframe keep the keys they had
    without keyframes (their cached mattes stay valid). The keyframes on disk are listed
    once per request, so a keyframe painted while a session is open is seen by its next
    request.
    """

    def __init__(self, plates: Any, content: bool, memo: ContentMemo | None = None,
                 keyframes: Any = None) -> None:
        self._plates, self._content = plates, content
        self._memo = memo if memo is not None else ContentMemo()
        self._seen: dict[int, str] = {}
        self._keyframes = keyframes
        self.keyframes: frozenset[int] = (frozenset(keyframes.frames()) if keyframes is not None
                                          else frozenset())

    def __call__(self, frame: int) -> str:
        """Fingerprint of plate `frame` (size + mtime, or content when asked), with its
        keyframe's content hash when the frame has one."""
        value = self._seen.get(frame)
        if value is None:
            value = self._compute(frame)
            if frame in self.keyframes:
                value = f"{value}{KEYFRAME_MARK}{self._keyframes.content_hash(frame)}"
            self._seen[frame] = value
        return value

    def _compute(self, frame: int) -> str:
        """Read the fingerprint; content hashes are reused while the file is unchanged."""
        path = plate_file(self._plates, frame) if self._content else None
        if path is None:  # size + mtime, or a movie frame's content
            return self._plates.fingerprint(frame, content=self._content)
        try:
            stat = os.stat(path)
            key: tuple | None = (frame, stat.st_ino, stat.st_size, stat.st_mtime_ns,
                                 stat.st_ctime_ns)
        except OSError:
            key = None
        value = self._memo.get(key) if key else None
        if value is None:
            value = self._plates.fingerprint(frame, content=True)
            if key:
                self._memo.put(key, value)
        return value
