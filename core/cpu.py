"""How the threads that feed the model share the CPU with it.

The frame pipeline only has to stay ahead of the model, so its reader and writer threads run
at a lower scheduling priority than the model's thread: when both want a core, the model gets
it, and the readers use the cycles the model leaves idle. Linux only, where a thread's nice
value is its own (threads a lowered thread starts inherit its priority).
"""

from __future__ import annotations

import os
import sys
import threading

IO_NICE_INCREMENT = 5  # reader/writer threads: below the model, far above idle work


def lower_thread_priority(increment: int = IO_NICE_INCREMENT) -> bool:
    """Raise the calling thread's nice value by `increment` (Linux only; False elsewhere).

    On Linux each thread has its own nice value, so this leaves the model's thread alone.
    Elsewhere setpriority would renice the whole process, so nothing is done.
    """
    if not sys.platform.startswith("linux") or increment <= 0:
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))
        return True
    except (OSError, AttributeError):
        return False
