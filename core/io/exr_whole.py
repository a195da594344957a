"""Is an EXR file whole? Its header and chunk offset table against the file's size.

A write that ran out of disk can leave a file whose header is valid and whose pixels stop
part-way (seen: 57,344 of ~200,000 bytes). Such a file must never count as a written matte,
and a re-run must never skip it as "already there". Decoding every pixel would cost as much
as writing; instead this reads the header, finds the offset table (one 64-bit offset per
chunk of scanlines or tiles) and checks that every chunk starts inside the file and that
the last chunk ends inside it. That costs two small reads per file.

Single-part scanline and tiled files (every file vrmbg writes, and most plates) are
checked this way; for multi-part and deep files the `chunkCount` attribute gives the table
size. Anything this cannot parse counts as not whole.
"""

from __future__ import annotations

import math
import os
import struct
from typing import BinaryIO

MAGIC = b"\x76\x2f\x31\x01"
_TILED, _LONG_NAMES, _DEEP, _MULTIPART = 0x200, 0x400, 0x800, 0x1000
MAX_HEADER_BYTES = 1 << 20  # headers are a few hundred bytes; a damaged one stops here

# Scanlines per chunk for each compression (OpenEXR's `Compression` enum order).
LINES_PER_CHUNK = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256,
                   10: 256, 11: 32}


class _Header:
    """The attributes the offset table depends on."""

    data_window: tuple[int, int, int, int] | None = None
    compression: int = 0
    tiles: tuple[int, int, int] | None = None  # tile width, height, level mode
    chunk_count: int | None = None


def is_whole(path: str) -> bool:
    """True when the EXR at `path` holds every chunk its header promises."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            header = _read_header(handle)
            if header is None:
                return False
            count = _chunk_count(header)
            if count is None or count <= 0 or count > size // 8:
                return False
            table = handle.read(8 * count)
            if len(table) != 8 * count:
                return False
            offsets = struct.unpack(f"<{count}Q", table)
            start = handle.tell()
            if any(offset < start or offset >= size for offset in offsets):
                return False
            return _last_chunk_fits(handle, max(offsets), size, header)
    except (OSError, struct.error, ValueError):
        return False


def _read_header(handle: BinaryIO) -> _Header | None:
    """The header's attributes, with the file positioned at the offset table; None when
    this is not a single-part EXR header this module can read."""
    if handle.read(4) != MAGIC:
        return None
    (flags,) = struct.unpack("<I", handle.read(4))
    if flags & _MULTIPART:
        return None  # parts each have their own table: not a form vrmbg writes
    header = _Header()
    read = 8
    while read < MAX_HEADER_BYTES:
        name = _read_text(handle)
        read += len(name) + 1
        if not name:
            return header
        kind = _read_text(handle)
        (length,) = struct.unpack("<i", handle.read(4))
        if length < 0 or length > MAX_HEADER_BYTES:
            return None
        value = handle.read(length)
        read += len(kind) + 5 + length
        _note(header, name, value)
    return None


def _read_text(handle: BinaryIO) -> bytes:
    """A NUL-terminated name (at most 255 bytes, as OpenEXR's long names allow)."""
    out = bytearray()
    while len(out) < 256:
        byte = handle.read(1)
        if not byte:
            raise ValueError("header ends early")
        if byte == b"\0":
            return bytes(out)
        out += byte
    raise ValueError("attribute name too long")


def _note(header: _Header, name: bytes, value: bytes) -> None:
    """Keep the attributes the offset table depends on."""
    if name == b"dataWindow" and len(value) == 16:
        header.data_window = struct.unpack("<4i", value)
    elif name == b"compression" and len(value) == 1:
        header.compression = value[0]
    elif name == b"tiles" and len(value) == 9:
        width, height = struct.unpack("<2I", value[:8])
        header.tiles = (width, height, value[8] & 0x0F)
    elif name == b"chunkCount" and len(value) == 4:
        header.chunk_count = struct.unpack("<i", value)[0]


def _chunk_count(header: _Header) -> int | None:
    """How many offsets the table holds."""
    if header.chunk_count is not None:
        return header.chunk_count
    if header.data_window is None:
        return None
    x0, y0, x1, y1 = header.data_window
    width, height = x1 - x0 + 1, y1 - y0 + 1
    if width <= 0 or height <= 0:
        return None
    if header.tiles is None:
        lines = LINES_PER_CHUNK.get(header.compression)
        return None if lines is None else math.ceil(height / lines)
    tile_w, tile_h, mode = header.tiles
    if tile_w <= 0 or tile_h <= 0:
        return None
    if mode != 0:  # mip/rip-mapped: count every level (rounding down, as OpenEXR's default)
        return _level_tiles(width, height, tile_w, tile_h, mode)
    return math.ceil(width / tile_w) * math.ceil(height / tile_h)


def _level_tiles(width: int, height: int, tile_w: int, tile_h: int, mode: int) -> int:
    """Tiles over every level of a mip-mapped (1) or rip-mapped (2) image."""
    levels_x = int(math.floor(math.log2(max(width, 1)))) + 1
    levels_y = int(math.floor(math.log2(max(height, 1)))) + 1
    total = 0
    if mode == 1:
        for level in range(max(levels_x, levels_y)):
            w, h = max(width >> level, 1), max(height >> level, 1)
            total += math.ceil(w / tile_w) * math.ceil(h / tile_h)
        return total
    for lx in range(levels_x):
        for ly in range(levels_y):
            w, h = max(width >> lx, 1), max(height >> ly, 1)
            total += math.ceil(w / tile_w) * math.ceil(h / tile_h)
    return total


def _last_chunk_fits(handle: BinaryIO, offset: int, size: int, header: _Header) -> bool:
    """The chunk starting last in the file ends inside it (its size is in its own header:
    y then size for scanlines, four tile coordinates then size for tiles)."""
    handle.seek(offset)
    prefix = 4 if header.tiles is None else 16
    raw = handle.read(prefix + 4)
    if len(raw) != prefix + 4:
        return False
    (length,) = struct.unpack("<i", raw[prefix:])
    return length > 0 and offset + prefix + 4 + length <= size
