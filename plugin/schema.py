"""Every user setting, defined once.

CLI flags (`vrmbg.core.cli.options`), Nuke knobs (`nuke/`) and Blender properties
(`blender_addon/`) are all generated from `PARAMS`, so a setting has the same name,
default, choices and help text in every host. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

KINDS = ("str", "path", "int", "float", "bool", "enum")


@dataclass(frozen=True)
class Param:
    """One user setting: its identifier, type, default, allowed values and help."""

    name: str  # python identifier, also the Blender property and Nuke knob name
    kind: str  # one of KINDS
    default: Any
    label: str
    help: str
    group: str = "General"
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    hosts: frozenset[str] = field(default_factory=lambda: frozenset({"cli", "nuke", "blender"}))
    # True when changing the value changes the mattes (it is part of the chain's identity).
    affects_result: bool = True
    # Shown first in a host (its panel, its Add dialog); the others sit in collapsed groups.
    common: bool = False
    # (host, help) where the help above speaks of the command line and a host does otherwise.
    host_help: tuple[tuple[str, str], ...] = ()

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. `--input-colorspace`."""
        return "--" + self.name.replace("_", "-")

    def help_for(self, host: str) -> str:
        """The help a host shows: its own where it does otherwise, else the common one."""
        return dict(self.host_help).get(host, self.help)


