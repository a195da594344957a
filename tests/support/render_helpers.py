"""Shared helpers for the `vrmbg render` tests: tiny model, plates, running the command line,
reading mattes and their attributes back, and looking for debris on disk.

Everything is read back with OpenImageIO directly (not through the code under test) except
`read_matte`, which is the documented public reader of mattes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import OpenImageIO as oiio

from plate_factory import ramp_rgb, write_exr, write_exr_sequence
from vrmbg.core.cli import main
from vrmbg.core.model.loader import init_random

FIRST = 1001
SIZE = (96, 64)  # width, height
# Environment variables that would change where the cache goes or how progress looks.
_ENV_DROP = ("VRMBG_CACHE", "VRMBG_PROGRESS", "OCIO")


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without the variables that steer vrmbg, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env.update(extra)
    return env


def make_model(folder: str) -> str:
    """A tiny random model folder (config.json + model.safetensors); returns the folder."""
    init_random(folder, config="tiny", seed=0)
    return str(folder)


def make_plates(folder: str, frames: Iterable[int], *, name: str = "sh010.####.exr",
                size: tuple[int, int] = SIZE) -> str:
    """A half EXR plate sequence (ramp pixels, every frame different); returns the pattern."""
    os.makedirs(folder, exist_ok=True)
    return write_exr_sequence(folder, list(frames), name=name, size=size)


def make_other_plates(folder: str, frames: Iterable[int], *, name: str = "sh020.####.exr",
                      size: tuple[int, int] = SIZE) -> str:
    """A second shot whose pixels differ from `make_plates` (flipped and darker ramps)."""
    os.makedirs(folder, exist_ok=True)
    pattern = os.path.join(folder, name)
    width, height = size
    for frame in frames:
        pixels = ramp_rgb(height, width, frame)[::-1, ::-1] * 0.3
        write_exr(frame_file(pattern, frame), np.ascontiguousarray(pixels))
    return pattern


def frame_file(pattern: str, frame: int) -> str:
    """`pattern` (with `####`) for one frame."""
    return pattern.replace("####", f"{frame:04d}")


def render_args(plates: str, output: str, model: str, *extra: str,
                cache: str | None = None) -> list[str]:
    """Arguments of `vrmbg render` on the CPU with the test model."""
    args = ["render", plates, "-o", output, "--model", model, "--device", "cpu"]
    if cache is not None:
        args += ["--cache-dir", cache]
    return args + list(extra)


def run_cli(args: Sequence[str], capsys) -> tuple[int, str, str]:
    """Run `vrmbg` in-process; returns (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(args: Sequence[str], capsys) -> dict:
    """Run `vrmbg ... --json` in-process, demand exit 0, return the summary."""
    code, out, err = run_cli(list(args) + ["--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def run_process(args: Sequence[str], *, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m vrmbg.core ARGS` in a child process (text output captured)."""
    return subprocess.run([sys.executable, "-m", "vrmbg.core", *args], capture_output=True,
                          text=True, timeout=timeout, env=clean_env())


def read_frames(pattern: str, frames: Iterable[int]) -> dict[int, np.ndarray]:
    """Every frame's alpha as float32 (H, W)."""
    from vrmbg.core.io.mattes import read_matte

    return {f: read_matte(frame_file(pattern, f)) for f in frames}


def assert_same_mattes(expected: str, actual: str, frames: Iterable[int]) -> None:
    """Bit-exact equality of two matte sequences, frame by frame (names the first mismatch)."""
    want, got = read_frames(expected, frames), read_frames(actual, frames)
    for frame in want:
        a, b = want[frame], got[frame]
        assert a.shape == b.shape, f"frame {frame}: shape {b.shape} != {a.shape}"
        diff = float(np.abs(a - b).max())
        assert a.tobytes() == b.tobytes(), f"frame {frame}: max difference {diff}"


def exr_spec(path: str) -> oiio.ImageSpec:
    """The header of an EXR (first part)."""
    image = oiio.ImageInput.open(path)
    assert image is not None, oiio.geterror()
    try:
        return oiio.ImageSpec(image.spec())
    finally:
        image.close()


def exr_pixels(path: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Channel names and float32 pixels (H, W, C) of an EXR's data window."""
    image = oiio.ImageInput.open(path)
    assert image is not None, oiio.geterror()
    try:
        spec = image.spec()
        pixels = image.read_image(oiio.FLOAT)
        return tuple(spec.channelnames), np.asarray(pixels, dtype=np.float32)
    finally:
        image.close()


def frames_on_disk(folder: str, prefix: str = "sh010.") -> list[int]:
    """Frame numbers of the `prefix####.exr` files in `folder`."""
    frames = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if name.startswith(prefix) and name.endswith(".exr"):
            frames.append(int(name[len(prefix):-len(".exr")]))
    return sorted(frames)


def debris(root: str) -> list[str]:
    """Temp files under `root`: names containing '.tmp' or starting with '.'."""
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if ".tmp" in name or name.startswith("."):
                found.append(os.path.join(folder, name))
    return found


def all_files(root: str) -> list[str]:
    """Every file under `root` (relative paths), for 'nothing written' checks."""
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, _dirs, files in os.walk(root) for name in files)


def one_error_line(stderr: str) -> str:
    """The single `vrmbg: error:` line of stderr; fails on tracebacks or several lines."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(lines) == 1, stderr
    return lines[0]


@contextlib.contextmanager
def mounted_tmpfs(mount: Any, size: str = "2m") -> Iterator[Any]:
    """A small tmpfs mounted at the folder `mount` (made here), unmounted after; the test is
    skipped where mounting is not allowed (needs root and Linux)."""
    import pytest

    os.makedirs(mount, exist_ok=True)
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
