"""Cache sizes as people read and type them: `cache 1.2 GB` beside a matte's status, and the
size a prune keeps (`20G`, `500 MB`, `1.5T`, or bytes).

Binary units, as `vrmbg cache prune --max-size` reads them (1 GB = 1024³ bytes), so a size
typed in a host prunes exactly as the same size on the command line. Standard library only.
"""

from __future__ import annotations

import re
from typing import Union

UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4,
          "P": 1024 ** 5}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(size: Union[int, float, str]) -> int:
    """Bytes from a number of bytes or a size text such as `500M`, `20 GB`, `1.5T`, `10GiB`;
    ValueError (saying what is accepted) for anything else or a negative size."""
    if isinstance(size, bool):
        raise ValueError(f"cannot read the size {size!r}")
    if isinstance(size, (int, float)):
        if size < 0:
            raise ValueError(f"a size cannot be negative ({size})")
        return int(size)
    match = _SIZE.match(str(size))
    if not match:
        raise ValueError(f"cannot read the size {size!r}: use a number with an optional "
                         "unit, such as 500M, 20G or 1.5T")
    return int(float(match.group(1)) * UNITS[match.group(2).upper()])


def size_text(size: int) -> str:
    """A size for people: `1.2 GB`, `320 MB`, `12 KB`, `512 bytes`."""
    for unit in ("T", "G", "M", "K"):
        if size >= UNITS[unit]:
            return f"{size / UNITS[unit]:.1f} {unit}B"
    return f"{int(size)} bytes"
