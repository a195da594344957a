"""The engine's settings: the plugin layer's typed `Settings`, one field per schema setting.

Callers may hand a mapping by schema name (a worker request's `settings`, a test's few
values); it is checked and completed with the schema's defaults once, where a shot is
opened, and the engine reads typed fields from then on.
"""

from __future__ import annotations

from typing import Any, Mapping, Union

from ...plugin.settings import Settings
from ..errors import UsageError

SettingsLike = Union[Settings, Mapping[str, Any]]


def as_settings(settings: SettingsLike) -> Settings:
    """The typed settings; UsageError names an unknown or bad setting."""
    if isinstance(settings, Settings):
        return settings
    try:
        return Settings.from_mapping(settings)
    except (KeyError, ValueError) as exc:
        raise UsageError(str(exc)) from None
