"""Every command's --help prints: artists and TDs learn the tool from it."""

from __future__ import annotations

import argparse

import pytest

from vrmbg.core.cli import build_parser, main
from vrmbg.plugin import schema


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every command path of `parser` (('render',), ('model', 'info'), ...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from _commands(sub, prefix + (name,))


COMMANDS = sorted(set(_commands(build_parser())))


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_help_prints_and_exits_0(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vrmbg " + " ".join(command))


def test_render_help_shows_every_schema_setting_text_as_written(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for param in schema.for_host("cli"):
        if "%" in param.help:  # the percent signs reach the user unharmed
            words = " ".join(param.help.split())
            for at in [i for i, char in enumerate(words) if char == "%"]:
                around = words[max(0, at - 12):at + 12]
                # argparse may wrap the line anywhere: compare without the spaces
                assert around.replace(" ", "") in out.replace(" ", ""), (param.name, around)
    assert ("render",) in COMMANDS and ("render-shots",) in COMMANDS
