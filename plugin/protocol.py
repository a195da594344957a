"""Names the engine worker and its host client agree on (see the README's "Hosts" section).

Standard library only: the worker (engine side) and the client (inside Nuke or Blender)
both import this, so a message name is spelled in one place.
"""

from __future__ import annotations

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1024 * 1024  # a request line longer than this is refused

OPS = ("hello", "open", "ensure", "cancel", "status", "cache_info", "clear", "prune",
       "release", "close", "shutdown")
# What a `prune` deletes from: the chains of the session's shot, or the whole cache root.
PRUNE_SCOPES = ("shot", "cache")
# Events that never end a request: they report on one that is still running.
PROGRESS_EVENTS = ("progress", "frame")
# Events the client makes up itself (never sent by a worker).
CLIENT_EVENTS = ("worker_died", "worker_restarted")

# Set (to "1") in a worker's environment when the person running the host allowed downloaded
# model code in their own preferences (never from a scene, a script or a request): the
# engine's rule is core/model/trust.py.
TRUST_REMOTE_CODE_VARIABLE = "VRMBG_TRUST_REMOTE_CODE"

STAGE_LOADING = "loading model"
STAGE_COMPUTING = "computing"
