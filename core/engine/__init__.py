"""The temporal engine: the model card's loop, run frame by frame through a cache on disk.

- `opening.open_shot` / `open_session`: the one way to open a shot (plates, colour, model).
- `step.FrameStepper`: one frame of the card's loop (prepare, step, back to plate size).
- `chain`: chain identity and per-frame keys (what makes a cached frame valid).
- `cache`: the cache folder layout and lossless state files; `lock`: the per-chain lock;
  `housekeeping`: listing, sizing and deleting chains (`vrmbg cache`).
- `tiers`, `planning`: which chain answers, and which frames to compute from which state.
- `pipeline`: reading ahead and writing behind while the model runs.
- `session.MatteSession`: `ensure(frame)` -> the matte, bit-identical to a straight run;
  `frame_work`: the per-frame operations of one compute pass.
"""

from .cache import default_cache_root
from .frame_work import EngineCounters
from .session import MatteSession

__all__ = ["MatteSession", "EngineCounters", "default_cache_root"]
