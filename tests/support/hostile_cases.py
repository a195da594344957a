"""Broken plate files derived from good ones, and the check that vrmbg fails cleanly on each.

Good sources are written with OpenImageIO (EXR scanline, tiled and multi-part, 10-bit DPX,
PNG); their structure is parsed here (EXR attributes, offset tables and chunks; DPX header
fields; PNG chunks) so the damage lands where decoders look: truncations at every structure
boundary, byte flips in headers and offset tables, absurd sizes and counts, wrong magic,
zero bytes. Everything is seeded: the same seed gives the same files.

`run_case` runs `vrmbg info` and `vrmbg render` on one broken file in child processes with a
time limit and returns what went wrong (traceback, signal, hang, exit code, message, debris).
Used by `tests/cli/test_hostile_inputs.py` (a sample) and `tests/benchmarks/hostile_inputs.py`
(the whole set).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from plate_factory import Part, ramp_rgb, write_dpx, write_exr, write_parts, write_plain

FRAME = 1001
SIZE = (64, 48)  # width, height: several chunks and tiles per file
EXTENSIONS = {"exr_scanline": ".exr", "exr_tiled": ".exr", "exr_multipart": ".exr",
              "dpx": ".dpx", "png": ".png"}
_BIG = 0x7FFFFFF0


@dataclass
class Case:
    """One broken file: the source it came from, what was done, and its bytes."""

    name: str
    source: str
    data: bytes

    @property
    def extension(self) -> str:
        """File extension of the source format."""
        return EXTENSIONS[self.source]


# --------------------------------------------------------------------------- sources

def write_sources(folder: str) -> dict[str, bytes]:
    """The good files every case is derived from, by source name."""
    os.makedirs(folder, exist_ok=True)
    width, height = SIZE
    rgb = ramp_rgb(height, width, 3)
    fixed = {"DateTime": ("string", "2026:01:01 00:00:00")}  # the same bytes on every run
    paths = {
        "exr_scanline": write_exr(os.path.join(folder, "scan.exr"), rgb, compression="zip",
                                  attributes=fixed),
        "exr_tiled": write_exr(os.path.join(folder, "tiled.exr"), rgb, tiled=True,
                               compression="piz", attributes=fixed),
        "exr_multipart": write_parts(os.path.join(folder, "multi.exr"), [
            Part(("R", "G", "B"), rgb, name="rgba", attributes=fixed),
            Part(("beauty.R", "beauty.G", "beauty.B"), rgb * 0.5, name="beauty")],
            compression="rle"),
        "dpx": write_dpx(os.path.join(folder, "scan.dpx"), np.clip(rgb, 0, 1), bits=10,
                         attributes=fixed),
        "png": write_plain(os.path.join(folder, "plate.png"), np.clip(rgb, 0, 1)),
    }
    sources = {}
    for name, path in paths.items():
        with open(path, "rb") as handle:
            sources[name] = handle.read()
    # DPX keeps the file's own path in its header: make it the same wherever we write.
    sources["dpx"] = _set(sources["dpx"], 36, b"plate.dpx".ljust(100, b"\0"))
    return sources


# --------------------------------------------------------------------------- EXR structure

@dataclass
class ExrAttribute:
    """One header attribute: where its name, type, size field and value lie."""

    name: str
    type: str
    start: int
    size_at: int
    value_at: int
    end: int


@dataclass
class ExrLayout:
    """Byte ranges of an EXR: headers, attributes, offset tables and chunks."""

    headers: list[list[ExrAttribute]] = field(default_factory=list)
    header_ends: list[int] = field(default_factory=list)
    table_start: int = 0
    table_end: int = 0
    chunks: list[int] = field(default_factory=list)  # chunk start offsets, sorted
    multipart: bool = False


def parse_exr(data: bytes) -> ExrLayout:
    """Parse a well-formed EXR's structure (the good sources only)."""
    layout = ExrLayout(multipart=bool(struct.unpack_from("<I", data, 4)[0] & 0x1000))
    pos = 8
    while True:
        attributes = []
        while data[pos] != 0:
            start = pos
            name_end = data.index(b"\0", pos)
            type_end = data.index(b"\0", name_end + 1)
            (size,) = struct.unpack_from("<i", data, type_end + 1)
            value_at = type_end + 5
            attributes.append(ExrAttribute(data[start:name_end].decode(),
                                           data[name_end + 1:type_end].decode(), start,
                                           type_end + 1, value_at, value_at + size))
            pos = value_at + size
        pos += 1
        layout.headers.append(attributes)
        layout.header_ends.append(pos)
        if not layout.multipart or data[pos] == 0:
            break
    if layout.multipart:
        pos += 1
    layout.table_start = pos
    first = struct.unpack_from("<Q", data, pos)[0]
    layout.table_end = first
    layout.chunks = sorted({struct.unpack_from("<Q", data, p)[0]
                            for p in range(pos, first, 8)})
    return layout


