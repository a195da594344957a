"""`vrmbg info`: what a plate sequence holds before you render it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import InputError
from ..io.plate_info import describe
from .options import add_schema_arguments

# Reader bookkeeping, shown with --json only.
_INTERNAL_PREFIXES = ("oiio:", "openexr:")

DESCRIPTION = """\
Show what a plate sequence holds: the frames on disk and the gaps between them,
resolution, display and data windows, EXR parts and layers, pixel type, colour
metadata (colour space, DPX transfer, chromaticities), timecode and frame rate.
The header is read from the first frame; --layer/--part are checked the way
`vrmbg render` would use them.

Examples:
  vrmbg info plates/sh010.####.exr
  vrmbg info plates/sh010.%04d.exr --layer beauty
  vrmbg info renders/sh010.\\$F4.exr --part 1 --json
  vrmbg info scans/sh010.@@@@.dpx
  vrmbg info plates/sh010.####.exr --keyframes roto/sh010_key.####.exr
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `info` sub-command."""
    parser = subparsers.add_parser(
        "info", help="frames, gaps, resolution, channels and colour of a plate sequence",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", metavar="INPUT",
                        help="plate file or pattern (####, %%04d, @@@@, $F4)")
    add_schema_arguments(parser, names=["layer", "part", "cuts", "keyframes"])
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the description of INPUT; errors propagate as VrmbgError (exit 2/3)."""
    try:
        facts = describe(args.input, layer=args.layer or "", part=args.part or "")
    except InputError:
        if args.layer or args.part:
            raise
        facts = describe_layered(args.input)  # no plain R, G, B: say what is there
    if args.cuts:
        from ..io.edits import resolve_cuts
        from ..io.frames import parse_frame_spec

        facts["cuts"] = resolve_cuts(args.cuts, parse_frame_spec(facts["frames"]))
    if args.keyframes:
        facts["keyframes"] = keyframe_facts(args.keyframes, facts["frames"])
    print(json.dumps(facts, indent=2) if args.json else format_text(facts))
    return 0


def keyframe_facts(pattern: str, plate_frames: str) -> dict[str, Any]:
    """The keyframes found for the plates: `frames` (of the plates) and `outside` (files
    whose frame is not a plate frame: a render ignores them)."""
    from ..io.frames import parse_frame_spec
    from ..io.keyframes import KeyframeSequence

    found = KeyframeSequence(pattern).frames()
    plates = set(parse_frame_spec(plate_frames)) if plate_frames else set()
    return {"pattern": pattern, "frames": [f for f in found if f in plates],
            "outside": [f for f in found if f not in plates]}


def describe_layered(pattern: str) -> dict[str, Any]:
    """The description of a plate with no plain R, G, B (layers only), read through its
    first RGB layer, with `needs_layer` saying which layers a render may choose from.

    Re-raises the original InputError when no part holds a layer with R, G, B either.
    """
    from ..io.image_reader import ImageReader, split_layers
    from ..io.plates import PlateSequence

    sequence = PlateSequence(pattern)
    with ImageReader(sequence.path_for(sequence.first_frame), sequence.first_frame) as reader:
        layers = [layer for spec in reader.specs for layer in split_layers(spec.channelnames)[0]]
    for layer in dict.fromkeys(layers):
        try:
            facts = describe(pattern, layer=layer)
        except InputError:
            continue
        facts["needs_layer"] = list(dict.fromkeys(layers))
        return facts
    return describe(pattern)  # raises the error about plain R, G, B


