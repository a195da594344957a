"""Where vrmbg runs: Linux and macOS. Windows stops at once with one line saying so.

The engine worker, its process handling and the hosts' installers are written and tested for
Linux and macOS only, so on Windows installing into a host or starting the engine must say
that plainly rather than fail later with a traceback. Standard library only.
"""

from __future__ import annotations

import sys
from typing import Optional

WINDOWS = ("vrmbg runs on Linux and macOS only: Windows is not supported (run the host on a "
           "Linux or macOS machine)")


def unsupported_platform(platform: Optional[str] = None) -> str:
    """"" where vrmbg runs (Linux, macOS), else the one line to show; `platform` defaults to
    `sys.platform` (given only to check another system's answer)."""
    name = sys.platform if platform is None else platform
    if name.startswith("win") or name in ("cygwin", "msys"):
        return WINDOWS
    return ""
