"""Hostile worker protocol: abusive request lines sent to one real `vrmbg worker`.

The worker runs the tiny random model on the CPU (settings `{"model": MODEL, "device": "cpu",
"resolution": 64}`), with $HOME and $VRMBG_CACHE pointing at temp folders. A valid session `S`
is opened first; then every line of `abusive_lines` is sent alone: not JSON, not UTF-8, lone
surrogates (`\\ud800`, `\\udcff`) in the id, op, input, session and settings keys and values,
NUL characters, JSON nested 100,000 deep, lines over 1 MiB, unknown ops and fields, wrong
types, frames far outside the shot, an `open` of plates in a folder whose name is not UTF-8,
`trust_remote_code` in settings, odd inputs and settings. After each line the benchmark waits
(with a time limit) for its final event - one with the line's id, or an `error` with id null
when the id cannot be read - then sends a `status` probe that must be answered too. Then the
same lines again in one burst (pipelined, fresh ids), and 2,000 pipelined `status` requests.

Problems counted: a line never answered (`hangs`), answered more than once (`duplicates`), an
`error` with code 1 (`internal_errors`) or a `traceback` field (`tracebacks`), the worker gone
(`worker_deaths`; a new one is started to go on), an event line that is not a JSON object
(`bad_event_lines`), and answers that differ from the documented one (`unexpected_answers`:
an error where the line is valid, a success where it must be refused). `max_rss_mb` is the
worker's peak memory (frames far outside a shot must be refused before anything is built).

`run_protocol(root, model, timeout)` returns the counts and up to 20 failures with the
worker's stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

_HERE = os.path.dirname(os.path.abspath(__file__))
for _folder in (os.path.join(_HERE, "..", "support"), os.path.join(_HERE, "..")):
    if os.path.normpath(_folder) not in map(os.path.normpath, sys.path):
        sys.path.insert(0, _folder)

from render_helpers import clean_env, make_plates  # noqa: E402
from worker_helpers import RawWorker  # noqa: E402

FIRST = 1001
SESSION = "S"
PROGRESS = ("progress", "frame")
PIPELINED = 2000
NOT_JSON = "<event line is not a JSON object>"
DEEP = 100_000


# --------------------------------------------------------------------------- the worker

class Worker(RawWorker):
    """A `RawWorker` whose reader survives event lines that are not JSON (counted instead)."""

    def _read(self) -> None:
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                event = None
            if not isinstance(event, dict) or "event" not in event or "id" not in event:
                event = {"id": NOT_JSON, "event": NOT_JSON, "raw": raw[:300].decode(
                    "utf-8", "replace")}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def write(self, data: bytes) -> bool:
        """Send raw bytes; False when the worker's stdin is gone."""
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def finals_since(self, start: int, end: int | None = None) -> list[tuple[int, dict]]:
        """(index, event) of the final events from `start` (to `end`)."""
        with self._cond:
            chosen = self.events[start:end]
        return [(start + i, e) for i, e in enumerate(chosen) if e.get("event") not in PROGRESS]

    def wait_final(self, ids: Sequence[Any], start: int, timeout: float) -> tuple[int, dict] | None:
        """The first final event from `start` whose id is one of `ids`; None on timeout or
        when the worker's output ended."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(start, len(self.events)):
                    e = self.events[i]
                    if e.get("event") not in PROGRESS and _id_in(e.get("id"), ids):
                        return i, e
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    return None
                self._cond.wait(min(left, 0.2))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def peak_rss_mb(self) -> float:
        """The worker's peak resident memory (VmHWM), in MiB (0 when unknown)."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


def _exit_code(worker: Worker) -> int | None:
    """The worker's exit code (waiting a little for a dying one)."""
    try:
        return worker.proc.wait(5)
    except Exception:
        return None


def _id_in(value: Any, ids: Sequence[Any]) -> bool:
    """`value` equals one of `ids` (True is not 1; None only matches None)."""
    return any(type(value) is type(i) and value == i for i in ids)


# --------------------------------------------------------------------------- the lines

@dataclass
class Line:
    """One request line, the ids its final event may carry, and what it should get."""

    name: str
    data: bytes
    ids: tuple  # None = the id cannot be read (error with id null)
    expect: str = "error"  # "error", "ok" (a final event that is not an error) or "any"
    codes: tuple = ()  # for an expected error: the codes documented for it (empty = any but 1)
    heavy: bool = False  # left out of the burst round (huge lines, cancel: it races)


