"""The temporal engine: the model card's loop, run frame by frame through a cache on disk.

- `step.FrameStepper`: one frame of the card's loop (prepare, step, back to plate size).
- `chain`: chain identity and per-frame keys (what makes a cached frame valid).
- `cache`: the cache folder layout, per-chain lock, lossless state files, `vrmbg cache` helpers.
- `pipeline`: reading ahead and writing behind while the model runs.
- `session.MatteSession`: `ensure(frame)` -> the matte, bit-identical to a straight run.
"""

from .cache import default_cache_root
from .session import EngineCounters, MatteSession

__all__ = ["MatteSession", "EngineCounters", "default_cache_root"]
