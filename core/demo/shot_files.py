"""Writing a generated shot as plate files, as a production plate would arrive: ACEScg half
EXR, its ground-truth alpha as float EXR, and optionally 10-bit log DPX.

Every image is written by OpenImageIO through `fs.atomic_write` (temp file, then rename), and
its folders are made by `fs.make_folder`: like every other file vrmbg writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import OpenImageIO as oiio

from ..errors import OutputError, library_text
from ..fs import atomic_write, make_folder
from .synth import DEFAULT_CONFIG, WORKING_SPACE, Shot, convert


def _write_image(path: str, pixels: np.ndarray, fmt: str, *, bits: int = 0,
                 attrs: dict[str, object] | None = None) -> None:
    """Write one image atomically (temp file in the same folder, then rename)."""
    h, w = pixels.shape[:2]
    nch = 1 if pixels.ndim == 2 else pixels.shape[2]
    spec = oiio.ImageSpec(w, h, nch, fmt)
    spec.channelnames = ("A",) if nch == 1 else ("R", "G", "B", "A")[:nch]
    if nch == 1:
        spec.alpha_channel = 0
    if bits:
        spec.attribute("oiio:BitsPerSample", bits)
    if path.endswith(".exr"):
        spec.attribute("compression", "zip")
    for key, value in (attrs or {}).items():
        spec.attribute(key, value)

    def write(tmp: str) -> None:
        out = oiio.ImageOutput.create(tmp)
        if out is None or not out.open(tmp, spec):
            raise OutputError(f"cannot write image: {library_text(oiio.geterror)}", path=path)
        # OIIO needs (H, W, C): a 2-D array is misread (garbage pixels), so add the axis.
        ok = out.write_image(np.ascontiguousarray(pixels.reshape(h, w, nch)))
        out.close()
        if not ok:
            raise OutputError(f"cannot write image: {library_text(out.geterror)}", path=path)

    atomic_write(path, write)


@dataclass(frozen=True)
class ShotFiles:
    """Where a written shot lives: `####` patterns for the plate, ground truth and DPX."""

    plate: str  # ACEScg half EXR
    alpha: str  # ground-truth alpha, float EXR, channel "A"
    dpx: str  # 10-bit log DPX, or "" when not written
    dpx_space: str
    frames: tuple[int, ...]


def write_shot(shot: Shot, folder: str, *, name: str = "synth", dpx_space: str = "",
               config: str = DEFAULT_CONFIG) -> ShotFiles:
    """Write a shot as EXR sequences (and 10-bit DPX in `dpx_space`, e.g. 'ACEScct').

    plate/NAME.####.exr (ACEScg, half), gt/NAME_alpha.####.exr (float, channel A), and with
    `dpx_space`: dpx/NAME.####.dpx holding OCIO's encoding of the plate in that space.
    """
    plate_dir, gt_dir = os.path.join(folder, "plate"), os.path.join(folder, "gt")
    dpx_dir = os.path.join(folder, "dpx")
    for d in (plate_dir, gt_dir) + ((dpx_dir,) if dpx_space else ()):
        try:
            make_folder(d)
        except OSError as exc:
            raise OutputError(f"cannot create folder: {exc.strerror}", path=d) from None
    files = ShotFiles(plate=os.path.join(plate_dir, f"{name}.####.exr"),
                      alpha=os.path.join(gt_dir, f"{name}_alpha.####.exr"),
                      dpx=os.path.join(dpx_dir, f"{name}.####.dpx") if dpx_space else "",
                      dpx_space=dpx_space, frames=shot.frames)
    common = {"vrmbg:synth_seed": int(shot.seed), "FramesPerSecond": 24.0}
    for i, frame in enumerate(shot.frames):
        num = f"{frame:04d}"
        attrs = dict(common, **{"oiio:ColorSpace": WORKING_SPACE, "vrmbg:frame": frame})
        _write_image(files.plate.replace("####", num), shot.rgb[i].astype(np.float16), "half",
                     attrs=attrs)
        _write_image(files.alpha.replace("####", num), shot.alpha[i], "float",
                     attrs={"vrmbg:frame": frame, "vrmbg:synth_seed": int(shot.seed)})
        if dpx_space:
            log = np.clip(convert(shot.rgb[i], WORKING_SPACE, dpx_space, config), 0.0, 1.0)
            codes = np.round(log * 1023.0).astype(np.uint16)
            _write_image(files.dpx.replace("####", num), (codes << 6) | (codes >> 4), "uint16",
                         bits=10)
    return files
