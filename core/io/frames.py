"""Frame numbers and file-name patterns of image sequences.

Patterns (the frame token may appear once, anywhere in the file name):

- `####`      padding = number of `#` (`plate.####.exr` -> `plate.1001.exr`)
- `%04d`      printf style, `%d` = no padding
- `@`, `@@@@` padding = number of `@`
- `$F4`       Houdini style, `$F` = no padding
- a plain file name (no token) is a one-frame "sequence"

Negative frames are written the way Nuke writes them: the sign counts toward the padding,
so frame -1 with `####` is `-001` and frame -12345 is `-12345`.

Frame specs (`--frames`): `1001-1100`, `1001-1100x2` (every 2nd), `1001,1005-1010`, `7`,
negative frames `-5--1` and `-3-2`. Items are separated by commas or spaces.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import InputError, UsageError

MAX_SPEC_FRAMES = 1_000_000  # a spec larger than this is a typo, not a shot

_SPEC_ITEM = re.compile(r"^(-?\d+)(?:-(-?\d+)(?:x(\d+))?)?$")
_TOKEN = re.compile(r"(#+)|%(0?\d*)d|(@+)|\$F(\d*)(?![A-Za-z_])")
_PLAIN_FRAME = re.compile(r"[._](-?\d+)\.[^.]+$")  # `name.1001.exr` / `name_1001.exr`


def parse_frame_spec(spec: str) -> list[int]:
    """Frames named by a spec like `1001-1100x2,1200`, sorted and without duplicates.

    Raises UsageError with the offending item for anything malformed, reversed or empty,
    so a typo on a farm submission fails at once instead of rendering the wrong frames.
    """
    text = str(spec).strip()
    if not text:
        raise UsageError("empty frame range (expected e.g. 1001-1100, 1001-1100x2, 1001,1005)")
    frames: set[int] = set()
    for group in text.split(","):
        items = group.split()
        if not items:
            raise UsageError(f"frame range {spec!r} has an empty item")
        for item in items:
            frames.update(_parse_spec_item(item, spec))
            if len(frames) > MAX_SPEC_FRAMES:
                raise UsageError(f"frame range {spec!r} names more than {MAX_SPEC_FRAMES} frames")
    return sorted(frames)


def _parse_spec_item(item: str, spec: str) -> range:
    """One `a`, `a-b` or `a-bxN` item as a range (inclusive of b)."""
    match = _SPEC_ITEM.match(item)
    if not match:
        raise UsageError(f"bad frame range item {item!r} in {spec!r} "
                         "(expected e.g. 1001, 1001-1100, 1001-1100x2, -5--1)")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    step = int(match.group(3)) if match.group(3) is not None else 1
    if last < first:
        raise UsageError(f"frame range item {item!r} in {spec!r} ends before it starts")
    if step < 1:
        raise UsageError(f"frame range item {item!r} in {spec!r} has a step below 1")
    if (last - first) // step + 1 > MAX_SPEC_FRAMES:
        raise UsageError(f"frame range {spec!r} names more than {MAX_SPEC_FRAMES} frames")
    return range(first, last + 1, step)


def format_frame_ranges(frames: Iterable[int]) -> str:
    """Compact text for a set of frames, e.g. `1001-1010,1012,1020-1030x2`.

    Runs of 3+ frames with a constant step become `a-bxN`; the text parses back to the
    same frames with `parse_frame_spec`.
    """
    ordered = sorted(set(int(f) for f in frames))
    items: list[str] = []
    index = 0
    while index < len(ordered):
        end, step = _run_from(ordered, index)
        first, last = ordered[index], ordered[end]
        if end == index:
            items.append(str(first))
        elif step == 1:
            items.append(f"{first}-{last}")
        else:
            items.append(f"{first}-{last}x{step}")
        index = end + 1
    return ",".join(items)


def _run_from(ordered: Sequence[int], index: int) -> tuple[int, int]:
    """End index and step of the constant-step run starting at `index` (step>1 needs 3 frames)."""
    if index + 1 >= len(ordered):
        return index, 1
    step = ordered[index + 1] - ordered[index]
    end = index + 1
    while end + 1 < len(ordered) and ordered[end + 1] - ordered[end] == step:
        end += 1
    if step > 1 and end - index < 2:
        return index, 1
    return end, step


def find_gaps(frames: Sequence[int]) -> list[tuple[int, int]]:
    """Inclusive runs of frames missing between the first and last frame present."""
    ordered = sorted(set(frames))
    return [(a + 1, b - 1) for a, b in zip(ordered, ordered[1:]) if b - a > 1]


def format_frame(frame: int, padding: int) -> str:
    """A frame number padded to `padding` characters, sign included (-1 -> `-001`)."""
    return f"{frame:0{padding}d}" if padding > 1 else str(frame)


@dataclass(frozen=True)
class SequencePattern:
    """A file-name pattern of an image sequence (or a single file) and its frame token."""

    pattern: str
    padding: int
    is_sequence: bool
    folder: str = ""  # folder of the files ("" = current folder)
    prefix: str = ""  # file-name text before the frame token
    tail: str = ""  # file-name text after the token (extension included)
    single_frame: int = 1  # the frame a plain file stands for

    @classmethod
    def parse(cls, path: str) -> "SequencePattern":
        """Recognise the frame token in `path`; UsageError for two tokens in one file name."""
        text = os.fspath(path)
        folder, name = os.path.split(text)
        tokens = list(_TOKEN.finditer(name))
        if not tokens:
            match = _PLAIN_FRAME.search(name)
            frame = int(match.group(1)) if match else 1
            return cls(text, 0, False, single_frame=frame)
        if len(tokens) > 1:
            raise UsageError(f"pattern {text!r} has more than one frame token")
        token = tokens[0]
        return cls(text, _token_padding(token), True, folder, name[:token.start()],
                   name[token.end():])

    def path_for(self, frame: int) -> str:
        """The file of `frame` (a plain file is returned as is)."""
        if not self.is_sequence:
            return self.pattern
        name = f"{self.prefix}{format_frame(int(frame), self.padding)}{self.tail}"
        return os.path.join(self.folder, name) if self.folder else name

    def frame_of(self, name: str) -> int | None:
        """The frame a file name in the pattern's folder belongs to, or None.

        Only names this pattern would write back exactly count, so `plate.01001.exr` is not
        frame 1001 of `plate.####.exr` and temp files are never mistaken for frames.
        """
        if len(name) <= len(self.prefix) + len(self.tail):
            return None
        if not (name.startswith(self.prefix) and name.endswith(self.tail)):
            return None
        digits = name[len(self.prefix):len(name) - len(self.tail)]
        if not re.fullmatch(r"-?\d+", digits):
            return None
        frame = int(digits)
        return frame if format_frame(frame, self.padding) == digits else None

    def discover(self) -> list[int]:
        """Frames present on disk, sorted (a plain file: its frame if it exists)."""
        if not self.is_sequence:
            return [self.single_frame] if os.path.isfile(self.pattern) else []
        folder = self.folder or "."
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise InputError(f"cannot list the folder ({exc.strerror})", path=folder) from None
        frames = {f for f in map(self.frame_of, names) if f is not None}
        return sorted(frames)


def _token_padding(token: re.Match) -> int:
    """Padding of a matched frame token (1 = no padding)."""
    hashes, printf, ats, houdini = token.groups()
    if hashes:
        return len(hashes)
    if ats:
        return len(ats)
    digits = printf if printf is not None else houdini
    return int(digits) if digits else 1