def _set(data: bytes, at: int, raw: bytes) -> bytes:
    """`data` with `raw` written at offset `at`."""
    out = bytearray(data)
    out[at:at + len(raw)] = raw
    return bytes(out)


def _flip(data: bytes, at: int, mask: int = 0xFF) -> bytes:
    """`data` with one byte XOR-ed."""
    out = bytearray(data)
    out[at] ^= mask
    return bytes(out)


def _exr_cases(source: str, data: bytes, rng: random.Random) -> Iterator[Case]:
    """Every damage we derive from one EXR source."""
    layout = parse_exr(data)
    boundaries = {4, 8}
    for attributes in layout.headers:
        for a in attributes:
            boundaries.update({a.start, a.start + 1, a.size_at, a.value_at,
                               (a.value_at + a.end) // 2, a.end})
    boundaries.update(layout.header_ends)
    boundaries.update({layout.table_start, layout.table_start + 4,
                       (layout.table_start + layout.table_end) // 2, layout.table_end})
    chunks = layout.chunks
    for chunk in {chunks[0], chunks[1], chunks[len(chunks) // 2], chunks[-1]}:
        boundaries.update({chunk + 4, chunk + 8, chunk + 12, chunk + 24})
    boundaries.add(len(data) - 1)
    for at in sorted(b for b in boundaries if 0 < b < len(data)):
        yield Case(f"{source}-truncate-{at}", source, data[:at])

    yield Case(f"{source}-magic", source, _flip(data, 0))
    yield Case(f"{source}-version", source, _set(data, 4, struct.pack("<I", 0x7F)))
    yield Case(f"{source}-flags", source, _set(data, 4, struct.pack("<I", 0xFFFFFF02)))
    for part, attributes in enumerate(layout.headers):
        for a in attributes:
            tag = f"{source}-p{part}-{a.name}"
            yield Case(f"{tag}-flip", source,
                       _flip(data, rng.randrange(a.value_at, a.end), rng.randrange(1, 256)))
            yield Case(f"{tag}-size-huge", source, _set(data, a.size_at, struct.pack("<i", _BIG)))
            yield Case(f"{tag}-size-negative", source, _set(data, a.size_at, struct.pack("<i", -5)))
            yield Case(f"{tag}-name-bytes", source, _set(data, a.start, b"\xff\xfe"))
            yield Case(f"{tag}-type-bytes", source,
                       _set(data, a.size_at - 1 - len(a.type), b"\xff\xfe"))
            yield from _exr_absurd_values(tag, source, data, a)
    yield from _exr_table_cases(source, data, layout, rng)
    yield from _exr_chunk_cases(source, data, layout, rng)


def _exr_absurd_values(tag: str, source: str, data: bytes, a: ExrAttribute) -> Iterator[Case]:
    """Absurd values for the attributes decoders size buffers from."""
    if a.type == "box2i":
        for label, box in (("huge", (0, 0, _BIG, _BIG)), ("inverted", (50, 40, 3, 2)),
                           ("far", (-_BIG, -_BIG, -_BIG + 63, -_BIG + 47)),
                           ("wide", (0, 0, 1 << 24, 0))):
            yield Case(f"{tag}-{label}", source, _set(data, a.value_at, struct.pack("<4i", *box)))
    elif a.type == "chlist":
        yield Case(f"{tag}-empty", source, _set(data, a.value_at, b"\0"))
        # xSampling/ySampling of the first channel (after name\0, type, pLinear+3 reserved)
        first_name_end = data.index(b"\0", a.value_at)
        sampling = first_name_end + 1 + 8
        yield Case(f"{tag}-sampling", source, _set(data, sampling, struct.pack("<2i", 3, 0)))
        yield Case(f"{tag}-pixeltype", source, _set(data, first_name_end + 1,
                                                    struct.pack("<i", 9)))
        yield Case(f"{tag}-channel-bytes", source, _set(data, a.value_at, b"\xc3\x28"))
    elif a.type == "tiledesc":
        for label, tiles in (("zero", (0, 0)), ("huge", (_BIG, _BIG)), ("odd", (1, 1 << 30))):
            yield Case(f"{tag}-{label}", source, _set(data, a.value_at, struct.pack("<2I", *tiles)))
        yield Case(f"{tag}-mode", source, _set(data, a.value_at + 8, b"\x7f"))
    elif a.type == "compression":
        yield Case(f"{tag}-unknown", source, _set(data, a.value_at, b"\x63"))
    elif a.type == "int":  # chunkCount
        for label, value in (("zero", 0), ("huge", _BIG), ("negative", -1)):
            yield Case(f"{tag}-{label}", source, _set(data, a.value_at, struct.pack("<i", value)))
    elif a.type == "string":
        yield Case(f"{tag}-bytes", source, _set(data, a.value_at, b"\xff"))


def _exr_table_cases(source: str, data: bytes, layout: ExrLayout,
                     rng: random.Random) -> Iterator[Case]:
    """Offset-table damage: pointers to nowhere, to the header, past the end, random bytes."""
    start, end = layout.table_start, layout.table_end
    entries = list(range(start, end, 8))
    picks = sorted({entries[0], entries[len(entries) // 2], entries[-1]})
    for at in picks:
        for label, value in (("zero", 0), ("header", 8), ("past-end", len(data) + 1000),
                             ("huge", 1 << 62), ("self", at), ("odd", layout.chunks[-1] + 3)):
            yield Case(f"{source}-table-{at}-{label}", source,
                       _set(data, at, struct.pack("<Q", value)))
    for index in range(3):
        at = rng.randrange(start, end)
        yield Case(f"{source}-table-flip{index}-{at}", source,
                   _flip(data, at, rng.randrange(1, 256)))
    yield Case(f"{source}-table-all-same", source,
               _set(data, start, struct.pack("<Q", layout.chunks[0]) * len(entries)))
    yield Case(f"{source}-table-random", source,
               _set(data, start, bytes(rng.randrange(256) for _ in range(end - start))))


def _exr_chunk_cases(source: str, data: bytes, layout: ExrLayout,
                     rng: random.Random) -> Iterator[Case]:
    """Chunk damage: coordinates, data sizes and compressed bytes."""
    extra = 4 if layout.multipart else 0
    tiled = any(a.name == "tiles" for a in layout.headers[0])
    size_at = 16 if tiled else 4
    for chunk in (layout.chunks[0], layout.chunks[len(layout.chunks) // 2]):
        tag = f"{source}-chunk-{chunk}"
        if layout.multipart:
            yield Case(f"{tag}-part", source, _set(data, chunk, struct.pack("<i", 77)))
        yield Case(f"{tag}-coord", source, _set(data, chunk + extra, struct.pack("<i", _BIG)))
        yield Case(f"{tag}-size-huge", source,
                   _set(data, chunk + extra + size_at, struct.pack("<i", _BIG)))
        yield Case(f"{tag}-size-negative", source,
                   _set(data, chunk + extra + size_at, struct.pack("<i", -8)))
        yield Case(f"{tag}-size-zero", source,
                   _set(data, chunk + extra + size_at, struct.pack("<i", 0)))
        body = chunk + extra + size_at + 4
        yield Case(f"{tag}-data-flip", source,
                   _set(data, body, bytes(rng.randrange(256) for _ in range(16))))


# --------------------------------------------------------------------------- DPX, PNG

_DPX_FIELDS = {  # name: (offset, struct format); the byte order is the file's own
    "data_offset": (4, ">I"), "file_size": (16, ">I"), "orientation": (768, ">H"),
    "elements": (770, ">H"), "width": (772, ">I"), "height": (776, ">I"),
    "descriptor": (800, ">B"), "bit_size": (803, ">B"), "packing": (804, ">H"),
    "encoding": (806, ">H"), "element_offset": (808, ">I"),
}


def _dpx_cases(source: str, data: bytes, rng: random.Random) -> Iterator[Case]:
    """Truncations at the DPX header's sections, absurd fields, flips, wrong magic."""
    order = ">" if data[:4] == b"SDPX" else "<"  # the magic says the file's byte order
    offset = struct.unpack_from(order + "I", data, 4)[0]
    for at in sorted({4, 8, 768, 780, 800, 1408, 1664, offset - 1, offset, offset + 4,
                      (offset + len(data)) // 2, len(data) - 1}):
        yield Case(f"{source}-truncate-{at}", source, data[:at])
    yield Case(f"{source}-magic", source, _set(data, 0, b"XXXX"))
    yield Case(f"{source}-swapped-magic", source,
               _set(data, 0, b"XPDS" if order == ">" else b"SDPX"))
    values = {"data_offset": (0, _BIG, len(data) + 10), "width": (0, _BIG, 1 << 20),
              "height": (0, _BIG), "elements": (0, 9, 0xFFFF), "bit_size": (0, 7, 64, 255),
              "packing": (2, 99), "descriptor": (0, 255), "encoding": (1, 7),
              "element_offset": (_BIG, len(data) - 4), "orientation": (9,),
              "file_size": (1,)}
    for name, choices in values.items():
        at, fmt = _DPX_FIELDS[name]
        for value in choices:
            raw = struct.pack(order + fmt[1:], value)
            yield Case(f"{source}-{name}-{value}", source, _set(data, at, raw))
    for index in range(12):
        at = rng.randrange(0, 2048)
        yield Case(f"{source}-flip{index}-{at}", source, _flip(data, at, rng.randrange(1, 256)))


def _png_chunks(data: bytes) -> list[tuple[int, bytes, int]]:
    """(start, type, length) of every PNG chunk."""
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        chunks.append((pos, data[pos + 4:pos + 8], length))
        pos += 12 + length
    return chunks


def _png_with_ihdr(data: bytes, field_at: int, raw: bytes) -> bytes:
    """The PNG with IHDR bytes changed and its CRC fixed (so decoders act on the value)."""
    out = bytearray(_set(data, 16 + field_at, raw))
    out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])) & 0xFFFFFFFF)
    return bytes(out)


def _png_cases(source: str, data: bytes, rng: random.Random) -> Iterator[Case]:
    """Truncations at chunk boundaries, IHDR absurdities (CRC fixed), IDAT damage."""
    chunks = _png_chunks(data)
    boundaries = {4, 8}
    for start, _kind, length in chunks:
        boundaries.update({start + 4, start + 8, start + 8 + length // 2, start + 8 + length})
    for at in sorted(b for b in boundaries if 0 < b < len(data)):
        yield Case(f"{source}-truncate-{at}", source, data[:at])
    yield Case(f"{source}-magic", source, _flip(data, 1))
    for label, at, raw in (("width-huge", 0, struct.pack(">I", _BIG)),
                           ("width-zero", 0, struct.pack(">I", 0)),
                           ("height-huge", 4, struct.pack(">I", 1 << 24)),
                           ("depth", 8, b"\x07"), ("colour-type", 9, b"\x05"),
                           ("interlace", 12, b"\x09")):
        yield Case(f"{source}-ihdr-{label}", source, _png_with_ihdr(data, at, raw))
    yield Case(f"{source}-ihdr-crc", source, _flip(data, 30))
    for start, kind, length in chunks:
        if kind == b"IDAT":
            yield Case(f"{source}-idat-{start}-flip", source,
                       _set(data, start + 8 + length // 3,
                            bytes(rng.randrange(256) for _ in range(12))))
            yield Case(f"{source}-idat-{start}-length", source,
                       _set(data, start, struct.pack(">I", _BIG)))


# --------------------------------------------------------------------------- the whole set

_DERIVE: dict[str, Callable[[str, bytes, random.Random], Iterator[Case]]] = {
    "exr_scanline": _exr_cases, "exr_tiled": _exr_cases, "exr_multipart": _exr_cases,
    "dpx": _dpx_cases, "png": _png_cases,
}


def all_cases(folder: str, seed: int = 14) -> list[Case]:
    """Every broken file derived from fresh sources in `folder` (same seed, same bytes)."""
    sources = write_sources(folder)
    cases = [Case(f"{name}-zero-bytes", name, b"") for name in sources]
    for name, data in sources.items():
        rng = random.Random(f"{seed}:{name}")
        cases.extend(_DERIVE[name](name, data, rng))
    unique: dict[str, Case] = {}
    for case in cases:
        unique.setdefault(case.name, case)
    return list(unique.values())


def sample(cases: list[Case], count: int, seed: int = 14) -> list[Case]:
    """A reproducible spread of `count` cases covering every source and kind of damage."""
    by_kind: dict[str, list[Case]] = {}
    for case in cases:
        kind = re.sub(r"\d+", "", case.name)
        by_kind.setdefault(kind, []).append(case)
    rng = random.Random(seed)
    picked = [rng.choice(group) for _key, group in sorted(by_kind.items())]
    rng.shuffle(picked)
    return sorted(picked[:count], key=lambda c: c.name)


# --------------------------------------------------------------------------- running one case

@dataclass
class Outcome:
    """What one command did on one broken file."""

    case: str
    command: str
    exit_code: int | None  # None: killed by the time limit
    stderr: str
    problems: list[str]


def vrmbg_command() -> list[str]:
    """The command line that runs vrmbg from this interpreter."""
    return [sys.executable, "-m", "vrmbg.core"]


def _run(args: list[str], timeout: float) -> tuple[int | None, str]:
    """Run vrmbg with `args`; (exit code or None on a hang, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VRMBG_CACHE", "VRMBG_PROGRESS",
                                                           "OCIO")}
    env["VRMBG_PROGRESS"] = "none"
    try:
        done = subprocess.run(vrmbg_command() + args, capture_output=True, text=True,
                              errors="replace", timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else ""
        return None, stderr
    return done.returncode, done.stderr


def judge(case: str, command: str, code: int | None, stderr: str, path: str) -> Outcome:
    """The problems of one run: a broken file must read (exit 0) or fail with exit 3 and one
    `vrmbg: error:` line naming the file and the frame, never a traceback, signal or hang."""
    problems = []
    if code is None:
        problems.append("hang")
    elif code < 0:
        problems.append("signal")
    if "Traceback" in stderr:
        problems.append("traceback")
    if code not in (None, 0, 3) and code >= 0:
        problems.append("wrong exit code")
    if code == 3:
        errors = [line for line in stderr.splitlines() if line.startswith("vrmbg: error:")]
        if len(errors) != 1:
            problems.append("not one error line")
        elif path not in errors[0] or f"frame {FRAME}" not in errors[0]:
            problems.append("message does not name the file and frame")
    return Outcome(case, command, code, stderr, problems)


def run_case(case: Case, folder: str, model: str, timeout: float = 60.0,
             render: bool = True) -> list[Outcome]:
    """Write the broken file as frame 1001 of a one-frame shot and run info (and render)."""
    plates = os.path.join(folder, "plates")
    output = os.path.join(folder, "out")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(plates)
    pattern = os.path.join(plates, f"plate.####{case.extension}")
    path = pattern.replace("####", str(FRAME))
    with open(path, "wb") as handle:
        handle.write(case.data)
    outcomes = []
    code, err = _run(["info", pattern], timeout)
    outcomes.append(judge(case.name, "info", code, err, path))
    if render:
        matte = os.path.join(output, "matte.####.exr")
        args = ["render", pattern, "-o", matte, "--model", model, "--device", "cpu",
                "--resolution", "64", "--threads", "1"]
        if case.source == "dpx":
            args += ["--input-colorspace", "ACEScct"]
        code, err = _run(args, timeout)
        outcome = judge(case.name, "render", code, err, path)
        outcome.problems += _debris(output, failed=code != 0)
        outcomes.append(outcome)
    with open(path, "rb") as handle:
        if handle.read() != case.data:
            outcomes[-1].problems.append("plate changed")
    return outcomes


def _debris(output: str, failed: bool) -> list[str]:
    """Temp files anywhere under the output folder; any matte at all after a failure."""
    problems = []
    for folder, _dirs, files in os.walk(output):
        for name in files:
            if ".tmp" in name:
                problems.append(f"temp file left: {name}")
            elif failed and name.startswith("matte."):
                problems.append(f"matte written by a failed render: {name}")
    return problems
