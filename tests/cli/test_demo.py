"""End to end with the bundled demo model: a correct pipeline gives good mattes, a wrong one not.

The demo model was trained on generated shots converted ACEScg -> sRGB by OCIO, so its mattes
on a held-out generated shot measure the pipeline: plates read, colour converted, resized,
stepped through the temporal cache and written back.
"""

from __future__ import annotations

import json
import os

import numpy as np
import OpenImageIO as oiio
import pytest

from vrmbg.core.cli import main
from vrmbg.core.cli.demo import render_mattes
from vrmbg.core.demo import report, shot_files, synth

SEEDS = (31337, 31338, 31339, 31340)  # held out: training used shot seeds >= 1,000,000
# Issue 6: mean IoU >= 0.85 on held-out shots. Measured (fp32, CPU): 0.913 on SEEDS, 0.954 on
# the DPX shot, 0.964 on the `vrmbg demo` shot (default precision, bf16 on CPU).
IOU_FLOOR = 0.85
FRAMES, WIDTH, HEIGHT = 6, 320, 180


class LinearWithoutOCIO:
    """The colour bug the test must catch: scene-linear values handed to the model as they are."""

    identity = "colour/test|no conversion"

    def describe(self) -> str:
        return "none (scene-linear fed as is)"

    def to_model(self, rgb: np.ndarray, threads: int = 0) -> np.ndarray:
        return np.clip(np.nan_to_num(rgb, nan=0.0), 0.0, 1.0).astype(np.float32)

    def convert(self, rgb: np.ndarray, threads: int = 0) -> tuple[np.ndarray, int]:
        return self.to_model(rgb), 0


def _mean_quality(shots, cache: str, **kwargs) -> dict[str, float]:
    """Mean IoU, SAD and stability over the held-out shots rendered through the pipeline."""
    figures = []
    for shot, files in shots:
        out = render_mattes(files.plate, cache=cache, precision="fp32", log=lambda _m: None,
                            **kwargs)
        assert len(out["mattes"]) == FRAMES
        figures.append(report.quality(out["mattes"], list(shot.alpha)))
    return {k: float(np.mean([f[k] for f in figures])) for k in ("iou", "sad", "stability")}


@pytest.fixture(scope="module")
def held_out_shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shots")
    shots = []
    for seed in SEEDS:
        shot = synth.generate_shot(seed, frames=FRAMES, width=WIDTH, height=HEIGHT)
        shots.append((shot, shot_files.write_shot(shot, str(folder / str(seed)), name="sh010")))
    return shots


@pytest.fixture(scope="module")
def correct(held_out_shots, tmp_path_factory):
    return _mean_quality(held_out_shots, str(tmp_path_factory.mktemp("cache")))


def test_demo_model_through_the_pipeline_reaches_the_floor(correct):
    assert correct["iou"] >= IOU_FLOOR


def test_temporal_model_is_more_stable_than_per_frame_inference(held_out_shots, correct):
    """Issue 6: the temporal prior must buy stability on static regions over per-frame mattes.

    Measured (fp32, CPU): temporal 0.00201 vs per-frame 0.00219 mean |delta alpha| on these shots;
    a pipeline that dropped the prior would give equal figures and fail the strict inequality.
    """
    per_frame = [report.quality(report.per_frame_mattes(files.plate), list(shot.alpha))
                 for shot, files in held_out_shots]
    per_frame_stability = float(np.mean([q["stability"] for q in per_frame]))
    assert 0.0 < correct["stability"] < per_frame_stability
    # the per-frame mattes are good mattes (same model and colour path), just less stable
    assert float(np.mean([q["iou"] for q in per_frame])) >= IOU_FLOOR


def test_linear_plates_without_the_ocio_conversion_lower_iou(held_out_shots, correct, tmp_path):
    wrong = _mean_quality(held_out_shots, str(tmp_path / "cache"),
                          colour_override=LinearWithoutOCIO())
    assert wrong["iou"] < correct["iou"] - 0.05
    assert wrong["sad"] > correct["sad"] * 1.3


def test_dpx_log_plates_with_their_colour_space_work_too(tmp_path):
    shot = synth.generate_shot(SEEDS[0] + 100, frames=4, width=WIDTH, height=HEIGHT)
    files = shot_files.write_shot(shot, str(tmp_path), name="sh020", dpx_space="ACEScct")
    out = render_mattes(files.dpx, input_space="ACEScct", cache=str(tmp_path / "cache"),
                        precision="fp32", log=lambda _m: None)
    assert report.quality(out["mattes"], list(shot.alpha))["iou"] >= IOU_FLOOR


def test_vrmbg_demo_writes_a_contact_sheet_and_a_report(tmp_path, capsys):
    outdir = tmp_path / "demo"
    code = main(["demo", str(outdir), "--frames", "5", "--size", "192x108", "--seed", "5"])
    assert code == 0
    printed = capsys.readouterr().out
    assert str(outdir / "contact_sheet.png") in printed

    with open(outdir / "report.json", encoding="utf-8") as handle:
        data = json.load(handle)
    assert data["frames"] == 5 and data["frame_range"] == "1001-1005"
    assert 0.0 <= data["quality"]["iou"] <= 1.0 and data["quality"]["iou"] >= IOU_FLOOR
    assert data["seconds_per_frame"] > 0
    mattes = sorted(os.listdir(os.path.dirname(data["paths"]["mattes"])))
    assert [m for m in mattes if m.endswith(".exr")][-1].endswith("1005.exr")

    sheet = oiio.ImageBuf(data["paths"]["contact_sheet"])
    assert not sheet.has_error
    # 5 rows of 108 px and 4 columns of 192 px (plate, matte, composite, truth) with gaps
    assert sheet.spec().height >= 5 * 108 and sheet.spec().width >= 4 * 192


def test_bad_demo_arguments_are_usage_errors(tmp_path, capsys):
    assert main(["demo", str(tmp_path), "--size", "big"]) == 2
    assert "--size" in capsys.readouterr().err