PARAMS: tuple[Param, ...] = (
    # Input
    Param("layer", "str", "", "Layer",
          "EXR layer (channel prefix) holding the plate, e.g. 'beauty'; empty = plain R,G,B.",
          group="Input"),
    Param("part", "str", "", "Part",
          "EXR part (subimage) name or index for multi-part files; empty = the part that has the layer.",
          group="Input"),
    Param("shot_start", "str", "", "Shot start",
          "First frame of the shot (a frame number): the temporal chain starts there. Empty = "
          "the first plate frame on disk. Set it when frames before the shot were added to "
          "the plate folder, to keep the mattes already rendered.", group="Input"),
    Param("chain_over_gaps", "bool", False, "Chain over missing frames",
          "Plates on twos or with dropped frames: continue the temporal chain from the "
          "previous frame on disk across the missing ones (each matte after a gap names the "
          "frame it continues from, vrmbg:previous). Off = a missing frame is an error.",
          group="Input", affects_result=False),  # permits a chain; the frames decide it
    # Edit
    Param("cuts", "str", "", "Cuts",
          "Frames where a new shot starts in an edit, e.g. '1050,1101', or an OpenTimelineIO "
          "timeline (.otio) or CMX 3600 EDL (.edl) whose clip boundaries are the cuts (its "
          "first frame is the plates' first frame). At a cut the model starts again from an "
          "empty prior; a jump after a cut computes from the cut, not from the shot start.",
          group="Edit"),
    Param("detect_cuts", "bool", False, "Detect cuts",
          "Find hard cuts from the pictures themselves (a jump between two frames) and start "
          "again from an empty prior at each. For edits and movies holding several shots.",
          group="Edit"),
    Param("keyframes", "path", "", "Keyframes",
          "The artist's own mattes for some frames, as an image sequence "
          "(e.g. /shots/sh010/key.####.exr; also %04d, @@@@, $F4): every frame on disk is a "
          "keyframe. Its matte is the artist's, as given, and the frames after it continue "
          "from it (the model's prior), so a correction or a hint matte carries forward; "
          "frames before it are untouched. EXR channel A or a single channel, PNG/TIFF alpha "
          "or grey, the plate's display size. Empty = none.", group="Edit"),
    # Colour
    Param("ocio", "path", "", "OCIO config",
          "OCIO config file or built-in URI. Empty = $OCIO, else ocio://studio-config-latest.",
          group="Colour",
          host_help=(("blender",
                      "OCIO config the engine reads the plate with. Empty = Blender's own "
                      "colour config (or $OCIO when Blender was started with it), as the "
                      "Image Editor shows"),)),
    Param("input_colorspace", "str", "", "Input colour space",
          "Colour space of the plate. Empty = scene_linear role for EXR, color_picking role "
          "(sRGB) for 8/16-bit PNG/JPEG/TIFF, 'Rec.1886 Rec.709 - Display' for movies; DPX "
          "needs it said (e.g. 'ACEScct', 'ARRI LogC4').",
          group="Colour",
          host_help=(("blender",
                      "Colour space of the plate. Empty = the plate image's colour space "
                      "in Blender (Image Editor > Image > Color Space)"),)),
    Param("model_colorspace", "str", "sRGB Encoded Rec.709 (sRGB)", "Model colour space",
          "What the model sees. The default matches the display-referred video it was trained on.",
          group="Colour"),
    Param("display", "str", "", "Display",
          "Optional OCIO display for a tone-mapped model input (with --view), e.g. 'sRGB - Display'. "
          "Empty = plain colour-space conversion.", group="Colour",
          host_help=(("blender",
                      "Optional OCIO display for a tone-mapped model input (with View), "
                      "e.g. 'sRGB - Display'. Empty = plain colour-space conversion"),)),
    Param("view", "str", "", "View",
          "OCIO view used with --display, e.g. 'ACES 2.0 - SDR 100 nits (Rec.709)'.",
          group="Colour",
          host_help=(("blender",
                      "OCIO view used with Display, e.g. 'ACES 2.0 - SDR 100 nits "
                      "(Rec.709)'"),)),
    # Model
    Param("model", "str", "briaai/VRMBG-3.0", "Model",
          "Weights: a Hugging Face repo id, a local folder, a .safetensors file, or 'demo' "
          "for the bundled demo model (synthetic shots only). briaai/VRMBG-3.0 is temporal; "
          "ZhengPeng7/BiRefNet (and _lite, _HR, -matting, _HR-matting) are public MIT "
          "per-frame models.", group="Model", common=True),
    Param("revision", "str", "", "Revision",
          "Hugging Face revision (branch, tag or commit) of the weights.", group="Model"),
    Param("trust_remote_code", "bool", False, "Use official model code",
          "Run the model.py shipped with the weights instead of the built-in architecture. "
          "This executes downloaded code: only for repositories you trust.", group="Model"),
    Param("resolution", "int", 0, "Inference resolution",
          "Square size the model runs at (multiple of 32). 0 = the model's own (1024 for VRMBG-3.0, as on the model card).",
          group="Model", minimum=0, maximum=4096, common=True),
    Param("device", "enum", "auto", "Device",
          "Where the model runs: auto picks CUDA, then Apple MPS, then CPU.",
          group="Model", choices=("auto", "cpu", "cuda", "mps"), common=True),
    Param("precision", "enum", "auto", "Precision",
          "auto = fp16/bf16 on GPU, bf16 on CPU. fp16 is refused on CPU (unusably slow).",
          group="Model", choices=("auto", "fp32", "bf16", "fp16"), common=True),
    Param("threads", "int", 0, "CPU threads",
          "CPU threads for the model and for decoding frames (readers and the writer run "
          "beside them at the lowest priority). 0 = every core. On a farm, the cores the "
          "task was given. Part of the chain: torch rounds differently on other thread "
          "counts.",
          group="Model", minimum=0, maximum=1024),
    # Output
    Param("output_type", "enum", "alpha", "Output",
          "alpha: single-channel A matte. rgba: the plate premultiplied by the matte.",
          group="Output", choices=("alpha", "rgba"), affects_result=False),
    Param("upsample", "enum", "bilinear", "Upsampling",
          "How the model's square prediction is brought to the plate size. bilinear: the model "
          "card's. guided-colour: an edge-aware guided filter on the plate's colours (sharper "
          "hair and hard edges on 2K/4K plates; measured -8% SAD, -35% MSE, -37..48% gradient "
          "error; costs 0.6-4 s per frame on CPU).", group="Output",
          choices=("bilinear", "guided-colour")),
    Param("upsample_radius", "int", 2, "Upsampling radius",
          "Window radius of the guided upsampling, in pixels of the model's prediction "
          "(1024 across for VRMBG-3.0).", group="Output", minimum=1, maximum=64),
    Param("upsample_eps", "float", 0.001, "Upsampling smoothness",
          "How much image contrast the guided upsampling needs before it follows an edge; "
          "larger is closer to bilinear.", group="Output", minimum=1e-6, maximum=1.0),
    Param("compression", "enum", "zip", "EXR compression",
          "Compression of written mattes (lossless choices keep mattes exact).", group="Output",
          choices=("zip", "zips", "piz", "rle", "none", "dwaa", "dwab"), affects_result=False),
    # Cache
    Param("cache_dir", "path", "", "Cache folder",
          "Where finished frames and their temporal state are kept. Empty = $VRMBG_CACHE, else "
          "a .vrmbg-cache folder beside the output (render) or the user cache folder.",
          group="Cache", affects_result=False,
          host_help=(("blender",
                      "Where this matte's frames and temporal state are kept. Empty = the "
                      "add-on's Cache folder preference, else $VRMBG_CACHE, else a "
                      "vrmbg-cache folder beside the .blend (your user cache until the "
                      "file is saved)"),)),
    Param("content_hash", "bool", False, "Hash plate contents",
          "Detect replaced plate frames by content hash instead of size + modification time.",
          group="Cache", affects_result=False),
    Param("preview_resolution", "int", 0, "Preview resolution",
          "Interactive scrubbing tier: a lower inference size (e.g. 512). 0 = off. Stored apart "
          "and never used as final.", group="Cache", minimum=0, maximum=4096,
          hosts=frozenset({"nuke", "blender"}),
          host_help=(("blender",
                      "Kept for the command line: Blender always computes exact frames, "
                      "so this has no effect here yet"),)),
    Param("preroll", "int", 0, "Pre-roll",
          "Start this many frames before the first requested frame with an empty prior instead "
          "of from the shot start (approximate; labelled in the output). 0 = exact.",
          group="Cache", minimum=0,
          host_help=(("blender",
                      "Kept for the command line: Blender always computes from the shot "
                      "start, so this has no effect here yet"),)),
)

