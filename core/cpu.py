"""How vrmbg shares the CPU: with the model, and with whatever else runs on the machine.

A process may be given a number of CPU threads (`--threads`, for farm tasks given a few cores
of a node). Thread pools belong to the process, not to a shot: `set_process_threads` applies the
budget to torch, OpenImageIO and OpenEXR once, when a command or the worker starts, and every
session the process opens shares it.

The frame pipeline only has to stay ahead of the model, so its reader and writer threads run
at a lower scheduling priority than the model's thread: when both want a core, the model gets
it, and the readers use the cycles the model leaves idle. Linux only, where a thread's nice
value is its own (threads that a lowered thread starts inherit its priority).
"""

from __future__ import annotations

import os
import sys
import threading

# Reader/writer threads drop to the lowest time-sharing priority. Measured in alternating runs
# with the tiny model at 1024 on 2 cores (its forward leaves part of the second core idle),
# 12 frames: 340-370 ms per frame with +19, 375-395 ms with +10, 400-425 ms with +5, 410-450 ms
# at the model's own priority (one engine_bench run each, `--io-nice 5` vs the default, gave
# 378 and 381 ms: within that bench's noise); the full model measured the same with +5 and +19.
# No core is left idle by this: when the model waits for a frame, nothing of ours competes.
IO_NICE_INCREMENT = 19


_DEFAULTS: dict[str, int] = {}  # the thread counts before the first limit, to go back to


def limit_threads(count: int) -> int:
    """Give the model and image decoding `count` CPU threads (0 = the defaults: every core).

    Sets torch's intra-op threads and OpenImageIO's and OpenEXR's pools for the process; a
    later call with 0 puts the defaults back, for callers that run several renders in one
    process. The frame readers and the writer run beside these, at the lowest priority.
    Returns the torch thread count now in effect (the `--json` summary's).
    """
    import OpenImageIO as oiio
    import torch

    if not _DEFAULTS:
        _DEFAULTS.update(torch=torch.get_num_threads(),
                         threads=oiio.get_int_attribute("threads"),
                         exr_threads=oiio.get_int_attribute("exr_threads"))
    torch.set_num_threads(count if count > 0 else _DEFAULTS["torch"])
    oiio.attribute("threads", count if count > 0 else _DEFAULTS["threads"])
    oiio.attribute("exr_threads", count if count > 0 else _DEFAULTS["exr_threads"])
    return torch.get_num_threads()


def set_process_threads(requested: int) -> tuple[int, str]:
    """Apply a process-wide thread budget at start-up (0 = every core); returns the torch
    thread count now in effect and a warning when more than the usable cores were asked."""
    cores = usable_cores()
    warning = ""
    if requested > cores:
        warning = (f"--threads {requested} is more than the {cores} cores this process may "
                   f"use: using {cores}")
        requested = cores
    return limit_threads(max(0, requested)), warning


def process_threads() -> int:
    """torch's intra-op thread count in this process (what the model step uses)."""
    import torch

    return torch.get_num_threads()


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on macOS or Windows
        return max(1, os.cpu_count() or 1)


MAX_READERS = 8  # frames decoded at once; each holds a plate (a 4K float RGB is ~100 MB)


def reader_threads(count: int) -> int:
    """Frame reader threads beside the model for a thread budget (0 = every usable core):
    one frame read at a time per core of the budget, at least one, at most `MAX_READERS`.

    A GPU host's CPU cores do nothing but feed the model, so its readers follow the cores;
    on a CPU render the readers run at the lowest priority and only use what the model
    leaves idle.
    """
    budget = count if count > 0 else usable_cores()
    return max(1, min(MAX_READERS, budget))


def writer_threads(readers: int) -> int:
    """Matte writer threads for `readers` reader threads: one per two readers, at least one.

    A frame's write (resize back to the plate, matte EXR, state) costs about a third of its
    read (decode, colour, resize) and does not spread over cores by itself, so a single
    writer caps a fast GPU host at about 30 fps on 2K plates however many cores feed it.
    """
    return max(1, readers // 2)


def lower_thread_priority(increment: int | None = None) -> bool:
    """Raise the calling thread's nice value by `increment` (default `IO_NICE_INCREMENT`,
    read at call time; Linux only; False elsewhere).

    On Linux each thread has its own nice value, so this leaves the model's thread alone.
    Elsewhere setpriority would renice the whole process, so nothing is done.
    """
    increment = IO_NICE_INCREMENT if increment is None else increment
    if not sys.platform.startswith("linux") or increment <= 0:
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))
        return True
    except (OSError, AttributeError):
        return False
