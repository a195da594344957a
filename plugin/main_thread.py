"""Work for a host's main thread, posted from any thread (the client's reader, a start).

    queue = MainThreadQueue()
    queue.post(lambda: redraw(node))   # any thread
    queue.drain()                      # the host's main thread (a timer, an idle callback)

A host whose API must be called on its main thread (Blender's data; Nuke has its own
`executeInMainThread`) drains the queue from a timer there. A failing action is reported and
never stops the timer. Standard library only, Python 3.9+.
"""

from __future__ import annotations

import queue
import sys
from typing import Any, Callable


class MainThreadQueue:
    """Actions waiting for the main thread, run in the order they were posted."""

    def __init__(self, name: str = "VRMBG") -> None:
        self._name = name
        self._actions: "queue.Queue[Callable[[], Any]]" = queue.Queue()

    def post(self, action: Callable[[], Any]) -> None:
        """Run `action` on the main thread at the next drain (from any thread)."""
        self._actions.put(action)

    def drain(self) -> int:
        """Run every action posted so far (on the main thread); how many ran."""
        count = 0
        while True:
            try:
                action = self._actions.get_nowait()
            except queue.Empty:
                return count
            count += 1
            try:
                action()
            except Exception as error:  # a failed UI update must not stop the timer
                print(f"{self._name}: {error}", file=sys.stderr)
