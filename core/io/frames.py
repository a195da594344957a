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
from typing import Sequence

from ...plugin.frame_ranges import format_frame_ranges, parse_frame_ranges
from ..errors import InputError, UsageError

_TOKEN = re.compile(r"(#+)|%(0?\d*)d|(@+)|\$F(\d*)(?![A-Za-z_])")
_PLAIN_FRAME = re.compile(r"[._](-?\d+)\.[^.]+$")  # `name.1001.exr` / `name_1001.exr`


def parse_frame_spec(spec: str) -> list[int]:
    """Frames named by a spec like `1001-1100x2,1200`, sorted and without duplicates.

    The rules are the wire's (`plugin/frame_ranges.py`), so hosts and the engine read a
    range the same way. Raises UsageError with the offending item for anything malformed,
    reversed or empty, so a typo on a farm submission fails at once instead of rendering the
    wrong frames.
    """
    try:
        return parse_frame_ranges(spec)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def find_gaps(frames: Sequence[int]) -> list[tuple[int, int]]:
    """Inclusive runs of frames missing between the first and last frame present."""
    ordered = sorted(set(frames))
    return [(a + 1, b - 1) for a, b in zip(ordered, ordered[1:]) if b - a > 1]


def format_frame(frame: int, padding: int) -> str:
    """A frame number padded to `padding` characters, sign included (-1 -> `-001`)."""
    return f"{frame:0{padding}d}" if padding > 1 else str(frame)


def check_path_text(path: str) -> str:
    """`path` when the image and movie libraries can open it; UsageError when it holds
    bytes that are not UTF-8 (Python reads them as lone surrogates, which OpenImageIO and
    FFmpeg cannot take) or a NUL character."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise UsageError(f"the path '{shown}' is not UTF-8 text, which the image libraries "
                         "cannot open", hint="rename the folder or file") from None
    if "\x00" in path:
        raise UsageError(f"the path {path!r} holds a NUL character")
    return path


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
        """Recognise the frame token in `path`; UsageError for two tokens in one file name
        or a path that is not UTF-8 text."""
        text = check_path_text(os.fspath(path))
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
