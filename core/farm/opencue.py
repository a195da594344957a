"""OpenCue jobs for a shot list, built with pyoutline and serialised offline to job XML.

One layer per shot (a Shell layer running `vrmbg render` on the whole shot). The layer's
range is the shot's frames and its chunk size is the whole shot, so OpenCue makes exactly
one frame task per shot and the temporal model runs the shot in order on one host; shots
run in parallel across hosts. Submit the XML with your site's tools (e.g. `cueadmin` /
`pycuerun` / the OpenCue API `opencue.api.launchSpecAndWait(xml)`).

Needs PyPI `opencue-pyoutline` (and `packaging`). Building the XML needs no Cuebot and no
configuration: pyoutline reads its default config (or `$OUTLINE_CONFIG_FILE`), but it
also creates a "session" folder (by default under ~/.opencue/sessions) when the job is
set up; here that folder is redirected to a temporary folder for the duration of the call
and removed afterwards, so writing a job file leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import getpass
import shlex
from typing import Any, Iterator, Mapping, Sequence

from ..errors import UsageError
from ..fs import scratch_folder
from .shotlist import Shot, merged_settings, render_args

SERVICE = "shell"


def _outline_modules() -> tuple[Any, Any, Any]:
    """pyoutline's `outline`, `cuerun` and `Shell`, or UsageError saying what to install."""
    try:
        import outline
        from outline import cuerun
        from outline.modules.shell import Shell
    except ImportError as exc:
        raise UsageError(f"OpenCue jobs need pyoutline ({exc})",
                         hint="pip install opencue-pyoutline packaging") from None
    return outline, cuerun, Shell


@contextlib.contextmanager
def _scratch_session_dir(outline: Any) -> Iterator[None]:
    """Point pyoutline's session folder at a temp folder while a job is serialised."""
    config = outline.config
    previous = config.get("outline", "session_dir")
    with scratch_folder("vrmbg-outline-") as scratch:
        config.set("outline", "session_dir", scratch)
        try:
            yield
        finally:
            config.set("outline", "session_dir", previous)


def shot_command(shot: Shot, job: Mapping[str, Any], executable: str = "vrmbg") -> str:
    """The shell command line of a shot's layer (every word quoted for the shell)."""
    return shlex.join([executable, *render_args(shot, job)])


def job_xml(shots: Sequence[Shot], job: Mapping[str, Any], *, name: str, show: str = "",
            shot: str = "", user: str = "", executable: str = "vrmbg") -> str:
    """OpenCue job XML with one whole-shot layer per shot.

    `show`/`shot` default to pyoutline's configured defaults, `user` to the current user.
    """
    outline, cuerun, shell = _outline_modules()
    user = user or getpass.getuser()
    show = show or outline.config.get("outline", "default_show")
    shot = shot or outline.config.get("outline", "default_shot")
    job_outline = outline.Outline(name, show=show, shot=shot, user=user)
    for item in shots:
        layer_args = {"range": item.frame_spec, "chunk": len(item.frames), "service": SERVICE}
        settings = merged_settings(item, job)
        threads = int(settings.get("threads") or 0)
        if threads:  # Cue books the cores the render is pinned to (part of a CPU chain's id)
            layer_args["cores"] = threads
        if str(settings.get("device") or "").startswith("cuda"):
            layer_args["gpus"] = 1  # CUDA renders run only on hosts with a GPU
        job_outline.add_layer(shell(item.name, command=shot_command(item, job, executable),
                                    **layer_args))
    with _scratch_session_dir(outline):
        return cuerun.OutlineLauncher(job_outline, user=user).serialize(use_pycuerun=False)
