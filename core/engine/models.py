"""Loaded models shared between sessions: one per weights, device and precision.

A worker that serves several shots (or a render job that opens an exact and a pre-roll
session) asks the pool instead of loading weights itself, so two sessions with the same
weights, device and precision share one module in memory. `release()` drops them all (a
host's "Release GPU").
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable

from ...plugin.settings import Settings

if TYPE_CHECKING:
    from ..model.loader import LoadedModel

DEFAULT_MODEL = "briaai/VRMBG-3.0"


def model_request(settings: Settings) -> tuple[str, str, str, str, bool]:
    """What identifies a model load in `settings`: (source, revision, device, precision,
    trust_remote_code)."""
    return (settings.model or DEFAULT_MODEL, settings.revision, settings.device or "auto",
            settings.precision or "auto", settings.trust_remote_code)


class ModelPool:
    """Loads each model once and hands the same `LoadedModel` to every session asking for it.

    Thread-safe: two threads asking for the same model wait for one load. Loads are keyed on
    the request (source, revision, device, precision, remote code) and then on what was
    loaded (weights fingerprint, device, dtype), so two spellings of one model share it.
    """

    def __init__(self, loader: Callable[..., "LoadedModel"] | None = None) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._by_request: dict[tuple, "LoadedModel"] = {}
        self._by_identity: dict[tuple, "LoadedModel"] = {}

    def get(self, settings: Settings) -> "LoadedModel":
        """The loaded model the settings ask for (ModelError when it cannot be loaded)."""
        request = model_request(settings)
        with self._lock:
            found = self._by_request.get(request)
            if found is not None:
                return found
            loaded = self._load(request)
            identity = (loaded.fingerprint, str(loaded.device), str(loaded.dtype))
            shared = self._by_identity.setdefault(identity, loaded)
            self._by_request[request] = shared
            return shared

    def _load(self, request: tuple[str, str, str, str, bool]) -> "LoadedModel":
        """Load one model with the pool's loader (the real loader unless a test gives one)."""
        loader = self._loader
        if loader is None:
            from ..model.loader import load_model as loader
        source, revision, device, precision, trust = request
        return loader(source, device=device, precision=precision, revision=revision,
                      trust_remote_code=trust)

    def loaded(self) -> list[dict[str, str]]:
        """What is loaded now, for a status report."""
        with self._lock:
            return [{"source": m.source, "fingerprint": m.fingerprint, "device": str(m.device),
                     "precision": str(m.dtype).replace("torch.", "")}
                    for m in self._by_identity.values()]

    def release(self) -> int:
        """Forget every loaded model so its memory (GPU memory included) can be freed;
        returns how many were dropped. Sessions opened before keep theirs until closed."""
        with self._lock:
            count = len(self._by_identity)
            self._by_request.clear()
            self._by_identity.clear()
        _free_device_memory()
        return count


def _free_device_memory() -> None:
    """Give cached GPU memory back to the driver (nothing on CPU)."""
    import gc

    gc.collect()
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and getattr(torch.backends, "mps", None) is not None \
            and torch.backends.mps.is_available():
        mps.empty_cache()
