"""Shared test set-up: no user environment steers the runs, and one tiny model per session."""

from __future__ import annotations

import os
import sys

import pytest

# Test helpers live in tests/support/; the tests in the layer folders import them by name.
_SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)

from render_helpers import make_model

# Variables a user's shell may set that would change where caches go or how colour is read.
STEERING_VARIABLES = ("VRMBG_CACHE", "VRMBG_PROGRESS", "OCIO", "VRMBG_TRUST_REMOTE_CODE")


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch):
    """No user cache, forced progress mode or OCIO config leaks into a test."""
    for name in STEERING_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def model(tmp_path_factory) -> str:
    """A tiny random model folder (config.json + model.safetensors), made once."""
    return make_model(str(tmp_path_factory.mktemp("model") / "tiny"))
