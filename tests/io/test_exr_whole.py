"""Whether an EXR is whole, read from its header and offset table (no pixel decode).

A matte cut short by a full disk keeps a valid header; it must never count as written, and
a re-run must never skip it as already there.
"""

from __future__ import annotations

import numpy as np
import OpenImageIO as oiio
import pytest

from vrmbg.core.io.exr_whole import is_whole

COMPRESSIONS = ["none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab"]


def _write(path, compression="zip", tile=0, channels=("A",), size=(61, 37)):
    spec = oiio.ImageSpec(size[0], size[1], len(channels), oiio.HALF)
    spec.channelnames = channels
    spec.attribute("compression", compression)
    if tile:
        spec.tile_width = spec.tile_height = tile
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    pixels = np.random.default_rng(1).random((size[1], size[0], len(channels)))
    assert out.write_image(pixels.astype(np.float16))
    out.close()
    return path.read_bytes()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_a_written_matte_is_whole_and_every_truncation_is_not(tmp_path, compression):
    data = _write(tmp_path / "m.exr", compression)
    assert is_whole(str(tmp_path / "m.exr"))
    cut = tmp_path / "cut.exr"
    for length in range(0, len(data), max(1, len(data) // 300)):
        cut.write_bytes(data[:length])
        assert not is_whole(str(cut)), length
    cut.write_bytes(data[:-1])
    assert not is_whole(str(cut))


def test_tiled_and_rgba_files_are_checked_too(tmp_path):
    data = _write(tmp_path / "t.exr", tile=16, channels=("R", "G", "B", "A"))
    assert is_whole(str(tmp_path / "t.exr"))
    (tmp_path / "cut.exr").write_bytes(data[:-10])
    assert not is_whole(str(tmp_path / "cut.exr"))


def test_a_full_length_file_whose_tail_is_zeros_is_not_whole(tmp_path):
    """Some file systems leave a hole of zeros where the write failed."""
    data = _write(tmp_path / "m.exr")
    holed = data[: len(data) // 3] + bytes(len(data) - len(data) // 3)
    (tmp_path / "holed.exr").write_bytes(holed)
    assert not is_whole(str(tmp_path / "holed.exr"))


def test_what_is_not_an_exr_is_not_whole(tmp_path):
    (tmp_path / "png.exr").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert not is_whole(str(tmp_path / "png.exr"))
    assert not is_whole(str(tmp_path / "missing.exr"))
