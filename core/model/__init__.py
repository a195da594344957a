"""The VRMBG network, its configs, and loading weights into a ready-to-run module.

    from vrmbg.core.model import load_model
    loaded = load_model("briaai/VRMBG-3.0", device="auto", precision="auto")
    loaded.module, loaded.config, loaded.fingerprint
"""

from .config import ModelConfig
from .loader import DEFAULT_REPO, LoadedModel, init_random, load_model, save_model

__all__ = ["DEFAULT_REPO", "LoadedModel", "ModelConfig", "init_random", "load_model",
           "save_model"]
