"""The procedural shot generator: deterministic, exact soft alpha, files a pipeline can read."""

from __future__ import annotations

import os

import numpy as np
import OpenImageIO as oiio
import PyOpenColorIO as OCIO
import pytest

from vrmbg.core.demo import shot_files, synth


def _read(path: str) -> tuple[np.ndarray, oiio.ImageSpec]:
    buf = oiio.ImageBuf(path)
    assert not buf.has_error, buf.geterror()
    return buf.get_pixels(oiio.FLOAT), buf.spec()


def test_same_seed_same_pixels_other_seed_other_pixels():
    a = synth.generate_shot(11, frames=3, width=96, height=64)
    b = synth.generate_shot(11, frames=3, width=96, height=64)
    c = synth.generate_shot(12, frames=3, width=96, height=64)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.alpha, b.alpha)
    assert not np.array_equal(a.rgb, c.rgb)
    assert a.frames == (1001, 1002, 1003)
    assert a.rgb.shape == (3, 64, 96, 3) and a.alpha.shape == (3, 64, 96)
    assert a.rgb.dtype == np.float32 and a.alpha.dtype == np.float32


def test_alpha_is_a_soft_matte_in_range_and_the_objects_move():
    shots = [synth.generate_shot(seed, frames=4, width=128, height=128) for seed in range(6)]
    for shot in shots:
        assert shot.alpha.min() >= 0.0 and shot.alpha.max() <= 1.0
        assert (shot.alpha == 0.0).any() and (shot.alpha > 0.99).any()  # background and solid fg
        assert 0.01 < shot.alpha.mean() < 0.8
    partial = np.concatenate([((s.alpha > 0.02) & (s.alpha < 0.98)).ravel() for s in shots])
    assert partial.mean() > 0.005  # edges, motion blur and hair strands give fractional alpha
    assert any(np.abs(s.alpha[3] - s.alpha[0]).max() > 0.5 for s in shots)


def test_scene_linear_plates_have_hdr_values_and_convert_to_a_display_range():
    shot = synth.generate_shot(3, frames=2, width=64, height=64)
    assert np.isfinite(shot.rgb).all()
    assert shot.rgb.max() > 1.0  # specular highlights are scene-linear, above display white
    shown = synth.to_model_input(shot.rgb)
    assert shown.min() >= 0.0 and shown.max() <= 1.0
    # sRGB encoding lifts mid-tones: a linear 0.18 grey is shown near 0.46
    grey = synth.to_model_input(np.full((1, 1, 3), 0.18, np.float32))
    assert 0.4 < float(grey.mean()) < 0.52


def test_background_is_less_saturated_than_the_foreground():
    """The cue the demo model relies on survives the conversion to display values."""
    for seed in range(4):
        shot = synth.generate_shot(seed, frames=1, width=128, height=128, grain=False)
        shown = synth.to_model_input(shot.rgb)[0]
        chroma = shown.max(axis=-1) - shown.min(axis=-1)
        fg, bg = shot.alpha[0] > 0.99, shot.alpha[0] == 0.0
        assert chroma[fg].mean() > chroma[bg].mean() + 0.1


def test_written_exr_and_dpx_sequences_read_back(tmp_path):
    shot = synth.generate_shot(5, frames=3, width=80, height=48)
    files = shot_files.write_shot(shot, str(tmp_path), name="sh010", dpx_space="ACEScct")
    processor = OCIO.Config.CreateFromFile(synth.DEFAULT_CONFIG).getProcessor(
        "ACEScct", "ACEScg").getDefaultCPUProcessor()
    for i, frame in enumerate((1001, 1002, 1003)):
        plate, spec = _read(files.plate.replace("####", str(frame)))
        assert spec.format == oiio.HALF and list(spec.channelnames) == ["R", "G", "B"]
        assert np.array_equal(plate, shot.rgb[i].astype(np.float16).astype(np.float32))

        alpha, spec = _read(files.alpha.replace("####", str(frame)))
        assert list(spec.channelnames) == ["A"]
        assert np.array_equal(alpha[..., 0], shot.alpha[i])  # ground truth is stored exactly

        dpx_path = files.dpx.replace("####", str(frame))
        buf = oiio.ImageBuf(dpx_path)
        assert buf.spec().get_int_attribute("oiio:BitsPerSample") == 10
        codes = buf.get_pixels(oiio.UINT16).astype(np.int64) >> 6
        log = np.ascontiguousarray(codes / 1023.0, dtype=np.float32)
        processor.applyRGB(log.reshape(-1, 3))
        visible = (shot.rgb[i] > 0.02) & (shot.rgb[i] < 50.0)
        rel = np.abs(log - shot.rgb[i])[visible] / shot.rgb[i][visible]
        assert np.median(rel) < 0.01  # 10-bit log keeps scene-linear values to ~1 %
    names = sorted(os.listdir(tmp_path / "plate"))
    assert names == ["sh010.1001.exr", "sh010.1002.exr", "sh010.1003.exr"]


def test_training_clips_are_model_ready():
    clips = synth.iter_training_clips(1, frames=3, sizes=((64, 48),))
    rgb, alpha = next(clips)
    rgb2, _ = next(clips)
    assert rgb.shape == (3, 48, 64, 3) and alpha.shape == (3, 48, 64)
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert not np.array_equal(rgb, rgb2)


def _chroma(shot: synth.Shot) -> np.ndarray:
    shown = synth.to_model_input(shot.rgb)
    return shown.max(axis=-1) - shown.min(axis=-1)


def test_twins_shots_hold_a_look_alike_out_of_the_matte():
    """Two saturated subjects in the picture, one in the matte: the frame alone cannot say
    which, only a prior (or a keyframe) can."""
    def saturated_outside_the_matte(shot: synth.Shot) -> float:
        saturated = _chroma(shot) > 0.3
        return float((saturated & (shot.alpha < 0.01)).sum() / saturated.sum())

    for seed in range(1, 5):
        twins = synth.generate_shot(seed, frames=2, width=128, height=96, grain=False,
                                    kind="twins")
        plain = synth.generate_shot(seed, frames=2, width=128, height=96, grain=False)
        assert twins.kind == "twins" and 0.0 <= twins.alpha.min() and twins.alpha.max() <= 1.0
        # the look-alike: as saturated as a subject, alpha 0
        assert saturated_outside_the_matte(twins) > saturated_outside_the_matte(plain) + 0.2
        assert (twins.alpha > 0.99).sum() > 0.02 * twins.alpha.size  # the subject is matted


def test_camouflaged_subject_fades_into_the_backdrop_and_stays_in_the_matte():
    shot = synth.generate_shot(7, frames=8, width=128, height=96, grain=False,
                               kind="camouflage")
    chroma = _chroma(shot)
    solid = [shot.alpha[t] > 0.99 for t in range(8)]
    assert all(mask.sum() > 50 for mask in solid)  # in the matte on every frame
    first = chroma[0][solid[0]].mean()
    faded = min(chroma[t][solid[t]].mean() for t in range(1, 8))
    assert faded < 0.6 * first


def test_training_clips_mix_the_requested_kinds():
    clips = synth.iter_training_clips(1, frames=2, sizes=((48, 32),),
                                      kinds={"plain": 1.0, "twins": 1.0}, with_kind=True)
    kinds = {next(clips)[2] for _ in range(12)}
    assert kinds == {"plain", "twins"}
    with pytest.raises(ValueError):
        synth.generate_shot(1, frames=1, kind="decoy")


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        synth.generate_shot(1, frames=0)