_BY_NAME = {p.name: p for p in PARAMS}


def get(name: str) -> Param:
    """The parameter called `name`; KeyError names the unknown setting."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown setting {name!r}") from None


def for_host(host: str) -> list[Param]:
    """Parameters a host ('cli', 'nuke', 'blender') exposes, in schema order."""
    return [p for p in PARAMS if host in p.hosts]


def common(host: str) -> list[Param]:
    """The settings a host shows first, in schema order."""
    return [p for p in for_host(host) if p.common]


def grouped(host: str) -> dict[str, list[Param]]:
    """A host's other settings by schema group (groups and settings in schema order)."""
    groups: dict[str, list[Param]] = {}
    for param in for_host(host):
        if not param.common:
            groups.setdefault(param.group, []).append(param)
    return groups


def defaults(names: Iterable[str] | None = None) -> dict[str, Any]:
    """Default values for the given (or all) settings."""
    chosen = PARAMS if names is None else [get(n) for n in names]
    return {p.name: p.default for p in chosen}


def coerce(param: Param, value: Any) -> Any:
    """Convert a host value (string knob, Blender property, CLI text) to the schema type.

    Raises ValueError with a message naming the setting when the value is not allowed.
    """
    if value is None:
        return param.default
    if param.kind == "bool":
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"{param.name}: expected true/false, got {value!r}")
        return bool(value)
    if param.kind in ("int", "float"):
        try:
            number = int(value) if param.kind == "int" else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{param.name}: expected a number, got {value!r}") from None
        if param.minimum is not None and number < param.minimum:
            raise ValueError(f"{param.name}: {number} is below the minimum {param.minimum:g}")
        if param.maximum is not None and number > param.maximum:
            raise ValueError(f"{param.name}: {number} is above the maximum {param.maximum:g}")
        return number
    text = str(value)
    if param.kind == "enum" and text not in param.choices:
        raise ValueError(f"{param.name}: {text!r} is not one of {', '.join(param.choices)}")
    return text


def resolve(values: Mapping[str, Any]) -> dict[str, Any]:
    """Complete settings: every schema parameter, given values coerced, the rest defaulted."""
    unknown = set(values) - set(_BY_NAME)
    if unknown:
        raise KeyError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return {p.name: coerce(p, values.get(p.name)) for p in PARAMS}
