"""Hyper-parameters of the built-in VRMBG network, saved as ``config.json`` beside the weights.

One dataclass describes every BiRefNet-family variant the built-in architecture can build: the
Swin backbone size, how many channels the network eats, the decoder widths, whether BatchNorm
layers are present, and the patch ordering of the decoder's raw-image branches (the one property
that cannot be read from a checkpoint's tensor shapes).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..fs import atomic_write_text, make_folder
from ..errors import ModelError, first_line

CONFIG_NAME = "config.json"
# Marks a config.json as ours (a hub config.json of another code base is not).
ARCHITECTURE = "vrmbg-birefnet"

# Raw-image branch patch orderings. The image (B, C, R, R) is cut into a g x g grid of tiles that
# are stacked on the channel axis. "channel_major" puts the channel index outermost
# (einops "b c (hg h) (wg w) -> b (c hg wg) h w", current BiRefNet releases); "grid_major" puts
# the tile index outermost ("-> b (hg wg c) h w", the other ordering found in the family).
PATCH_ORDERS = ("channel_major", "grid_major")
MULTI_SCALE_MODES = ("cat", "add", "none")


@dataclass
class ModelConfig:
    """Everything needed to build a VRMBGNet; JSON round-trips through to_dict()/from_dict()."""

    name: str = "full"
    resolution: int = 1024          # native inference size (square), a multiple of 32
    in_channels: int = 6            # model input channels (6 = current RGB + prior RGB * alpha)
    ipt_channels: int = 3           # leading input channels seen by the raw-image decoder branches
    #                                 (3 = the current frame only: VRMBG-3.0's published size,
    #                                 220.18M params / 884.8 MB, fits this and not 6)
    # Swin Transformer backbone
    embed_dim: int = 192
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (6, 12, 24, 48)
    window_size: int = 12
    patch_size: int = 4
    mlp_ratio: float = 4.0
    # Encoder fusion
    multi_scale_input: str = "cat"  # backbone also runs on the half-size input: cat | add | none
    context_features: int = 3       # shallower stages resized and stacked on the deepest (0..3)
    squeeze_blocks: int = 1         # BasicDecBlk count of squeeze_module (0 = no squeeze module)
    # Decoder
    batch_norm: bool = True         # BatchNorm layers present (checkpoints trained with batch > 1)
    dec_inter_channels: int = 64    # inner width of every BasicDecBlk
    aspp_channels: int = 256        # width of each ASPP branch
    aspp_kernels: tuple[int, ...] = (1, 3, 7)  # deformable parallel branches besides aspp1
    ipt_inter_channels: int = 64    # inner width of the raw-image branches (SimpleConvs)
    ipt_split: bool = True          # raw-image branches take the image cut into tiles
    patch_order: str = "channel_major"
    gdt_channels: int = 16          # width of the gradient-attention convs
    ms_supervision: bool = True     # conv_ms_spvn_* heads present (training outputs only)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (source, detection)

    def __post_init__(self) -> None:
        self.depths = tuple(int(d) for d in self.depths)
        self.num_heads = tuple(int(h) for h in self.num_heads)
        self.aspp_kernels = tuple(int(k) for k in self.aspp_kernels)
        self.validate()

    # ----------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Refuse inconsistent values early, with one line that names the field."""
        problems = []
        if len(self.depths) != 4 or len(self.num_heads) != 4:
            problems.append("depths and num_heads need 4 stages")
        for i, heads in enumerate(self.num_heads):
            if heads <= 0 or (self.embed_dim * 2 ** i) % heads:
                problems.append(f"stage {i} width {self.embed_dim * 2 ** i} is not divisible by "
                                f"{heads} heads")
        if self.resolution <= 0 or self.resolution % 32:
            problems.append(f"resolution {self.resolution} is not a positive multiple of 32")
        if self.in_channels <= 0 or not 0 < self.ipt_channels <= self.in_channels:
            problems.append("ipt_channels must be between 1 and in_channels")
        if self.patch_order not in PATCH_ORDERS:
            problems.append(f"patch_order {self.patch_order!r} is not one of {PATCH_ORDERS}")
        if self.multi_scale_input not in MULTI_SCALE_MODES:
            problems.append(f"multi_scale_input {self.multi_scale_input!r} is not one of "
                            f"{MULTI_SCALE_MODES}")
        sizes = {"embed_dim": self.embed_dim, "window_size": self.window_size,
                 "patch_size": self.patch_size, "dec_inter_channels": self.dec_inter_channels,
                 "aspp_channels": self.aspp_channels, "gdt_channels": self.gdt_channels,
                 "ipt_inter_channels": self.ipt_inter_channels}
        problems += [f"{name} must be positive" for name, size in sizes.items() if size <= 0]
        if any(d <= 0 for d in self.depths) or self.squeeze_blocks < 0 or self.mlp_ratio <= 0:
            problems.append("depths, mlp_ratio must be positive and squeeze_blocks >= 0")
        if not 0 <= self.context_features <= 3:
            problems.append("context_features must be 0..3")
        if any(k <= 0 or k % 2 == 0 for k in self.aspp_kernels):
            problems.append("aspp_kernels must be odd and positive")
        if problems:
            raise ModelError("invalid model config: " + "; ".join(problems))

    # ----------------------------------------------------------------------------------------
    @property
    def stage_channels(self) -> tuple[int, int, int, int]:
        """Backbone output widths, shallow to deep (e.g. 192, 384, 768, 1536 for Swin-L)."""
        return tuple(self.embed_dim * 2 ** i for i in range(4))  # type: ignore[return-value]

    @property
    def lateral_channels(self) -> tuple[int, int, int, int]:
        """Encoder feature widths seen by the decoder, deep to shallow (3072..384 for full)."""
        factor = 2 if self.multi_scale_input == "cat" else 1
        widths = tuple(c * factor for c in reversed(self.stage_channels))
        return widths  # type: ignore[return-value]

    @property
    def context_channels(self) -> int:
        """Channels the context features add to the deepest feature before the squeeze module."""
        shallower = self.lateral_channels[1:]
        return sum(shallower[:self.context_features])

    # ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        data["architecture"] = ARCHITECTURE
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Build from a dict written by to_dict(); unknown keys are kept in `extra`."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        _check_types(kwargs)
        unknown = {k: v for k, v in data.items() if k not in known and k != "architecture"}
        if unknown:
            kwargs["extra"] = {**dict(kwargs.get("extra") or {}), **unknown}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"invalid model config: {exc}") from exc

    def to_json(self) -> str:
        """Stable, human-readable JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, folder: str | os.PathLike) -> str:
        """Write `config.json` into folder (created if needed); returns the file path."""
        make_folder(os.fspath(folder))
        path = os.path.join(os.fspath(folder), CONFIG_NAME)
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def load(cls, folder_or_file: str | os.PathLike) -> "ModelConfig":
        """Read a `config.json` (given the file or the folder holding it)."""
        path = os.fspath(folder_or_file)
        if os.path.isdir(path):
            path = os.path.join(path, CONFIG_NAME)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError as exc:
            raise ModelError("model config.json not found", path=path) from exc
        except (OSError, ValueError, RecursionError) as exc:
            raise ModelError(f"cannot read model config: {first_line(exc)}", path=path) from exc
        if not isinstance(data, dict):
            raise ModelError("model config is not a JSON object", path=path)
        return cls.from_dict(data)

    # ----------------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str) -> "ModelConfig":
        """Named configs: "full" (Swin-L, 6-channel, 1024², ~220M params) and "tiny" (tests)."""
        if name == "full":
            return cls(name="full")
        if name == "tiny":
            return cls(
                name="tiny", resolution=256, embed_dim=16, depths=(2, 2, 2, 2),
                num_heads=(1, 2, 2, 4), window_size=8, dec_inter_channels=8, aspp_channels=8,
                ipt_inter_channels=8, gdt_channels=4,
            )
        raise ModelError(f"unknown model config {name!r}; choose one of: {', '.join(PRESETS)}")

    def replace(self, **changes: Any) -> "ModelConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


PRESETS = ("tiny", "full")


def _kind(value: Any) -> str:
    """What a config value is, in a user's words."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "a list of whole numbers"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _fits(value: Any, default: Any) -> bool:
    """True when a config.json value has the type of the field's default."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, tuple):
        return isinstance(value, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return isinstance(value, type(default))


def _check_types(values: Mapping[str, Any]) -> None:
    """ModelError naming the first field of a config.json whose value has the wrong type
    (a float window size or text channel count would fail deep inside the network)."""
    defaults = ModelConfig()
    for name, value in values.items():
        default = getattr(defaults, name)
        if not _fits(value, default):
            raise ModelError(f"invalid model config: {name} must be {_kind(default)}, "
                             f"not {value!r}")
