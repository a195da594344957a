"""`vrmbg model`: inspect weights, write random-weight models, train the demo model."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from ..errors import EXIT_OK, EXIT_USAGE, OutputError
from .options import add_schema_arguments

DESCRIPTION = """\
Look at model weights before a render, or make a stand-in model.

Examples:
  vrmbg model info                                  the default weights (briaai/VRMBG-3.0)
  vrmbg model info /shows/models/vrmbg3             a local folder (config.json + model.safetensors)
  vrmbg model info weights.safetensors --json       one file, as JSON for pipeline tools
  vrmbg model init-random /tmp/vrmbg-tiny --config tiny --seed 1
                                                    random weights to test a pipeline end to end
"""

INFO_DESCRIPTION = """\
Load weights and print what they are: the model family and whether it is temporal (each
frame also sees the previous frame and its matte, as VRMBG-3.0) or per-frame (each frame on its
own, as BiRefNet), the detected variant, parameter count, the dtype the tensors are stored in,
the native resolution and the fingerprint the cache keys on.

SOURCE is a Hugging Face repo id, a local folder, a .safetensors file or 'demo'. Gated
repositories need their licence accepted and `hf auth login` (or HF_TOKEN); HF_HUB_OFFLINE=1
uses the local Hugging Face cache only.

Examples:
  vrmbg model info
  vrmbg model info briaai/VRMBG-3.0 --revision main
  vrmbg model info ZhengPeng7/BiRefNet_HR            public MIT weights, per-frame, 2048x2048
  vrmbg model info /shows/models/vrmbg3 --json
  vrmbg model info demo
"""

INIT_DESCRIPTION = """\
Write a model folder (config.json + model.safetensors) with random weights, in the same layout
as real weights. Mattes from it are meaningless: it exists to test pipelines, farm templates
and host setups without downloading anything. The same --config and --seed always give the
same weights and so the same fingerprint.

Examples:
  vrmbg model init-random /tmp/vrmbg-tiny --config tiny
  vrmbg model init-random /tmp/vrmbg-full --config full --seed 7     (~885 MB)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `vrmbg model` and its sub-commands."""
    parser = subparsers.add_parser(
        "model", help="inspect weights, write random-weight models",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=lambda args: _usage(parser))
    commands = parser.add_subparsers(title="model commands", metavar="COMMAND")
    _register_info(commands)
    _register_init_random(commands)
    _register_train_demo(commands)


def _usage(parser: argparse.ArgumentParser) -> int:
    """`vrmbg model` alone: show the help and return the usage exit code."""
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _register_info(commands: argparse._SubParsersAction) -> None:
    """`vrmbg model info [SOURCE]`."""
    parser = commands.add_parser(
        "info", help="print variant, parameters, dtype and fingerprint of weights",
        description=INFO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", metavar="SOURCE", default=None,
                        help="weights to inspect (default: --model)")
    add_schema_arguments(parser, names=["model", "revision", "trust_remote_code", "device",
                                        "precision"])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run_info)


def _register_init_random(commands: argparse._SubParsersAction) -> None:
    """`vrmbg model init-random DIR`."""
    parser = commands.add_parser(
        "init-random", help="write a random-weight model folder (for tests and dry runs)",
        description=INIT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", metavar="DIR", help="model folder to write")
    parser.add_argument("--config", choices=("tiny", "full"), default="tiny",
                        help="architecture size: tiny (a few MB, tests) or full (Swin-L, "
                             "~220M parameters) (default: tiny)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="random seed (default: 0)")
    parser.add_argument("--force", action="store_true",
                        help="replace a model already in DIR")
    parser.set_defaults(func=run_init_random)


def _register_train_demo(commands: argparse._SubParsersAction) -> None:
    """`vrmbg model train-demo`, when the demo trainer is part of this installation."""
    name = f"{__package__.rsplit('.', 1)[0]}.demo.train_cli"
    try:
        train = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in (name, name.rsplit(".", 1)[0]):
            return
        raise
    parser = commands.add_parser(
        "train-demo", help="train the small demo model on generated shots",
        description=(train.__doc__ or "Train the demo model.").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_arguments(parser)
    parser.set_defaults(func=train.run)


# --------------------------------------------------------------------------------------------
def run_info(args: argparse.Namespace) -> int:
    """Load the weights and print their description (text or JSON)."""
    from ..model import load_model

    source = args.source or args.model
    loaded = load_model(source, device=args.device, precision=args.precision,
                        revision=args.revision, trust_remote_code=args.trust_remote_code)
    report = describe(loaded)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(_format_text(report))
    return EXIT_OK


def describe(loaded: Any) -> dict[str, Any]:
    """JSON-able description of a LoadedModel (what `vrmbg model info` prints)."""
    cfg = loaded.config
    kind = loaded.kind
    return {
        "source": loaded.source,
        "kind": "temporal" if loaded.temporal else "per-frame",
        "family": kind.family if kind else "",
        "family_variant": kind.variant if kind else "",
        "resolution_from": kind.resolution_from if kind else "config",
        "files": list(loaded.files),
        "variant": cfg.name,
        "variant_summary": _variant_summary(cfg),
        "variant_from": loaded.variant_from,
        "remote_code": loaded.remote_code,
        "parameters": loaded.parameter_count,
        "stored_dtype": loaded.stored_dtype,
        "native_resolution": cfg.resolution,
        "input_channels": cfg.in_channels,
        "fingerprint": loaded.fingerprint,
        "device": str(loaded.device),
        "dtype": str(loaded.dtype).replace("torch.", ""),
        "config": cfg.to_dict(),
    }


def _variant_summary(cfg: Any) -> str:
    """One line describing the architecture variant."""
    if cfg.extra.get("remote_code"):
        return f"repository code {cfg.extra['remote_code']}"
    from ..model.variants import describe as describe_variant

    return f"{describe_variant(cfg)}, patch order {cfg.patch_order}"


_KIND_MEANING = {
    "temporal": "each frame also sees the previous frame and its matte; shots run in order",
    "per-frame": "each frame's matte depends on that frame alone",
}


def _format_text(report: dict[str, Any]) -> str:
    """Aligned `key: value` lines for a terminal."""
    rows = [
        ("source", report["source"]),
        ("files", ", ".join(report["files"])),
        ("model", f"{report['family']} {report['family_variant']}".strip()
                  + f", {report['kind']} ({_KIND_MEANING[report['kind']]})"),
        ("variant", f"{report['variant']} ({report['variant_summary']}; from "
                    f"{report['variant_from']})"),
        ("parameters", f"{report['parameters']:,}"),
        ("stored dtype", report["stored_dtype"]),
        ("native resolution", f"{report['native_resolution']}x{report['native_resolution']}"
                              + (" (as published)" if report["resolution_from"] == "published"
                                 else "")),
        ("fingerprint", report["fingerprint"]),
        ("loaded as", f"{report['device']} {report['dtype']}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in rows)


def run_init_random(args: argparse.Namespace) -> int:
    """Write a random-weight model folder and print what was written."""
    import os

    from ..model import ModelConfig, init_random
    from ..model.loader import model_fingerprint

    weights = os.path.join(args.folder, "model.safetensors")
    if os.path.exists(weights) and not args.force:
        raise OutputError("a model is already there (use --force to replace it)", path=weights)
    config = ModelConfig.preset(args.config)
    folder = init_random(args.folder, config=config, seed=args.seed)
    print(f"wrote {folder} ({args.config} config, seed {args.seed}, fingerprint "
          f"{model_fingerprint([weights], ModelConfig.load(folder))})")
    return EXIT_OK