def _j(obj: Any) -> bytes:
    """JSON (ASCII, so lone surrogates travel as \\uXXXX escapes)."""
    return json.dumps(obj, ensure_ascii=True).encode("ascii")


def abusive_lines(plates: str, bad_folder_plates: str, settings: dict, home: str,
                  tag: str = "") -> list[Line]:
    """Every abusive line (ids end with `tag`, so a second round has fresh ids)."""
    lines: list[Line] = []

    def raw(name: str, data: bytes, ids=(None,), expect="error", codes=(2,), heavy=False):
        lines.append(Line(name, data, tuple(ids), expect, tuple(codes), heavy))

    def req(name: str, obj: dict, expect="error", codes=(2,), alt_null=False, heavy=False):
        rid = f"{name}{tag}"
        obj = {"id": rid, **obj}
        ids = (rid, None) if alt_null else (rid,)
        lines.append(Line(name, _j(obj), ids, expect, tuple(codes), heavy))

    # not a request at all: answered with id null
    raw("not-json", b"not json")
    raw("truncated-json", b'{"id": "x", "op": "sta')
    raw("array", b"[1, 2, 3]")
    raw("string", b'"status"')
    raw("null", b"null")
    raw("not-utf8", b'\xff\xfe{"id": "x\xff", "op": "status"}')
    raw("bom", b'\xef\xbb\xbf{"id": "bom' + tag.encode() + b'", "op": "status"}',
        ids=(None, f"bom{tag}"), expect="any")
    raw("raw-nonutf8-path", b'{"id": "rawpath' + tag.encode() + b'", "op": "open", "input": "'
        + os.fsencode(bad_folder_plates) + b'"}', ids=(None, f"rawpath{tag}"))
    # ids that cannot be read
    raw("id-surrogate-d800", b'{"id": "\\ud800", "op": "nope"}')
    raw("id-surrogate-dcff", b'{"id": "\\udcff", "op": "status"}')
    raw("id-surrogate-pair-half", b'{"id": "a\\udbff", "op": "status"}')
    raw("id-nul", b'{"id": "x\\u0000y", "op": "status"}')
    raw("id-missing", b'{"op": "status"}')
    for label, value in (("true", b"true"), ("float", b"1.5"), ("list", b"[1]"),
                         ("object", b'{"a": 1}'), ("null", b"null"), ("inf", b"1e400"),
                         ("nan", b"NaN")):
        raw(f"id-{label}", b'{"id": ' + value + b', "op": "status"}')
    raw("id-too-long", _j({"id": "x" * 201, "op": "status"}))
    # nesting and size
    raw("nested-100000-array", b"[" * DEEP + b"]" * DEEP, heavy=True)
    raw("nested-100000-in-request", f'{{"id": "deep1{tag}", "op": "status", "session": '.encode()
        + b"[" * DEEP + b"]" * DEEP + b"}", ids=(None, f"deep1{tag}"), heavy=True)
    raw("nested-100000-in-settings", f'{{"id": "deep2{tag}", "op": "open", "input": '.encode()
        + _j(plates) + b', "settings": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}",
        ids=(None, f"deep2{tag}"), heavy=True)
    req("nested-20-in-settings", {"op": "open", "input": plates,
                                  "settings": json.loads('{"a": ' * 20 + "1" + "}" * 20)})
    raw("line-1MiB-plus", _j({"id": f"big1{tag}", "op": "status",
                              "session": "a" * ((1 << 20) + 16)}),
        ids=(None, f"big1{tag}"), heavy=True)
    raw("line-8MiB-garbage", b"x" * (8 << 20), heavy=True)
    raw("digits-5000", f'{{"id": "digits{tag}", "op": "ensure", "session": "{SESSION}", '
        f'"frame": {"1" * 5000}}}'.encode(), ids=(None, f"digits{tag}"))
    req("frame-nan", {"op": "ensure", "session": SESSION, "frame": float("nan")})
    req("frame-infinity", {"op": "ensure", "session": SESSION, "frame": float("inf")})
    # ops
    req("op-surrogate", {"op": "\ud800"})
    req("op-nul", {"op": "status\x00"})
    for label, op in (("nope", "nope"), ("empty", ""), ("dunder-init", "__init__"),
                      ("op-status", "op_status"), ("upper", "STATUS"), ("space", "status "),
                      ("handle-line", "handle_line"), ("stop", "stop"), ("serve", "serve")):
        req(f"op-{label}", {"op": op})
    for label, op in (("int", 5), ("null", None), ("list", ["status"]), ("bool", True)):
        req(f"op-type-{label}", {"op": op})
    req("op-missing", {})
    # fields
    req("field-unknown-status", {"op": "status", "bogus": 1})
    req("field-unknown-ensure", {"op": "ensure", "session": SESSION, "frame": FIRST, "force": 1})
    req("field-unknown-open-trust", {"op": "open", "input": plates, "settings": settings,
                                     "trust_remote_code": True})
    req("field-surrogate-name", {"op": "status", "\udcff": 1})
    req("field-nul-name", {"op": "status", "a\x00": 1})
    req("open-no-input", {"op": "open", "settings": settings})
    req("ensure-no-session", {"op": "ensure", "frame": FIRST})
    req("ensure-both", {"op": "ensure", "session": SESSION, "frame": FIRST, "frames": "1001"})
    req("ensure-neither", {"op": "ensure", "session": SESSION})
    req("cache-info-no-session", {"op": "cache_info"})
    req("close-no-session", {"op": "close"})
    # wrong types
    for label, obj in (
            ("open-input-int", {"op": "open", "input": 5}),
            ("open-input-list", {"op": "open", "input": [plates]}),
            ("open-settings-string", {"op": "open", "input": plates, "settings": "x"}),
            ("open-settings-list", {"op": "open", "input": plates, "settings": [settings]}),
            ("open-session-int", {"op": "open", "input": plates, "session": 5}),
            ("open-preview-string", {"op": "open", "input": plates, "preview": "yes"}),
            ("open-movie-start-string", {"op": "open", "input": plates, "movie_start": "1001"}),
            ("open-movie-start-bool", {"op": "open", "input": plates, "movie_start": True}),
            ("hello-protocol-string", {"op": "hello", "protocol": "1"}),
            ("ensure-frame-string", {"op": "ensure", "session": SESSION, "frame": "1001"}),
            ("ensure-frame-bool", {"op": "ensure", "session": SESSION, "frame": True}),
            ("ensure-frame-float", {"op": "ensure", "session": SESSION, "frame": 1001.5}),
            ("ensure-frames-int", {"op": "ensure", "session": SESSION, "frames": 1001}),
            ("ensure-supersede-string", {"op": "ensure", "session": SESSION, "frame": FIRST,
                                         "supersede": "yes"}),
            ("status-session-int", {"op": "status", "session": 5}),
            ("cancel-session-list", {"op": "cancel", "session": []})):
        req(label, obj)
    # lone surrogates and NUL in the fields
    req("session-surrogate-status", {"op": "status", "session": "\ud800"})
    req("session-surrogate-ensure", {"op": "ensure", "session": "\udcff", "frame": FIRST})
    req("session-surrogate-open", {"op": "open", "input": plates, "settings": settings,
                                   "session": "\ud800"})
    req("session-nul", {"op": "status", "session": "S\x00"})
    req("input-surrogate", {"op": "open", "input": "/tmp/\ud800/sh010.####.exr",
                            "settings": settings})
    req("input-nonutf8-folder", {"op": "open", "input": bad_folder_plates, "settings": settings})
    req("input-nul", {"op": "open", "input": plates + "\x00", "settings": settings})
    req("input-nul-middle", {"op": "open", "input": "/tmp/a\x00b/sh010.####.exr",
                             "settings": settings})
    req("settings-key-surrogate", {"op": "open", "input": plates,
                                   "settings": {**settings, "\ud800": 1}})
    req("settings-key-surrogate-dcff", {"op": "open", "input": plates,
                                        "settings": {"\udcff": "x", **settings}})
    req("settings-key-nul", {"op": "open", "input": plates,
                             "settings": {**settings, "mo\x00del": "x"}})
    req("settings-model-surrogate", {"op": "open", "input": plates,
                                     "settings": {**settings, "model": "/tmp/\udcff"}})
    req("settings-ocio-surrogate", {"op": "open", "input": plates,
                                    "settings": {**settings, "ocio": "\ud800.ocio"}})
    req("settings-cache-dir-surrogate", {"op": "open", "input": plates,
                                         "settings": {**settings, "cache_dir": "/tmp/\udcff"}})
    req("settings-model-nul", {"op": "open", "input": plates,
                               "settings": {**settings, "model": "a\x00b"}})
    # downloaded code: never switched on by a request alone
    req("settings-trust-remote-code", {"op": "open", "input": plates,
                                       "settings": {**settings, "trust_remote_code": True}},
        codes=(4, 2))
    # settings the schema refuses
    for label, extra in (("resolution-negative", {"resolution": -1}),
                         ("resolution-huge", {"resolution": 10 ** 12}),
                         ("resolution-string", {"resolution": "sixty-four"}),
                         ("resolution-float", {"resolution": 1.5}),
                         ("resolution-nan", {"resolution": float("nan")}),
                         ("device-bogus", {"device": "tpu"}),
                         ("precision-bogus", {"precision": "fp8"}),
                         ("threads-negative", {"threads": -5}),
                         ("setting-unknown", {"bogus": 1}),
                         ("compression-bogus", {"compression": "zip; rm -rf /"})):
        req(f"settings-{label}", {"op": "open", "input": plates,
                                  "settings": {**settings, **extra}})
    req("settings-model-missing", {"op": "open", "input": plates,
                                   "settings": {**settings, "model": "/nonexistent/model"}},
        codes=(4, 2))
    req("settings-cache-dir-root", {"op": "open", "input": plates,
                                    "settings": {**settings, "cache_dir": "/"}})
    req("settings-cache-dir-home", {"op": "open", "input": plates,
                                    "settings": {**settings, "cache_dir": home}})
    req("open-movie-start-huge", {"op": "open", "input": plates, "settings": settings,
                                  "movie_start": 10 ** 30}, expect="any")
    # odd inputs
    for label, value in (("empty", ""), ("root", "/"), ("dev-zero", "/dev/zero"),
                         ("proc-mem", "/proc/self/mem"), ("folder", os.path.dirname(plates)),
                         ("long", "/tmp/" + "a" * 5000 + ".####.exr"),
                         ("tilde", "~/sh010.####.exr"), ("dash", "-"),
                         ("missing", "/nonexistent/sh010.####.exr")):
        req(f"input-{label}", {"op": "open", "input": value, "settings": settings},
            codes=(2, 3))
    # frames far outside the shot (session S is open)
    for label, frame in (("20000000", 20_000_000), ("-20000000", -20_000_000),
                         ("1e30", 10 ** 30), ("-2e63", -(2 ** 63)), ("before-shot", FIRST - 1)):
        req(f"frame-{label}", {"op": "ensure", "session": SESSION, "frame": frame},
            codes=(2, 3))
    for label, frames in (("1001-111111111111111111111111", "1001-111111111111111111111111"),
                          ("111111111111111111111111111111", "111111111111111111111111111111"),
                          ("1001-1001000", "1001-1001000"),
                          ("-20000000--19999999", "-20000000--19999999"),
                          ("step-0", "1001-1003x0"), ("step-negative", "1001-1003x-1"),
                          ("empty", ""), ("words", "abc"), ("comma-storm", "," * 1000)):
        req(f"frames-{label}", {"op": "ensure", "session": SESSION, "frames": frames},
            codes=(2, 3))
    req("frames-reversed", {"op": "ensure", "session": SESSION, "frames": "1003-1001"},
        expect="any")
    req("frames-step-beyond-range", {"op": "ensure", "session": SESSION,
                                     "frames": "1001-1003x99999999999999999999"}, expect="any")
    req("settings-resolution-numeric-string", {"op": "open", "input": plates,
                                               "settings": {**settings, "resolution": "64"}},
        expect="any")
    # unknown sessions
    for op in ("ensure", "close", "clear", "cache_info", "cancel", "status"):
        obj = {"op": op, "session": "no-such-session"}
        if op == "ensure":
            obj["frame"] = FIRST
        req(f"unknown-session-{op}", obj)
    # controls: valid requests between the abuse still work
    req("ok-status", {"op": "status"}, expect="ok")
    req("ok-hello", {"op": "hello", "protocol": 1, "client": "hostile"}, expect="ok")
    req("ok-ensure", {"op": "ensure", "session": SESSION, "frame": FIRST + 1}, expect="ok")
    req("ok-cache-info", {"op": "cache_info", "session": SESSION}, expect="ok")
    req("ok-cancel", {"op": "cancel"}, expect="ok", heavy=True)
    return lines


