"""One shot rendered end to end: plates -> colour -> model -> temporal cache -> output mattes.

This is what `vrmbg render` runs in-process (and what a farm task runs). The temporal cache
does the computing; the job runs the steps in order, each in a module of its own:

- open the shot, cheap checks first (`engine.opening.open_shot`, with the output target's
  checks, `target`, before the model loads: never a plate file or a cache folder as the
  output, never a movie of part of a shot), then sweep the temp files killed renders left
  in the output folder;
- choose the chain that answers the request: exact, or bounded pre-roll when asked
  (`chain_choice`);
- plan the outputs from the stamps on disk (`target.OutputTarget.plan`, deciding with
  `output_plan`);
- write the requested frames as they finish (`frame_loop`, `output_writer`);
- report progress (`progress`) and a summary (`summary`).

Output frames carry `vrmbg:*` attributes: `shot`, `plate_id`, `layer`, `part`, `shot_start`
(which shot: the content identity of the shot's first plate frame), `chain` and `identity`
(the settings), `key` (the frame's chain key, which covers every earlier plate frame),
`exact` (0 for pre-roll approximations), `model` (weights fingerprint). A re-run skips frames
whose output already carries the key the chain has for them today and rewrites those whose
key is stale (a plate frame at or before them changed).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..engine.models import ModelPool
from ..engine.opening import Shot, open_shot
from ..engine.session import MatteSession
from ..engine.settings import SettingsLike, as_settings
from ..io.frames import format_frame_ranges
from ..io.plate_checks import plate_warnings
from ..io.plate_identity import plate_content_id, plate_source, shot_label
from .chain_choice import choose_session
from .frame_loop import write_frames
from .output_plan import ShotOutputs
from .progress import CancelFlag
from .summary import RenderLog, RenderSummary
from .target import OutputTarget, default_render_cache

__all__ = ["RenderJob", "RenderSummary"]


class RenderJob:
    """Render the requested frames of one shot to an output sequence or movie.

    Everything the job needs is given here; `run()` may be called once. `summary` holds what
    is known so far, so a caller can report it when `run()` fails or is cancelled.
    """

    def __init__(self, input_path: str, output: str, settings: SettingsLike, *,
                 frames: str = "", resume: bool = True, overwrite: bool = False,
                 movie_start: int = 1001, models: Any = None,
                 log: TextIO | None = None) -> None:
        self.models = models if models is not None else ModelPool()
        self.input_path = input_path
        self.output = output
        self.settings = as_settings(settings)
        self.frame_spec = frames
        self.resume = resume
        self.overwrite = overwrite
        self.movie_start = movie_start
        self.target = OutputTarget.for_output(output, self.settings)
        self.cache_root = ""  # the cache folder as given: set when the shot is opened
        self.summary = RenderSummary(output=output)
        self.log = RenderLog(self.summary, log if log is not None else sys.stderr)

    def say(self, text: str) -> None:
        """One log line for the artist or the farm log."""
        self.log.say(text)

    def warn(self, text: str) -> None:
        """A warning: logged now and kept in the summary."""
        self.log.warn(text)

    def run(self, *, progress_mode: str = "auto", progress_stream: TextIO | None = None,
            cancel: Any = None) -> dict[str, Any]:
        """Render; returns the summary. Cancelled (exit 130) keeps every finished frame.

        SIGINT/SIGTERM are caught from the start (model loading included): the frame in
        flight finishes, every finished frame is kept, and Cancelled is raised.
        """
        with CancelFlag() as flag:
            def stop() -> bool:
                return flag.is_set() or bool(cancel is not None and cancel())

            shot = self._open()
            if stop():
                flag.raise_if_set()
            self.summary.describe_run(shot)
            session = choose_session(shot, self.cache_root, resume=self.resume, log=self.log)
            outputs = self._shot_outputs(shot, session)
            self.summary.chain_id = session.chain_id
            self.summary.cache_folder = session.folder
            self.summary.shot = outputs.label
            self._header(shot, session)
            if self.target.movie:
                todo, plan = list(shot.frames), None
            else:
                plan = self.target.plan(shot, session, outputs, resume=self.resume,
                                        overwrite=self.overwrite)
                todo = list(plan.todo)
                self.summary.frames_skipped_existing = len(plan.skipped)
                self.summary.stale_outputs = format_frame_ranges(plan.stale)
                for line in plan.warnings(outputs):
                    self.warn(line)
            write_frames(self.target, self.log, shot, session, outputs, todo, plan, stop, flag,
                         progress_mode=progress_mode, progress_stream=progress_stream)
        return self.summary.to_dict()

    def _open(self) -> Shot:
        """The shot: plates, requested frames, colour transform, the output target's checks,
        then the frame stepper (cheap checks first)."""
        def check(shot: Shot) -> None:
            for warning in plate_warnings(shot.plates, shot.colour.input_space):
                self.warn(warning)
            if self.target.output_type == "rgba":
                shot.colour.scene_linear_space  # a config without scene_linear fails here
            self.target.check(self.input_path, shot, self.overwrite, self.cache_root)
            swept = self.target.sweep_temp_files()
            if swept:
                self.say(f"removed {swept} temp file(s) that killed renders left in "
                         f"{self.target.folder}")

        self.cache_root = self.settings.cache_dir or default_render_cache(self.output)
        # The render's sessions are the exact chain or a pre-roll one, never a smaller size.
        settings = self.settings.replace(preview_resolution=0)
        return open_shot(self.input_path, settings, frames=self.frame_spec, models=self.models,
                         movie_start=self.movie_start, check=check)

    def _shot_outputs(self, shot: Shot, session: MatteSession) -> ShotOutputs:
        """What this render's outputs are stamped with."""
        start = shot.shot_frames[0]
        return ShotOutputs(
            label=shot_label(shot.plates, session.layer, session.part),
            plate_id=plate_content_id(shot.plates, start), layer=session.layer,
            part=session.part, start=start, chain_id=session.chain_id,
            identity=session.identity, output_type=self.target.output_type,
            exact=session.tier == "final")

    def _header(self, shot: Shot, session: MatteSession) -> None:
        """What this render is about to do, for the farm log (one line per fact)."""
        stepper, colour = shot.stepper, shot.colour
        size = shot.plates.info(shot.frames[0])
        lines = [
            f"plates {plate_source(shot.plates)} (shot {shot.shot_frames[0]}-"
            f"{shot.shot_frames[-1]}), frames {self.summary.frames} -> {self.output}",
            f"colour {colour.describe()} (config {colour.config.getName() or '-'}"
            f"{_colour_path(session)})",
            f"model {stepper.loaded.source} (fingerprint {stepper.loaded.fingerprint[:16]}), "
            f"{stepper.resolution}x{stepper.resolution} from {size.width}x{size.height}",
            f"device {self.summary.device}, precision {self.summary.precision}, "
            f"{self.summary.cpu_threads} CPU thread(s)",
            f"chain {session.chain_id} ({'exact' if session.tier == 'final' else 'approximate'}"
            f"), cache {session.folder}",
        ]
        for line in lines:
            self.say(line)
        self._keyframes_line(session)

    def _keyframes_line(self, session: MatteSession) -> None:
        """The keyframes this render takes (or a warning when the pattern finds none: a
        typo would otherwise render the model's mattes silently)."""
        pattern = self.settings.keyframes
        if not pattern:
            return
        found = session.keyframe_frames()
        if found:
            self.say(f"keyframes {format_frame_ranges(found)} from {pattern} (the artist's "
                     "mattes; the frames after each continue from it)")
        else:
            self.warn(f"no keyframe of this shot found at {pattern}")


def _colour_path(session: MatteSession) -> str:
    """Where the plates are converted, for the render's header, when not by OCIO on the CPU."""
    on_device = session.device_colour
    if on_device is None:
        return ""
    plates = "half and float" if on_device.inputs == {"half", "float"} else "half"
    return f"; {plates} plates converted on the {on_device.device.type} by device tables"
