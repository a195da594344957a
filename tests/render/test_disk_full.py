"""A full disk: one clear line saying so (exit 5), no partial files, finished mattes kept, and
a resumed render (after space is freed) that completes exactly where it stopped."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections import namedtuple

import numpy as np
import pytest

from render_helpers import (FIRST, assert_same_mattes, debris, frames_on_disk, make_model,
                            mounted_tmpfs,
                            make_plates, one_error_line, read_frames, render_args, run_cli)
from vrmbg.core import fs as atomic
from vrmbg.core.io import exr_writer, mattes
from vrmbg.core.errors import EXIT_RETRY, OutputError

Usage = namedtuple("Usage", "total used free")


def usage_with_free(free: int):
    """A stand-in for shutil.disk_usage reporting `free` bytes left."""
    return lambda _folder: Usage(1 << 40, (1 << 40) - free, free)


# --------------------------------------------------------------------------- unit

def test_disk_full_error_only_when_the_disk_is_full(monkeypatch, tmp_path):
    target = str(tmp_path / "m.1001.exr")
    monkeypatch.setattr(atomic.shutil, "disk_usage", usage_with_free(4096))
    error = atomic.disk_full_error(target, "write pixels")  # no errno: judged by free space
    assert isinstance(error, OutputError) and error.exit_code == EXIT_RETRY
    assert "no space left on the device" in str(error) and target in str(error)
    assert atomic.disk_full_error(target, "write", code=errno.EROFS) is None  # read-only
    assert atomic.disk_full_error(target, "write", code=errno.EACCES) is None
    assert "quota" in str(atomic.disk_full_error(target, "write", code=errno.EDQUOT))
    monkeypatch.setattr(atomic.shutil, "disk_usage", usage_with_free(50 << 20))
    assert atomic.disk_full_error(target, "write pixels") is None
    assert atomic.disk_full_error(target, "write", code=errno.ENOSPC) is not None
    assert atomic.disk_full_error(target, "write pixels",
                                  reason="write failed: No space left on device") is not None


class FailingOutput:
    """An EXR writer that fails the way OpenImageIO does, naming the file it was given."""

    open_fails = False

    def __init__(self, path: str) -> None:
        self.path = path

    def open(self, path, spec):
        self.path = path
        return not self.open_fails

    def write_image(self, pixels):
        return False

    def geterror(self):
        return f'Failed OpenEXR write: Failed to write pixel data to image file "{self.path}".'

    def close(self):
        return True


def test_a_failed_matte_write_names_the_matte_not_a_temp_file(monkeypatch, tmp_path):
    monkeypatch.setattr(mattes, "exr_header_for", lambda spec: None)  # OpenImageIO writes
    monkeypatch.setattr(mattes.oiio.ImageOutput, "create", staticmethod(FailingOutput))
    target = tmp_path / "sh010.1001.exr"
    monkeypatch.setattr(atomic.shutil, "disk_usage", usage_with_free(50 << 20))
    with pytest.raises(OutputError) as roomy:
        mattes.write_matte(str(target), np.zeros((4, 6), np.float32))
    assert atomic.TEMP_MARKER not in str(roomy.value) and "sh010.1001.exr" in str(roomy.value)
    assert "no space" not in str(roomy.value)
    monkeypatch.setattr(atomic.shutil, "disk_usage", usage_with_free(0))
    with pytest.raises(OutputError) as full:
        mattes.write_matte(str(target), np.zeros((4, 6), np.float32))
    assert "no space left on the device" in str(full.value)
    assert os.listdir(tmp_path) == []  # no temp file, no matte
    monkeypatch.setattr(FailingOutput, "open_fails", True)  # e.g. a forbidden folder
    with pytest.raises(OutputError) as unopened:
        mattes.write_matte(str(target), np.zeros((4, 6), np.float32))
    assert "no space" not in str(unopened.value)  # a low disk is not called the reason


class FailingExrFile:
    """The OpenEXR library's file object failing as it does, after writing part of the file."""

    def __init__(self, header, channels, num_threads=-1) -> None:
        pass

    def write(self, path):
        with open(path, "wb") as partial:
            partial.write(b"v/1\x01" + b"\0" * 100)
        raise RuntimeError(f'Cannot write image file "{path}". No space left on device.')


