"""A chain folder laid out as the engine writes it, for the cache commands' tests."""

from __future__ import annotations

import json
import os


def fake_chain(root, shot: str, chain_id: str, *, tier="final", frames=(1001, 1002),
               size=1000, last_used=1_700_000_000.0) -> str:
    """A chain folder laid out as the engine writes it, with `size` bytes per matte."""
    folder = os.path.join(str(root), shot, tier, chain_id)
    os.makedirs(os.path.join(folder, "matte"))
    os.makedirs(os.path.join(folder, "state"))
    for frame in frames:
        with open(os.path.join(folder, "matte", f"{shot.split('-')[0]}.{frame}.exr"), "wb") as f:
            f.write(b"\0" * size)
    chain_file = os.path.join(folder, "chain.json")
    with open(chain_file, "w") as handle:
        json.dump({"chain_id": chain_id, "tier": tier, "identity": {"resolution": 1024},
                   "plate": f"/plates/{shot}.####.exr"}, handle)
    os.utime(chain_file, (last_used, last_used))
    return folder