# --------------------------------------------------------------------------- running

@dataclass
class Result:
    """What happened to one line."""

    name: str
    round: str
    answer: dict | None = None
    problems: list[str] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    log: str = ""

    def fail(self, kind: str, text: str) -> None:
        self.kinds.add(kind)
        self.problems.append(text)


class Protocol:
    """One worker (a new one after a death) and the results."""

    def __init__(self, root: str, model: str, timeout: float) -> None:
        self.root, self.timeout = root, timeout
        self.home = os.path.join(root, "home")
        self.cache = os.path.join(root, "cache")
        os.makedirs(self.home, exist_ok=True)
        self.settings = {"model": model, "device": "cpu", "resolution": 64}
        self.plates = make_plates(os.path.join(root, "plates"), range(FIRST, FIRST + 6))
        self.bad_plates = self._plates_in_non_utf8_folder()
        self.results: list[Result] = []
        self.deaths = 0
        self.workers = 0
        self.peak_rss = 0.0
        self.probes = 0
        self.worker: Worker | None = None
        self.log_tracebacks = 0
        self.missing_nulls = 0  # burst: unreadable lines left without their id-null answer

    def _plates_in_non_utf8_folder(self) -> str:
        """Plates in a folder whose name holds the byte 0xff (written under a plain name,
        then renamed); the path as Python spells it (a lone surrogate escape)."""
        plain = os.path.join(self.root, "plain")
        make_plates(plain, range(FIRST, FIRST + 3))
        bad = os.path.join(os.fsencode(self.root), b"plates-\xff")
        os.rename(plain, bad)
        return os.path.join(os.fsdecode(bad), "sh010.####.exr")

    def env(self) -> dict[str, str]:
        env = clean_env(HOME=self.home, VRMBG_CACHE=self.cache)
        env.pop("XDG_CACHE_HOME", None)
        return env

    def start(self) -> str:
        """A new worker with session S open; '' or what went wrong."""
        if self.worker is not None:
            self._retire()
        self.worker = Worker(env=self.env())
        self.workers += 1
        rid = f"open-S-{self.workers}"
        start = len(self.worker.events)
        self.worker.write(_j({"id": rid, "op": "open", "input": self.plates,
                              "settings": self.settings, "session": SESSION}) + b"\n")
        got = self.worker.wait_final([rid], start, self.timeout)
        if got is None or got[1].get("event") != "opened":
            return f"session S did not open: {got and got[1]}; log {self.worker.log[-3:]}"
        return ""

    def _retire(self) -> None:
        w = self.worker
        self.peak_rss = max(self.peak_rss, w.peak_rss_mb())
        self.log_tracebacks += sum(1 for line in w.log if "Traceback" in line)
        w.close(timeout=30)

    def probe(self) -> tuple[bool, int]:
        """A `status` answered? (and the index of its answer)."""
        self.probes += 1
        rid = f"probe-{self.probes}"
        start = len(self.worker.events)
        if not self.worker.write(_j({"id": rid, "op": "status"}) + b"\n"):
            return False, start
        got = self.worker.wait_final([rid], start, self.timeout)
        if got is None or got[1].get("event") != "status":
            return False, start
        return True, got[0]

    def check_answer(self, r: Result, line: Line, event: dict) -> None:
        """Internal errors, tracebacks, and whether the answer is the documented one."""
        r.answer = {k: event.get(k) for k in ("id", "event", "code", "message", "cancelled")
                    if k in event}
        if event.get("event") == NOT_JSON:
            r.fail("bad_event_lines", f"event line is not JSON: {event.get('raw')!r}")
            return
        if event.get("event") == "error" and event.get("code") == 1:
            r.fail("internal_errors", f"internal error: {event.get('message')}")
        if "traceback" in event:
            r.fail("tracebacks", "traceback field in the answer")
        if event.get("event") == "done" and event.get("cancelled") is True:
            return  # a queued ensure ended by a cancel: answered, and rightly so
        if line.expect == "error" and event.get("event") != "error":
            r.fail("unexpected_answers", f"not refused: answered {event.get('event')}")
        elif line.expect == "error" and line.codes and event.get("code") not in line.codes \
                and event.get("code") != 1:
            r.fail("unexpected_answers", f"error code {event.get('code')} "
                                         f"(documented: {'/'.join(map(str, line.codes))})")
        elif line.expect == "ok" and event.get("event") == "error":
            r.fail("unexpected_answers", f"a valid request refused: {event.get('message')}")
        if event.get("event") == "error" and not str(event.get("message") or "").strip():
            r.fail("unexpected_answers", "error without a message")

    def one(self, line: Line) -> Result:
        """Send one line alone; wait for its answer, then for a status probe."""
        r = Result(line.name, "one by one")
        self.results.append(r)
        w = self.worker
        start = len(w.events)
        sent = w.write(line.data + b"\n")
        got = w.wait_final(line.ids, start, self.timeout) if sent else None
        if got is None:
            if w.alive() and not w.ended:
                r.fail("hangs", f"no answer within {self.timeout:.0f} s")
            else:
                r.fail("worker_deaths", f"worker died (exit {_exit_code(w)})")
        else:
            self.check_answer(r, line, got[1])
        answered, end = self.probe() if w.alive() else (False, len(w.events))
        if not answered and "worker_deaths" not in r.kinds:
            w.proc.poll()
            if w.alive() and not w.ended:
                r.fail("hangs", "the status probe after it was not answered")
            else:
                r.fail("worker_deaths", f"worker died (exit {_exit_code(w)})")
        finals = [e for _i, e in w.finals_since(start, end + 1 if answered else None)
                  if _id_in(e.get("id"), line.ids)]
        if len(finals) > 1:
            r.fail("duplicates", f"{len(finals)} final events for one line")
        if "worker_deaths" in r.kinds or "hangs" in r.kinds:
            r.log = "\n".join(w.log[-8:])
            if "worker_deaths" in r.kinds:
                self.deaths += 1
            problem = self.start()
            if problem:
                r.fail("worker_deaths", f"restart failed: {problem}")
        return r

    def burst(self, lines: list[Line]) -> None:
        """All `lines` written at once (fresh ids); each answered exactly once."""
        w = self.worker
        start = len(w.events)
        data = b"".join(line.data + b"\n" for line in lines)
        writer = threading.Thread(target=w.write, args=(data,), daemon=True)
        writer.start()
        named = [line for line in lines if line.ids != (None,)]
        null_only = sum(1 for line in lines if line.ids == (None,))
        deadline = time.monotonic() + max(self.timeout, 2.0 * len(lines))
        while time.monotonic() < deadline and not w.ended:
            finals = w.finals_since(start)
            by_id = [e.get("id") for _i, e in finals]
            answered_named = sum(1 for line in named if any(
                _id_in(i, line.ids) for i in by_id))
            if answered_named == len(named) and by_id.count(None) >= null_only:
                break
            time.sleep(0.1)
        writer.join(5)
        time.sleep(0.5)  # late duplicates
        finals = [e for _i, e in w.finals_since(start)]
        nulls_needed = null_only
        for line in lines:
            r = Result(line.name, "burst")
            self.results.append(r)
            if line.ids == (None,):
                continue
            named_id = next(i for i in line.ids if i is not None)
            own = [e for e in finals if _id_in(e.get("id"), [named_id])]
            if len(own) > 1:
                r.fail("duplicates", f"{len(own)} final events for one line")
            if own:
                self.check_answer(r, line, own[0])
            elif None in line.ids:
                nulls_needed += 1
            else:
                r.fail("hangs" if w.alive() else "worker_deaths", "no answer in the burst")
        nulls = [e for e in finals if e.get("id") is None]
        for e in nulls:
            if e.get("event") != "error" or e.get("code") == 1 or "traceback" in e:
                r = Result("burst: id-null answer", "burst")
                self.results.append(r)
                self.check_answer(r, Line("null", b"", (None,)), e)
        self.missing_nulls = max(0, nulls_needed - len(nulls))
        if len(nulls) != nulls_needed:
            r = Result("burst: id-null answers", "burst")
            self.results.append(r)
            kind = "duplicates" if len(nulls) > nulls_needed else "hangs"
            r.fail(kind, f"{len(nulls)} answers with id null for {nulls_needed} unreadable lines")
        if not w.alive():
            self.deaths += 1
            self.results[-1].fail("worker_deaths", "worker died in the burst")
            self.start()

    def pipelined(self, count: int) -> Result:
        """`count` status requests written at once: each answered exactly once."""
        r = Result(f"{count} pipelined status", "pipelined")
        self.results.append(r)
        w = self.worker
        start = len(w.events)
        ids = [f"pipe-{i}" for i in range(count)]
        data = b"".join(_j({"id": i, "op": "status"}) + b"\n" for i in ids)
        began = time.monotonic()
        threading.Thread(target=w.write, args=(data,), daemon=True).start()
        wanted = set(ids)
        deadline = began + max(self.timeout, 120.0)
        seen: dict[str, int] = {}
        while time.monotonic() < deadline and not w.ended:
            finals = w.finals_since(start)
            seen = {}
            for _i, e in finals:
                if e.get("id") in wanted:
                    seen[e["id"]] = seen.get(e["id"], 0) + 1
            if len(seen) == count:
                break
            time.sleep(0.05)
        r.answer = {"answered": len(seen), "seconds": round(time.monotonic() - began, 2)}
        if len(seen) < count:
            r.fail("hangs" if w.alive() else "worker_deaths",
                   f"{count - len(seen)} of {count} not answered")
        time.sleep(0.3)
        finals = w.finals_since(start)
        extra = sum(1 for _i, e in finals if e.get("id") in wanted) - len(seen)
        if extra:
            r.fail("duplicates", f"{extra} extra answers")
        for _i, e in finals:
            if e.get("id") in wanted and e.get("event") != "status":
                r.fail("unexpected_answers", f"answered {e.get('event')}: {e.get('message')}")
                break
        return r


