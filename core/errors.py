"""One exception family for everything a user can get wrong, with the exit codes the CLI returns.

Every error renders as one line that names the file and frame when they are known, so an
artist or a farm log shows what to fix without a traceback.
"""

from __future__ import annotations

import os
from typing import Callable

# Exit codes (documented in the README; farm wranglers key retries on them).
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: unexpected exception (traceback printed)
EXIT_USAGE = 2  # bad command line or settings
EXIT_INPUT = 3  # plates: missing/corrupt frame, wrong channels, unknown colour space
EXIT_MODEL = 4  # weights: missing, gated, corrupt, refused (pickle), unsupported variant
EXIT_OUTPUT = 5  # cannot write mattes/cache: permissions, conflicting output
EXIT_RETRY = 75  # this host cannot do it now (no GPU, no space, another chain's mattes): retry elsewhere
EXIT_CANCELLED = 130  # SIGINT/SIGTERM: finished frames are kept, the current one finishes

# What a farm should do with each code: retry on another host, or fail the job for a person.
RETRYABLE_EXITS = frozenset({EXIT_RETRY, EXIT_CANCELLED})


def retry_advice(code: int) -> str:
    """What a farm wrangler should do about an exit code, in a few words."""
    if code in RETRYABLE_EXITS:
        return "a retry on another host may succeed"
    if code == EXIT_INTERNAL:
        return "a bug: please report it"
    return "a retry will fail the same way: fix the input or settings"


def one_line(text: object, default: str = "") -> str:
    """Text with every line break and run of spaces folded, so a message stays one log line."""
    return " ".join(str(text).split()) or default


def library_text(read: Callable[[], object], default: str = "") -> str:
    """A library's message (e.g. `oiio.geterror`) as one line, whatever bytes it holds.

    Damaged files can put bytes that are not UTF-8 into a library's error text, and its
    Python binding then raises UnicodeDecodeError while handing the text over; the bytes
    are kept instead, undecodable ones shown as U+FFFD, so the user still gets one line.
    """
    try:
        text = read()
    except UnicodeDecodeError as exc:
        raw = exc.object if isinstance(exc.object, (bytes, bytearray)) else b""
        text = bytes(raw).decode("utf-8", "replace")
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    return one_line(text if text is not None else "", default)


def first_line(exc: BaseException) -> str:
    """First line of an exception's text (its type name when empty), for one-line messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class VrmbgError(Exception):
    """Base of every user-facing error; `exit_code` is what the command line returns."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, path: str | os.PathLike | None = None,
                 frame: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.frame = frame
        self.hint = hint

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(self.path)
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        text = f"{': '.join(where)}: {self.message}" if where else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return one_line(text)


class UsageError(VrmbgError):
    """A bad flag, frame range, pattern or setting."""

    exit_code = EXIT_USAGE


class InputError(VrmbgError):
    """A plate frame that cannot be used: missing, unreadable, wrong channels or size."""

    exit_code = EXIT_INPUT


class ColourError(InputError):
    """An OCIO config or colour space that cannot be resolved."""


class ModelError(VrmbgError):
    """Weights that cannot be found, fetched, trusted or loaded."""

    exit_code = EXIT_MODEL


class OutputError(VrmbgError):
    """Mattes or cache entries that cannot be written safely."""

    exit_code = EXIT_OUTPUT


class NoSpaceError(OutputError):
    """The disk or quota is full: another host, or this one later, may succeed."""

    exit_code = EXIT_RETRY


class HostError(VrmbgError):
    """This host cannot run the work now (no GPU here); the same command on another host
    may succeed."""

    exit_code = EXIT_RETRY


class Cancelled(VrmbgError):
    """The user or the farm asked us to stop; finished frames are kept."""

    exit_code = EXIT_CANCELLED
