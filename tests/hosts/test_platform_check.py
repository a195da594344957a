"""Windows stops at once with one line: installing into a host, and starting the engine
(the host session's part is in test_host_session.py)."""

from __future__ import annotations

import sys

import pytest

from vrmbg.core.cli import main
from vrmbg.plugin.client import EngineClient
from vrmbg.plugin.platform_check import unsupported_platform
from vrmbg.plugin.requests import EngineUnavailable


@pytest.mark.parametrize("platform, refused", [("linux", False), ("darwin", False),
                                               ("win32", True), ("cygwin", True)])
def test_only_linux_and_macos_are_supported(platform, refused):
    line = unsupported_platform(platform)
    assert bool(line) == refused and "\n" not in line


@pytest.mark.parametrize("host, where", [("nuke", "--dir"), ("blender", "--zip")])
def test_installing_into_a_host_on_windows_is_one_line_and_writes_nothing(
        host, where, tmp_path, monkeypatch, capsys):
    target = tmp_path / "installed"
    monkeypatch.setattr(sys, "platform", "win32")
    code = main(["install", host, where, str(target)])
    err = capsys.readouterr().err
    assert code == 2 and not target.exists()
    assert err == f"vrmbg: error: {unsupported_platform()}\n"  # one line, no traceback


def test_starting_the_engine_on_windows_is_one_line(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    client = EngineClient("/no/engine/python")
    with pytest.raises(EngineUnavailable) as raised:
        client.start()
    assert raised.value.message == unsupported_platform() and client.pid is None