COUNTERS = ("internal_errors", "tracebacks", "hangs", "worker_deaths", "duplicates",
            "unexpected_answers", "bad_event_lines")


def run_protocol(root: str, model: str, timeout: float = 60.0, details: bool = False) -> dict:
    """Drive one worker with every abusive line; the counts and up to 20 failures."""
    started = time.monotonic()
    p = Protocol(root, model, timeout)
    problem = p.start()
    if problem:
        return {"error": problem, "seconds": round(time.monotonic() - started, 1)}
    root_before = sorted(os.listdir("/"))
    lines = abusive_lines(p.plates, p.bad_plates, p.settings, p.home)
    for line in lines:
        p.one(line)
    sent = len(lines)
    burst = [line for line in abusive_lines(p.plates, p.bad_plates, p.settings, p.home,
                                            tag="-b") if not line.heavy]
    p.burst(burst)
    sent += len(burst)
    p.pipelined(PIPELINED)
    sent += PIPELINED
    alive_at_end, _ = p.probe()
    p.peak_rss = max(p.peak_rss, p.worker.peak_rss_mb())
    log = list(p.worker.log)
    p._retire()
    root_after = sorted(os.listdir("/"))
    problems = [r for r in p.results if r.problems]
    pipelined = next(r for r in p.results if r.round == "pipelined")
    per_line = [r for r in p.results if r.round != "pipelined" and not r.name.startswith(
        "burst: ")]
    answered = (sum(1 for r in per_line if not ({"hangs", "worker_deaths"} & r.kinds))
                - p.missing_nulls + (pipelined.answer or {}).get("answered", 0))
    counts: dict[str, Any] = {
        "lines": sent, "one_by_one": len(lines), "burst": len(burst), "pipelined": PIPELINED,
        "answered": answered,
    }
    for kind in COUNTERS:
        counts[kind] = sum(1 for r in p.results if kind in r.kinds)
    counts["worker_deaths"] = max(counts["worker_deaths"], p.deaths)
    counts["tracebacks_in_worker_log"] = p.log_tracebacks
    counts["alive_at_end"] = alive_at_end
    counts["workers_started"] = p.workers
    counts["max_rss_mb"] = round(p.peak_rss, 1)
    counts["pipelined_seconds"] = (pipelined.answer or {}).get("seconds")
    counts["root_folder_changed"] = sorted(set(root_after) ^ set(root_before))
    answers: dict[str, str] = {}
    for r in p.results:
        if r.round == "one by one" and r.answer:
            a = r.answer
            answers[r.name] = (f"{a.get('event')} {a.get('code', '')}".strip()
                               + (" (id null)" if a.get("id") is None else ""))
    kinds: dict[str, int] = {}
    for text in answers.values():
        kinds[text] = kinds.get(text, 0) + 1
    counts["answers_one_by_one"] = dict(sorted(kinds.items()))
    if details:
        counts["answers"] = answers
    counts["seconds"] = round(time.monotonic() - started, 1)
    counts["failures"] = [{"line": r.name, "round": r.round, "problems": r.problems,
                           "answer": r.answer, "stderr": (r.log or "\n".join(log[-4:]))[-600:]}
                          for r in problems[:20]]
    shutil.rmtree(p.cache, ignore_errors=True)
    return counts
