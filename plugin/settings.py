"""One matte's settings: typed, frozen, built from the parameter schema (`schema.PARAMS`).

    settings = Settings.from_mapping({"model": "demo", "resolution": "512"})  # coerced
    settings.resolution                    # 512
    settings.to_mapping()                  # every setting by name: the wire's `settings`
    Settings.from_args(args)               # argparse values, by schema name
    settings.replace(device="cpu")         # a changed copy, checked again

Every field is a schema parameter, in schema order, with the schema's default; values are
coerced and checked by `schema.coerce`, so a bad value is a ValueError naming the setting,
and an unknown name is an `UnknownSetting` (a KeyError whose text is the message). The
fields are written out (not generated) so type checkers know them; `tests/worker/test_settings.py`
holds them to the schema. Standard library only, Python 3.9+.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, Iterable, Mapping, Optional

from . import schema

KIND_TYPES = {"str": str, "path": str, "enum": str, "int": int, "float": float, "bool": bool}


class UnknownSetting(KeyError):
    """A setting name the schema does not know (its text is the message, unquoted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown setting"


def _d(name: str) -> Any:
    return schema.get(name).default


@dataclass(frozen=True)
class Settings:
    """Every schema setting with its value (see `schema.PARAMS` for help and limits)."""

    layer: str = _d("layer")
    part: str = _d("part")
    shot_start: str = _d("shot_start")
    chain_over_gaps: bool = _d("chain_over_gaps")
    cuts: str = _d("cuts")
    detect_cuts: bool = _d("detect_cuts")
    keyframes: str = _d("keyframes")
    ocio: str = _d("ocio")
    input_colorspace: str = _d("input_colorspace")
    model_colorspace: str = _d("model_colorspace")
    display: str = _d("display")
    view: str = _d("view")
    model: str = _d("model")
    revision: str = _d("revision")
    trust_remote_code: bool = _d("trust_remote_code")
    resolution: int = _d("resolution")
    device: str = _d("device")
    precision: str = _d("precision")
    threads: int = _d("threads")
    output_type: str = _d("output_type")
    upsample: str = _d("upsample")
    upsample_radius: int = _d("upsample_radius")
    upsample_eps: float = _d("upsample_eps")
    compression: str = _d("compression")
    cache_dir: str = _d("cache_dir")
    content_hash: bool = _d("content_hash")
    preview_resolution: int = _d("preview_resolution")
    preroll: int = _d("preroll")

    def __post_init__(self) -> None:
        for item in fields(self):
            value = schema.coerce(schema.get(item.name), getattr(self, item.name))
            object.__setattr__(self, item.name, value)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Settings":
        """Settings from names and values (host strings are coerced; missing = default)."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UnknownSetting(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**dict(values))

    @classmethod
    def from_args(cls, args: Any, names: Optional[Iterable[str]] = None) -> "Settings":
        """Settings from parsed command-line args, read by schema name (`args.resolution`);
        `names` limits which are read (default: every CLI setting), the rest are defaults."""
        chosen = schema.for_host("cli") if names is None else [schema.get(n) for n in names]
        return cls.from_mapping({p.name: getattr(args, p.name) for p in chosen
                                 if hasattr(args, p.name)})

    def to_mapping(self) -> Dict[str, Any]:
        """Every setting by name, in schema order (what `open` sends as `settings`)."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    def replace(self, **changes: Any) -> "Settings":
        """A copy with `changes` applied (checked like any other value)."""
        return self.from_mapping(dict(self.to_mapping(), **changes))

    def changed(self) -> Dict[str, Any]:
        """The settings that differ from the schema's defaults."""
        return {k: v for k, v in self.to_mapping().items() if v != schema.get(k).default}
