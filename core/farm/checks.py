"""Checks a farm job gets before it is written: every shot could start rendering.

A typo in a shot list (a plate folder that is not there, a frame range past the plates, a
colour space the config does not know, a model folder that does not exist) must fail here,
on the TD's machine, not an hour later on every farm worker. The checks read plate headers
and file lists only; no model is loaded and nothing is written.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Mapping

from ..errors import ModelError, VrmbgError
from .shotlist import Shot, merged_settings

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # a Hugging Face repo id


def check_shots(shots: Iterable[Shot], job: Mapping[str, Any]) -> None:
    """Raise the first problem of any shot (its own error type, the shot named)."""
    for shot in shots:
        try:
            check_shot(shot, merged_settings(shot, job))
        except VrmbgError as exc:
            raise type(exc)(f"shot {shot.name!r}: {exc.message}", path=exc.path,
                            frame=exc.frame,
                            hint=exc.hint or "fix the shot list, or skip the checks with "
                                             "--no-check") from None


def check_shot(shot: Shot, settings: Mapping[str, Any]) -> None:
    """The shot's plates exist for its frames (from its shot start), its colour spaces
    resolve, and its model source is there: the shot opened as a render opens it
    (`engine.opening.open_shot`), stopping before the model loads."""
    from ..engine.opening import open_shot  # here: the engine imports torch (CLI start-up)

    open_shot(shot.input, settings, frames=shot.frame_spec, load_model=False).close()
    check_model_source(str(settings.get("model") or ""))


def check_model_source(source: str) -> None:
    """A local model folder or file must exist (a Hugging Face id is fetched by the
    workers and not checked here; `demo` is bundled)."""
    if not source or source == "demo":
        return
    path = os.path.expanduser(source)
    if os.path.exists(path):
        from ..model.loader import locate

        locate(path)  # safetensors present, no pickle
        return
    if _REPO_ID.match(source) and not source.startswith((".", "/", "~")):
        return
    raise ModelError("no such model file or folder, and not a Hugging Face repo id "
                     "(like briaai/VRMBG-3.0)", path=source)
