"""Command-line flags generated from the plugin parameter schema, so every host agrees."""

from __future__ import annotations

import argparse
from typing import Any, Iterable

from ...plugin import schema
from ...plugin.settings import Settings
from ..errors import UsageError


def add_schema_arguments(parser: argparse.ArgumentParser,
                         names: Iterable[str] | None = None) -> None:
    """Add one flag per schema parameter (all CLI ones, or just `names`), grouped as in hosts."""
    chosen = schema.for_host("cli") if names is None else [schema.get(n) for n in names]
    groups: dict[str, Any] = {}
    for param in chosen:
        group = groups.get(param.group)
        if group is None:
            group = groups[param.group] = parser.add_argument_group(param.group.lower())
        text = param.help.replace("%", "%%")  # argparse formats help with %
        if param.kind == "bool":
            group.add_argument(param.flag, dest=param.name, action=argparse.BooleanOptionalAction,
                               default=param.default, help=text)
            continue
        kwargs: dict[str, Any] = {"dest": param.name, "default": param.default, "help": text}
        if param.kind == "enum":
            kwargs["choices"] = param.choices
        elif param.kind == "int":
            kwargs["type"] = int
            kwargs["metavar"] = "N"
        elif param.kind == "float":
            kwargs["type"] = float
        else:
            kwargs["metavar"] = "PATH" if param.kind == "path" else "NAME"
        if param.default not in ("", None, False):
            kwargs["help"] = f"{text} (default: {str(param.default).replace('%', '%%')})"
        group.add_argument(param.flag, **kwargs)


def settings_from(args: argparse.Namespace, names: Iterable[str] | None = None) -> Settings:
    """The typed settings of parsed args (the schema's flags; `names` limits which are read,
    the rest are defaults); UsageError names a bad value."""
    try:
        return Settings.from_args(args, names)
    except (KeyError, ValueError) as exc:
        raise UsageError(str(exc)) from None
