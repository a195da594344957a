"""The one way to open a matte session: plates -> colour -> model -> `MatteSession`.

    models = ModelPool()
    session = open_session("plates/sh010.####.exr", {"model": "demo"}, models=models,
                           cache_root="/show/cache")
    session.ensure(1050)

The command line's render, the demo, the quality report, the worker that hosts talk to,
tests and benchmarks all open sessions here, so every caller reads plates, converts colour
and loads the model the same way. Settings are the schema's names (`plugin/schema.py`);
missing ones take the schema's defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from .models import ModelPool

if TYPE_CHECKING:
    from ..colour.transform import ColourTransform
    from .session import MatteSession
    from .step import FrameStepper


def open_plate_source(plates_or_path: Any, settings: Mapping[str, Any], *,
                      movie_start: int = 1001) -> Any:
    """Plates from a path (image sequence or movie, with the settings' layer and part), or
    the plates object itself when one is given."""
    if not isinstance(plates_or_path, str):
        return plates_or_path
    from ..io.formats import open_plates

    return open_plates(plates_or_path, layer=str(settings.get("layer") or ""),
                       part=str(settings.get("part") or ""), movie_start=movie_start)


def colour_for(plates: Any, settings: Mapping[str, Any]) -> "ColourTransform":
    """The colour transform from the plate to what the model sees, from the settings.

    An empty input colour space takes the plate type's default (scene_linear for EXR,
    Rec.709 video for movies, sRGB for 8/16-bit images).
    """
    from ..colour.transform import ColourTransform
    from ..io.movie import MOVIE_DEFAULT_COLORSPACE, MovieSequence

    input_space = str(settings.get("input_colorspace") or "")
    if not input_space and isinstance(plates, MovieSequence):
        input_space = MOVIE_DEFAULT_COLORSPACE  # edit movies are Rec.709 video by default
    threads = int(settings.get("threads") or 0)
    return ColourTransform(ocio=str(settings.get("ocio") or ""), input_space=input_space,
                           model_space=str(settings.get("model_colorspace") or ""),
                           display=str(settings.get("display") or ""),
                           view=str(settings.get("view") or ""),
                           plate_path=_first_plate_path(plates), threads=min(threads, 2))


def stepper_for(settings: Mapping[str, Any], models: ModelPool) -> "FrameStepper":
    """The frame stepper at the settings' inference size, on a model from the pool."""
    from .step import FrameStepper
    from .upsample import Upsampling

    return FrameStepper(models.get(settings), int(settings.get("resolution") or 0),
                        Upsampling.from_settings(settings))


def open_session(plates_or_path: Any, settings: Mapping[str, Any], *,
                 models: ModelPool | None = None, cache_root: str = "",
                 movie_start: int = 1001, preview: bool = False,
                 colour: "ColourTransform | None" = None,
                 stepper: "FrameStepper | None" = None, readers: int = 0,
                 device_colour: bool | None = None) -> "MatteSession":
    """A session answering frames of one shot under `settings` from and into the cache.

    `plates_or_path`: a plate pattern or movie path, or plates already opened. Cheap checks
    (plates exist, colour spaces resolve) run before the model loads, so a typo fails fast.
    `models` shares loaded models between sessions (a new pool when None); `cache_root`
    overrides the settings' `cache_dir`. `colour` and `stepper` replace the ones built from
    the settings (the demo's wrong-colour check and the benchmarks' zero-cost step use them).
    `readers` fixes how many frames are read at once (0 = from the thread budget).
    `device_colour`: convert plates on the model's device (`core.colour.device`) when the
    transform has a device form; None = only when that device is not the CPU (on a CPU the
    OCIO processor is the faster of the two), True = on any device (tests, benchmarks).
    """
    from .session import MatteSession

    plates = open_plate_source(plates_or_path, settings, movie_start=movie_start)
    colour = colour if colour is not None else colour_for(plates, settings)
    if stepper is None:
        stepper = stepper_for(settings, models if models is not None else ModelPool())
    root = cache_root or str(settings.get("cache_dir") or "")
    on_device = None
    if device_colour or (device_colour is None and stepper.device.type != "cpu"):
        from ..colour.device import device_colour_for

        on_device = device_colour_for(colour, stepper.device)
    return MatteSession(plates, colour, stepper, root, settings, preview=preview,
                        readers=readers, device_colour=on_device)


def _first_plate_path(plates: Any) -> str:
    """A path that tells the plate type (for the default input colour space)."""
    path_for = getattr(plates, "path_for", None)
    if path_for is not None:
        return str(path_for(plates.first_frame))
    return str(getattr(plates, "path", "") or "")
