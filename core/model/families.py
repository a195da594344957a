"""Which published model a set of weights is: its family, variant, kind and native resolution.

The built-in network loads VRMBG-3.0 (temporal: 6 input channels, the current frame and the
previous frame masked by its matte) and BiRefNet's public MIT weights (per-frame: 3 input
channels) key for key. What the tensor shapes cannot tell -- the family's name, the variant
(general, lite, HR, matting...) and the resolution it was trained at (2048 for the HR models,
1024 otherwise) -- comes from the repository it was published as:

- a Hugging Face repo id (``ZhengPeng7/BiRefNet_HR``), or
- for a local folder, the repo id in its ``config.json`` (``_name_or_path``) or the folder's
  own name (``hf download ZhengPeng7/BiRefNet_HR --local-dir BiRefNet_HR`` keeps it), and
- BiRefNet's hub ``config.json`` (``"architectures": ["BiRefNet"]`` and an ``auto_map``
  naming ``birefnet.BiRefNet``) marks any other repository of the family.

Temporal or per-frame is read from the weights themselves (the patch embedding's input
channels), never from a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Mapping

from .config import ModelConfig

TEMPORAL_CHANNELS = 6  # current frame + previous frame * previous matte
PER_FRAME_CHANNELS = 3  # the current frame alone


@dataclass(frozen=True)
class Published:
    """A repository the built-in network is known to load, as its authors published it."""

    family: str
    variant: str
    resolution: int  # the square size it was trained and is meant to run at


# Repo ids in lower case (the hub treats them case-insensitively).
PUBLISHED: dict[str, Published] = {
    "briaai/vrmbg-3.0": Published("VRMBG-3.0", "video", 1024),
    "zhengpeng7/birefnet": Published("BiRefNet", "general", 1024),
    "zhengpeng7/birefnet_lite": Published("BiRefNet", "lite", 1024),
    "zhengpeng7/birefnet_hr": Published("BiRefNet", "HR", 2048),
    "zhengpeng7/birefnet-matting": Published("BiRefNet", "matting", 1024),
    "zhengpeng7/birefnet_hr-matting": Published("BiRefNet", "HR-matting", 2048),
    "zhengpeng7/birefnet-portrait": Published("BiRefNet", "portrait", 1024),
}


@dataclass(frozen=True)
class ModelKind:
    """What `vrmbg model info` and the mattes' metadata say about a loaded model."""

    family: str  # "VRMBG-3.0", "BiRefNet", "demo", or "BiRefNet-family" when unknown
    variant: str  # "general", "lite", "HR", "matting", ... ("" when unknown)
    temporal: bool  # True: each frame also sees the previous frame and its matte
    resolution: int  # native inference size
    resolution_from: str  # "published" (the repository's model card) or "config"

    @property
    def kind(self) -> str:
        """"temporal" or "per-frame"."""
        return "temporal" if self.temporal else "per-frame"

    @property
    def label(self) -> str:
        """One short phrase, e.g. "BiRefNet HR (per-frame)"."""
        name = f"{self.family} {self.variant}".strip() if self.variant else self.family
        return f"{name} ({self.kind})"


def is_temporal(config: Any) -> bool:
    """True for a model fed the previous frame and its matte (6 input channels)."""
    return int(getattr(config, "in_channels", TEMPORAL_CHANNELS)) == TEMPORAL_CHANNELS


def published_repo(source: str, raw_config: Mapping[str, Any] | None,
                   folder: PurePath | None) -> Published | None:
    """The published repository these weights are, from the name asked for, the config's
    ``_name_or_path`` or the folder's name; None when none of them is known."""
    names = [source, str((raw_config or {}).get("_name_or_path") or "")]
    for name in names:
        entry = PUBLISHED.get(name.split("@", 1)[0].strip().lower())
        if entry is not None:
            return entry
    if folder is not None:
        tail = folder.name.lower()
        for repo, entry in PUBLISHED.items():
            if repo.split("/", 1)[1] == tail:
                return entry
    return None


def is_birefnet_config(raw_config: Mapping[str, Any] | None) -> bool:
    """True for BiRefNet's own hub config.json (architectures / auto_map name BiRefNet)."""
    if not raw_config:
        return False
    architectures = raw_config.get("architectures") or []
    auto_map = raw_config.get("auto_map") or {}
    named = [str(a) for a in architectures] + [str(v) for v in dict(auto_map).values()]
    return any("birefnet" in name.lower() for name in named)


def identify(source: str, raw_config: Mapping[str, Any] | None, folder: PurePath | None,
             config: ModelConfig, *, ours: bool = False) -> ModelKind:
    """Family, variant, kind and native resolution of weights loaded with `config`.

    `ours`: the folder carries our own config.json, whose resolution is authoritative.
    """
    temporal = is_temporal(config)
    if source == "demo":
        return ModelKind("demo", "synthetic shots", temporal, config.resolution, "config")
    if ours:
        return ModelKind("built-in", config.name, temporal, config.resolution, "config")
    entry = published_repo(source, raw_config, folder)
    if entry is not None:
        return ModelKind(entry.family, entry.variant, temporal, entry.resolution, "published")
    family = "BiRefNet" if is_birefnet_config(raw_config) else "BiRefNet-family"
    return ModelKind(family, _variant_from_shapes(config), temporal, config.resolution,
                     "config")


def with_published_resolution(config: ModelConfig, kind: ModelKind) -> ModelConfig:
    """`config` at the resolution the repository was published for (2048 for BiRefNet HR)."""
    if kind.resolution_from != "published" or config.resolution == kind.resolution:
        return config
    return config.replace(resolution=kind.resolution)


def _variant_from_shapes(config: ModelConfig) -> str:
    """"lite" for a Swin-T backbone (how BiRefNet names it), else the backbone's name."""
    from .variants import backbone_name

    swin = backbone_name(config.embed_dim, config.depths)
    return "lite" if swin == "Swin-T" else swin