def test_a_failed_openexr_write_falls_back_to_openimageio(monkeypatch, tmp_path):
    monkeypatch.setattr(exr_writer.OpenEXR, "File", FailingExrFile)
    monkeypatch.setattr(mattes, "exr_header_for", lambda spec: {})  # past the header check
    target = tmp_path / "sh010.1001.exr"
    alpha = np.linspace(0, 1, 24, dtype=np.float32).reshape(4, 6)
    mattes.write_matte(str(target), alpha, attributes={"frame": 1001})
    assert os.listdir(tmp_path) == ["sh010.1001.exr"]  # no temp file left beside it
    assert np.array_equal(mattes.read_matte(str(target)), alpha.astype(np.float16))


def test_when_both_writers_fail_the_matte_is_named_and_nothing_is_left(monkeypatch, tmp_path):
    monkeypatch.setattr(exr_writer.OpenEXR, "File", FailingExrFile)
    monkeypatch.setattr(mattes.oiio.ImageOutput, "create", staticmethod(FailingOutput))
    monkeypatch.setattr(mattes, "exr_header_for", lambda spec: {})  # past the header check
    monkeypatch.setattr(atomic.shutil, "disk_usage", usage_with_free(0))
    target = tmp_path / "sh010.1001.exr"
    with pytest.raises(OutputError) as full:
        mattes.write_matte(str(target), np.zeros((4, 6), np.float32))
    assert atomic.TEMP_MARKER not in str(full.value) and "sh010.1001.exr" in str(full.value)
    assert "no space left on the device" in str(full.value) and full.value.exit_code == EXIT_RETRY
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- a real full disk

@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only; skipped where mounting is not allowed), unmounted after."""
    with mounted_tmpfs(tmp_path / "disk", "2m") as mount:
        yield mount


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs is Linux")
def test_render_onto_a_full_disk_stops_cleanly_and_resumes(tmp_path, small_disk, capsys):
    frames = range(FIRST, FIRST + 24)
    plates = make_plates(str(tmp_path / "plates"), frames, size=(512, 256))
    model = make_model(str(tmp_path / "model"))
    output = str(small_disk / "sh010.####.exr")

    code, _, err = run_cli(render_args(plates, output, model), capsys)

    assert code == EXIT_RETRY  # a full disk: another host, or this one later, may succeed
    line = one_error_line(err)
    assert "no space left on the device" in line and str(small_disk) in line
    assert debris(str(small_disk)) == []  # no temp file anywhere, cache included
    finished = frames_on_disk(str(small_disk))
    assert finished and finished == list(range(FIRST, FIRST + len(finished)))
    assert len(finished) < 24
    kept = read_frames(output, finished)  # every finished matte reads back whole

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    code, _, err = run_cli(render_args(plates, output, model), capsys)
    assert code == 0, err
    assert frames_on_disk(str(small_disk)) == list(frames)
    again = read_frames(output, finished)
    assert all(np.array_equal(kept[f], again[f]) for f in finished)  # untouched by the resume
    straight = str(tmp_path / "straight" / "sh010.####.exr")
    code, _, err = run_cli(render_args(plates, straight, model), capsys)
    assert code == 0, err
    assert_same_mattes(straight, output, frames)  # as if the disk had never filled up


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs is Linux")
def test_a_read_only_disk_is_not_called_full(small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(OutputError) as error:
        mattes.write_matte(str(small_disk / "sh010.1001.exr"), np.zeros((1080, 2048), np.float32))
    assert "no space" not in str(error.value) and "sh010.1001.exr" in str(error.value)
    assert atomic.TEMP_MARKER not in str(error.value)
    with pytest.raises(OutputError) as state:
        atomic.atomic_write(str(small_disk / "state.npy"), lambda tmp: open(tmp, "wb").close())
    assert "no space" not in str(state.value)
