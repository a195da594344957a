"""Who may switch on downloaded model code: only the person running vrmbg.

A model repository may ship its own `model.py`; running it executes code from the
internet. The `trust_remote_code` setting asks for it, but a setting can arrive from data
someone else wrote: a shot list, a Nuke script or .blend (a host knob), a worker request.
So the setting counts only where this process was allowed by its own user: the command
line's `--trust-remote-code` (render, model, worker), or `VRMBG_TRUST_REMOTE_CODE=1` in
the environment (which the host add-ons set from their preferences when they start the
worker). Shot lists may not carry the setting at all.
"""

from __future__ import annotations

import os

ALLOW_ENV = "VRMBG_TRUST_REMOTE_CODE"
_granted = False


def allow_remote_code() -> None:
    """Record that this process's user asked for downloaded model code on the command line."""
    global _granted
    _granted = True


def remote_code_allowed() -> bool:
    """True when this process's user allowed downloaded model code (flag or environment)."""
    return _granted or os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")


REFUSED = ("downloaded model code runs only when the person running vrmbg allows it: "
           f"--trust-remote-code on the command line, or {ALLOW_ENV}=1 in the environment "
           "(the hosts' preferences set it)")
