"""The one way to open a shot: plates -> shot frames -> colour -> model -> `MatteSession`.

    shot = open_shot("plates/sh010.####.exr", settings, frames="1001-1010", models=models)
    session = shot.session(cache_root="/show/cache")
    session.ensure(1050)

    session = open_session("plates/sh010.####.exr", settings)   # the same, in one call

The render job, the farm's checks, the worker that hosts talk to, the demo, the quality
report, tests and benchmarks all open shots here, so every caller reads plates, finds the
shot's frames, converts colour and loads the model the same way and in the same order: the
cheap checks first (the plates exist, the shot start and the frames asked for are plate
frames, the colour spaces resolve, the keyframes' headers fit the plates), then the caller's own (`check`), then the model, so a
typo fails before a model loads. Settings are the schema's names (`plugin/schema.py`);
missing ones take the schema's defaults.

The modules that import torch (the session, the stepper, device colour) are imported where a
model is used: opening a shot without one (the farm's checks) does not use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ...plugin.settings import Settings
from ..colour.transform import ColourTransform
from ..errors import InputError
from ..io.frames import format_frame_ranges, parse_frame_spec
from ..io.keyframes import KeyframeSequence
from ..io.movie import MOVIE_DEFAULT_COLORSPACE, MovieSequence
from ..io.plate_identity import plate_source
from ..io.plates import open_plates
from .chain import shot_frames
from .interfaces import close_plates, plate_file, plate_origin
from .models import ModelPool
from .settings import SettingsLike, as_settings

if TYPE_CHECKING:
    from .session import MatteSession
    from .step import FrameStepper


@dataclass
class Shot:
    """One shot as opened: its plates and colour path, the shot's frames (from its shot
    start), the frames asked for, and the frame stepper once the model is loaded."""

    source: str  # the plates as the caller named them (errors name this)
    settings: Settings
    plates: Any
    colour: ColourTransform
    shot_frames: list[int]
    frames: list[int]  # asked for (the whole shot when none were named)
    stepper: "FrameStepper | None" = None
    owns_plates: bool = False  # opened here from a path: `close` closes them
    owns_colour: bool = False  # built here from the settings: `close` closes it

    def session(self, *, cache_root: str = "", preview: bool = False, readers: int = 0,
                device_colour: bool | None = None) -> "MatteSession":
        """A session answering this shot's frames from and into the cache.

        `cache_root` overrides the settings' `cache_dir`; `readers` fixes how many frames are
        read at once (0 = from the thread budget). `device_colour`: convert plates on the
        model's device (`core.colour.device`) when the transform has a device form; None =
        only when that device is not the CPU (on a CPU the OCIO processor is the faster of
        the two), True = on any device (tests, benchmarks).
        """
        from .session import MatteSession  # here: it imports torch (see the module docstring)

        if self.stepper is None:
            raise ValueError("the shot was opened without its model (load_model=False)")
        root = cache_root or self.settings.cache_dir
        on_device = None
        if device_colour or (device_colour is None and self.stepper.device.type != "cpu"):
            from ..colour.device import device_colour_for  # imports torch

            on_device = device_colour_for(self.colour, self.stepper.device)
        return MatteSession(self.plates, self.colour, self.stepper, root, self.settings,
                            preview=preview, readers=readers, device_colour=on_device)

    def close(self) -> None:
        """Close what opening the shot opened (the colour path's threads, a movie's file)."""
        if self.owns_colour:
            self.owns_colour = False
            self.colour.close()
        if self.owns_plates:
            self.owns_plates = False
            close_plates(self.plates)


def open_shot(plates_or_path: Any, settings: SettingsLike, *, frames: str | None = None,
              models: ModelPool | None = None, load_model: bool = True,
              movie_start: int = 1001, colour: ColourTransform | None = None,
              stepper: "FrameStepper | None" = None,
              check: Callable[[Shot], None] | None = None) -> Shot:
    """Open one shot under `settings`: plates, shot frames, frames asked for, colour, model.

    `plates_or_path`: a plate pattern or movie path, or plates already opened. `frames`: a
    frame spec to check against the plates (`requested_frames`; "" = the whole shot), or
    None to check none. `check(shot)` runs the caller's own checks after the cheap ones and
    before the model loads. `load_model=False` stops before the model (the farm's checks).
    `models` shares loaded models between sessions (a new pool when None). `colour` and
    `stepper` replace the ones built from the settings (the demo's wrong-colour check and
    the benchmarks' zero-cost step use them). What was opened here is closed again when
    opening fails.
    """
    settings = as_settings(settings)
    plates = open_plate_source(plates_or_path, settings, movie_start=movie_start)
    shot = Shot(plates_or_path if isinstance(plates_or_path, str) else plate_source(plates),
                settings, plates, colour, [], [], stepper,
                owns_plates=plates is not plates_or_path)
    try:
        try:
            shot.shot_frames = shot_frames(plates.frames, settings.shot_start)
        except InputError as exc:
            raise InputError(exc.message, path=shot.source, frame=exc.frame) from None
        shot.frames = shot.shot_frames if frames is None else requested_frames(
            frames, shot.shot_frames, plates, shot.source, settings.preroll,
            settings.chain_over_gaps)
        if shot.colour is None:
            shot.colour, shot.owns_colour = colour_for(plates, settings), True
        check_keyframes(shot)
        if check is not None:
            check(shot)
        if load_model and shot.stepper is None:
            shot.stepper = stepper_for(settings, models if models is not None else ModelPool())
        return shot
    except BaseException:
        shot.close()
        raise


def check_keyframes(shot: Shot) -> list[int]:
    """The shot's keyframes on disk (frames of the shot only), each header checked against
    the plate's display size, so a keyframe of the wrong size or with no matte channel fails
    before a model loads (InputError naming its file and frame). Frames of keyframes outside
    the shot are ignored."""
    if not shot.settings.keyframes:
        return []
    keys = KeyframeSequence(shot.settings.keyframes)
    inside = set(shot.shot_frames)
    found = [frame for frame in keys.frames() if frame in inside]
    if found:
        plate = shot.plates.info(shot.plates.first_frame)
        for frame in found:
            keys.info(frame, plate.width, plate.height)
    return found


def open_session(plates_or_path: Any, settings: SettingsLike, *,
                 models: ModelPool | None = None, cache_root: str = "",
                 movie_start: int = 1001, preview: bool = False,
                 colour: ColourTransform | None = None,
                 stepper: "FrameStepper | None" = None, readers: int = 0,
                 device_colour: bool | None = None) -> "MatteSession":
    """A session answering frames of one shot under `settings` from and into the cache:
    `open_shot(...).session(...)` in one call (see both for the arguments)."""
    shot = open_shot(plates_or_path, settings, models=models, movie_start=movie_start,
                     colour=colour, stepper=stepper)
    return shot.session(cache_root=cache_root, preview=preview, readers=readers,
                        device_colour=device_colour)


def requested_frames(spec: str, shot: list[int], plates: Any, source: str, preroll: int = 0,
                     over_gaps: bool = False) -> list[int]:
    """The frames to render: the spec, or every frame of the shot; all must be plates.

    The model is temporal: every frame from the shot start (or, with a pre-roll, from that
    many frames before the first one asked for) to the last one asked for must exist, or the
    chain would silently jump over a hole; `over_gaps` is the explicit choice to chain over
    the frames present (then only the frames asked for must exist).
    """
    wanted = parse_frame_spec(spec) if spec else list(shot)
    first, last = shot[0], shot[-1]
    if wanted[0] < first:  # checked against the shot before any range is built from them
        raise InputError(f"frame {wanted[0]} is before the shot's first frame {first}",
                         path=source, frame=wanted[0])
    if wanted[-1] > last:
        raise InputError(f"frame {wanted[-1]} is after the shot's last frame {last}",
                         path=source, frame=wanted[-1])
    present = set(plates.frames)
    reads_from = max(first, min(wanted) - preroll) if preroll > 0 else first
    needed = wanted if over_gaps else range(reads_from, max(wanted) + 1)
    missing = [f for f in needed if f not in present]
    if not missing:
        return sorted(set(wanted))
    path = plate_file(plates, missing[0]) or source
    if over_gaps:
        raise InputError(f"no plate frame {format_frame_ranges(missing)} (with "
                         "--chain-over-gaps only the frames asked for must exist)",
                         path=path, frame=missing[0])
    raise InputError("plate frame missing (a temporal matte needs every frame from the "
                     f"shot start; missing: {format_frame_ranges(missing)})",
                     path=path, frame=missing[0],
                     hint="plates on twos? --chain-over-gaps chains over the frames present")


def open_plate_source(plates_or_path: Any, settings: Settings, *,
                      movie_start: int = 1001) -> Any:
    """Plates from a path (image sequence or movie, with the settings' layer and part), or
    the plates object itself when one is given."""
    if not isinstance(plates_or_path, str):
        return plates_or_path
    return open_plates(plates_or_path, layer=settings.layer, part=settings.part,
                       movie_start=movie_start)


def colour_for(plates: Any, settings: SettingsLike) -> ColourTransform:
    """The colour transform from the plate to what the model sees, from the settings.

    An empty input colour space takes the plate type's default (scene_linear for EXR,
    Rec.709 video for movies, sRGB for 8/16-bit images).
    """
    settings = as_settings(settings)
    input_space = settings.input_colorspace
    if not input_space and isinstance(plates, MovieSequence):
        input_space = MOVIE_DEFAULT_COLORSPACE  # edit movies are Rec.709 video by default
    return ColourTransform(ocio=settings.ocio, input_space=input_space,
                           model_space=settings.model_colorspace, display=settings.display,
                           view=settings.view,
                           plate_path=plate_origin(plates, plates.first_frame),
                           threads=min(settings.threads, 2))


def stepper_for(settings: SettingsLike, models: ModelPool) -> "FrameStepper":
    """The frame stepper at the settings' inference size, on a model from the pool."""
    from .step import FrameStepper  # here: both import torch (see the module docstring)
    from .upsample import Upsampling

    settings = as_settings(settings)
    return FrameStepper(models.get(settings), settings.resolution,
                        Upsampling.from_settings(settings))