def format_text(facts: dict[str, Any]) -> str:
    """Human-readable lines for a `describe()` result."""
    rows = [("frames", _frames_text(facts))]
    if facts.get("cuts") is not None:
        rows.append(("cuts", ", ".join(str(c) for c in facts["cuts"]) or "none"))
    if facts.get("keyframes") is not None:
        rows.append(("keyframes", _keyframes_text(facts["keyframes"])))
    if facts["gaps"]:
        rows.append(("gaps", _gaps_text(facts)))
    rows += [
        ("format", f"{facts['format']}, {facts['pixel_type']} ({facts['bit_depth']}-bit)"),
        ("resolution", "{}x{}".format(*facts["resolution"])),
        ("display", _window_text(facts["display_window"])),
        ("data", _data_text(facts)),
    ]
    if len(facts["parts"]) > 1:
        rows.append(("parts", "; ".join(f"{p['index']} {p['name']} ({', '.join(p['channels'])})"
                                        for p in facts["parts"])))
    else:
        rows.append(("channels", ", ".join(facts["channels"])))
    layers = facts["parts"][0]["layers"] if len(facts["parts"]) == 1 else []
    if layers:
        rows.append(("layers", ", ".join(layers)))
    if facts.get("views"):
        rows.append(("views", ", ".join(facts["views"]) + " (the first is the default; "
                     "choose another with --layer VIEW, or --part VIEW for one part per view)"))
    rows.append(("reading", _reading_text(facts)))
    rows.append(("colour", ", ".join(f"{k}={_value_text(v)}" for k, v in facts["colour"].items())
                 or "no colour metadata (say the colour space with --input-colorspace)"))
    rows.append(("timecode", facts["timecode"] or "-"))
    rows.append(("fps", f"{facts['fps']:.6g}" if facts["fps"] else "-"))
    rows += [("warning", text) for text in facts.get("warnings", [])]
    lines = [facts["pattern"]] + [f"  {name:<11} {text}" for name, text in rows]
    extra = {k: v for k, v in facts["metadata"].items()
             if k not in facts["colour"] and not k.startswith(_INTERNAL_PREFIXES)}
    if extra:
        lines.append("  metadata")
        lines += [f"    {k} = {_value_text(v)}" for k, v in extra.items()]
    return "\n".join(lines)


def _frames_text(facts: dict[str, Any]) -> str:
    """`1001-1010,1012 (11 frames)` or `single file`."""
    if not facts["is_sequence"]:
        return f"single file (frame {facts['first_frame']})"
    count = facts["frame_count"]
    return f"{facts['frames']} ({count} frame{'s' if count != 1 else ''})"


def _keyframes_text(keys: dict[str, Any]) -> str:
    """`1004, 1050 (2 found)`, with the files outside the plates' frames named."""
    frames = keys["frames"]
    text = (f"{', '.join(str(f) for f in frames)} ({len(frames)} found)" if frames
            else f"none found at {keys['pattern']}")
    if keys["outside"]:
        text += f"; not plate frames (ignored): {', '.join(str(f) for f in keys['outside'])}"
    return text


def _gaps_text(facts: dict[str, Any]) -> str:
    """`1011, 1020-1024 (6 missing)`."""
    runs = [str(a) if a == b else f"{a}-{b}" for a, b in facts["gaps"]]
    return f"{', '.join(runs)} ({facts['missing_count']} missing)"


def _window_text(window: list[int]) -> str:
    """`x,y WxH`."""
    x, y, w, h = window
    return f"{x},{y} {w}x{h}"


def _data_text(facts: dict[str, Any]) -> str:
    """Data window with what it means for the model's input."""
    data, display = facts["data_window"], facts["display_window"]
    if data == display:
        return f"{_window_text(data)} (same as display)"
    dx, dy, dw, dh = data
    fx, fy, fw, fh = display
    inside = dx >= fx and dy >= fy and dx + dw <= fx + fw and dy + dh <= fy + fh
    note = ("cropped: the rest of the display window reads as 0" if inside
            else "overscan/offset: pixels outside the display window are ignored")
    return f"{_window_text(data)} ({note})"


def _reading_text(facts: dict[str, Any]) -> str:
    """Which part and channels a render would use."""
    if facts.get("needs_layer"):
        return ("no plain R, G, B: a render needs --layer (one of "
                f"{', '.join(facts['needs_layer'])}); shown: {facts['layer']}")
    part = f"part {facts['part']!r}, " if len(facts["parts"]) > 1 else ""
    if facts.get("luminance_chroma"):
        return (f"{part}luminance/chroma {facts['luminance_chroma']} (chroma subsampled), "
                f"reconstructed as {', '.join(facts['selected_channels'])}")
    return f"{part}channels {', '.join(facts['selected_channels'])} as R, G, B"


def _value_text(value: Any) -> str:
    """Compact text for a metadata value."""
    if isinstance(value, list):
        return "(" + ", ".join(_value_text(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
