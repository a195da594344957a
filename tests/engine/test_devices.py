"""Device and precision auto-selection (issue 3) on machines this one is not, by patching what
core/model/devices.py asks torch: CUDA availability, CUDA bf16 support and Apple MPS.

auto: CUDA (bf16 where supported, else fp16) -> MPS (fp16) -> CPU (bf16).
"""

from __future__ import annotations

import pytest
import torch

from vrmbg.core.cli import main
from vrmbg.core.errors import EXIT_RETRY, HostError, UsageError
from vrmbg.core.model.devices import resolve_device


@pytest.fixture
def machine(monkeypatch):
    """Set what the machine has: machine(cuda=..., bf16=..., mps=...)."""

    def set_up(*, cuda: bool = False, bf16: bool = False, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1 if cuda else 0)
        # devices._mps_available() asks torch.backends.mps.is_available()
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return set_up


@pytest.mark.parametrize("have, device, dtype", [
    (dict(cuda=True, bf16=True, mps=True), "cuda", torch.bfloat16),
    (dict(cuda=True, bf16=False, mps=True), "cuda", torch.float16),
    (dict(cuda=False, mps=True), "mps", torch.float16),
    (dict(cuda=False, mps=False), "cpu", torch.bfloat16),
], ids=["cuda-bf16", "cuda-fp16", "mps-fp16", "cpu-bf16"])
def test_auto_picks_the_best_device_and_its_precision(machine, have, device, dtype):
    machine(**have)
    assert resolve_device("auto", "auto") == (torch.device(device), dtype)
    assert resolve_device("", "") == (torch.device(device), dtype)  # empty settings mean auto


def test_explicit_devices_get_their_auto_precision(machine):
    machine(cuda=True, bf16=False, mps=False)
    assert resolve_device("cuda", "auto") == (torch.device("cuda"), torch.float16)
    assert resolve_device("cuda:0", "fp32") == (torch.device("cuda:0"), torch.float32)
    assert resolve_device("cpu", "auto") == (torch.device("cpu"), torch.bfloat16)
    machine(cuda=False, mps=True)
    assert resolve_device("mps", "auto") == (torch.device("mps"), torch.float16)


def _one_line_usage_error(device: str, precision: str, error: type = UsageError) -> str:
    with pytest.raises(error) as info:
        resolve_device(device, precision)
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_unavailable_devices_and_bad_precisions_are_one_line_usage_errors(machine):
    machine(cuda=False, mps=False)
    # No GPU here is not a typo: another host may have one (exit 75, retry elsewhere).
    message = _one_line_usage_error("cuda", "auto", HostError)
    assert "cuda" in message and "CUDA is not available" in message and "cpu" in message
    assert "mps" in _one_line_usage_error("mps", "auto", HostError)
    message = _one_line_usage_error("cpu", "fp16")
    assert "fp16 on CPU" in message and "bf16" in message
    _one_line_usage_error("auto", "fp16")  # auto lands on the CPU here

    machine(cuda=True, bf16=False)
    assert "bf16" in _one_line_usage_error("cuda", "bf16")
    assert "cuda:1" in _one_line_usage_error("cuda:1", "auto", HostError)  # one visible


def test_cli_reports_missing_cuda_as_a_retry_on_another_host(machine, model, capsys):
    machine(cuda=False, mps=False)
    assert main(["model", "info", model, "--device", "cuda"]) == EXIT_RETRY
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CUDA is not available" in err
