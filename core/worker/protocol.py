"""Request lines of the worker protocol: parsing and checking, before anything runs.

Each op declares its fields with their JSON types; anything else (a field that is not
declared, a wrong type, a line that is not a JSON object) is a `BadRequest` that the request
loop answers with an `error` event. The id is read first so the error can name the request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ...plugin.protocol import MAX_LINE_BYTES, OPS, PRUNE_SCOPES
from ..errors import EXIT_USAGE

# op -> {field: (allowed python types after json.loads, required)}
_STR, _INT, _BOOL, _DICT = (str,), (int,), (bool,), (dict,)
FIELDS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "hello": {"protocol": (_INT, False), "client": (_STR, False)},
    "open": {"input": (_STR, True), "settings": (_DICT, False), "session": (_STR, False),
             "preview": (_BOOL, False), "movie_start": (_INT, False)},
    "ensure": {"session": (_STR, True), "frame": (_INT, False), "frames": (_STR, False),
               "supersede": (_BOOL, False)},
    "cancel": {"session": (_STR, False)},
    "status": {"session": (_STR, False)},
    "cache_info": {"session": (_STR, True)},
    "clear": {"session": (_STR, True)},
    "prune": {"session": (_STR, True), "max_bytes": (_INT, False), "scope": (_STR, False)},
    "release": {},
    "close": {"session": (_STR, True)},
    "shutdown": {},
}
assert set(FIELDS) == set(OPS)

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object"}


class BadRequest(Exception):
    """A request that cannot run; `request_id` is None when the id could not be read."""

    def __init__(self, message: str, request_id: Any = None, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.code = code


@dataclass
class Request:
    """One checked request: its id, op and fields (only declared ones, of the right types)."""

    id: Any
    op: str
    fields: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """A field's value, or `default` when the request left it out."""
        return self.fields.get(name, default)


def parse_request(line: bytes) -> Request:
    """One stdin line -> a `Request`; raises BadRequest naming what is wrong."""
    if len(line) > MAX_LINE_BYTES:
        raise BadRequest(f"request line of {len(line)} bytes is over the "
                         f"{MAX_LINE_BYTES}-byte limit")
    try:
        message = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise BadRequest("request nests too deeply (objects or arrays inside each other)") from None
    except ValueError as exc:
        raise BadRequest(f"request is not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise BadRequest(f"request must be a JSON object, got {type(message).__name__}")
    request_id = message.get("id")
    if not _is_id(request_id) or _bad_text(request_id):
        raise BadRequest("request needs an \"id\" (a string of text or an integer)")
    for name, value in message.items():
        problem = _bad_text(name) or _bad_text(value)
        if problem:
            raise BadRequest(f"field {_printable(name)!r} {problem}", request_id)
    op = message.get("op")
    if not isinstance(op, str) or op not in FIELDS:
        raise BadRequest(f"unknown op {op!r} (expected one of {', '.join(OPS)})", request_id)
    fields = {k: v for k, v in message.items() if k not in ("id", "op")}
    _check_fields(op, fields, request_id)
    return Request(request_id, op, fields)


MAX_DEPTH = 8  # settings are one object deep; nothing a host sends nests further


def _bad_text(value: Any, depth: int = 0) -> str:
    """Why `value` (or text inside it) cannot be used, or "" when it can.

    JSON may carry lone surrogates (how Python spells a path that is not UTF-8) and NUL
    characters; neither can name a file or travel back in a UTF-8 reply.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return "holds a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return ("holds text that is not valid Unicode (a lone surrogate; a path must be "
                    "UTF-8)")
        return ""
    if depth >= MAX_DEPTH and isinstance(value, (dict, list)):
        return "nests too deeply"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _bad_text(key, depth + 1) or _bad_text(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = _bad_text(item, depth + 1)
            if problem:
                return problem
    return ""


def _printable(text: Any) -> str:
    """A field name safe to quote in a reply."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _is_id(value: Any) -> bool:
    """Ids are strings or integers (not booleans, which JSON would also make ints)."""
    return (isinstance(value, str) and len(value) <= 200) or (
        isinstance(value, int) and not isinstance(value, bool))


def _check_fields(op: str, fields: dict[str, Any], request_id: Any) -> None:
    """Every field is declared for `op` and of its type; required ones are there."""
    declared = FIELDS[op]
    unknown = sorted(set(fields) - set(declared))
    if unknown:
        allowed = ", ".join(declared) or "none"
        raise BadRequest(f"{op}: unknown field(s) {', '.join(unknown)} (allowed: {allowed})",
                         request_id)
    for name, (types, required) in declared.items():
        if name not in fields:
            if required:
                raise BadRequest(f"{op}: missing field {name!r}", request_id)
            continue
        value = fields[name]
        wrong_bool = isinstance(value, bool) and bool not in types
        if wrong_bool or not isinstance(value, types):
            raise BadRequest(f"{op}: field {name!r} must be {_TYPE_NAMES[types[0]]}, "
                             f"got {json.dumps(value)[:60]}", request_id)
    if op == "prune" and (fields.get("scope", "shot") not in PRUNE_SCOPES
                          or fields.get("max_bytes", 0) < 0):
        raise BadRequest(f"prune: \"scope\" is one of {', '.join(PRUNE_SCOPES)} and "
                         "\"max_bytes\" is 0 or more", request_id)
    if op == "ensure" and ("frame" in fields) == ("frames" in fields):
        raise BadRequest("ensure: give either \"frame\" (an integer) or \"frames\" "
                         "(a range such as \"1001-1010\")", request_id)
