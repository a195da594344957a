"""FrameStepper reproduces the model card's reference loop.

The reference below is written independently of vrmbg.core.engine, the way the card does it:
8-bit RGB frames resized with OpenCV INTER_LINEAR to 1024x1024, /255, ImageNet normalisation,
a 6-channel numpy input [current, previous * previous prediction] (zeros on the first frame),
`model(x)[-1].sigmoid()`, and an OpenCV resize of the prediction back to the frame size.
Only the network module is shared.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vrmbg.core.engine.step import FrameStepper
from vrmbg.core.errors import InputError, UsageError
from vrmbg.core.model import init_random, load_model

CARD_RESOLUTION = 1024
TOLERANCE = 1e-3
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return init_random(tmp_path_factory.mktemp("card") / "tiny", "tiny", seed=0)


@pytest.fixture(scope="module")
def fp32_model(model_dir):
    return load_model(model_dir, device="cpu", precision="fp32")


def synthetic_frames(height: int, width: int, count: int) -> list[np.ndarray]:
    """8-bit sRGB frames: gradients, texture, noise and a disc that moves between frames."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(count):
        image = np.stack([xx / width * 255, yy / height * 255,
                          128 + 60 * np.sin(xx / 7 + t)], axis=-1)
        disc = (xx - width * (0.3 + 0.1 * t)) ** 2 + (yy - height * 0.5) ** 2 < (0.25 * height) ** 2
        image[disc] = (230, 40, 40)
        image += np.random.default_rng(t).normal(0.0, 8.0, image.shape)
        frames.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return frames


def card_loop(module: torch.nn.Module, frames: list[np.ndarray], *, size: int = CARD_RESOLUTION,
              float_resize: bool = False) -> list[np.ndarray]:
    """The card's loop, in numpy/OpenCV. float_resize resizes code/255 floats instead of uint8."""
    prev_image = prev_pred = None
    mattes = []
    for frame in frames:
        height, width = frame.shape[:2]
        if float_resize:
            image = cv2.resize(frame.astype(np.float32) / 255.0, (size, size),
                               interpolation=cv2.INTER_LINEAR)
        else:
            image = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
            image = image.astype(np.float32) / 255.0
        image = ((image - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
        if prev_image is None:
            prior = np.zeros_like(image)
        else:
            prior = prev_image * prev_pred
        x = np.concatenate([image, prior], axis=1)
        with torch.no_grad():
            pred = module(torch.from_numpy(x))[-1].sigmoid().numpy()
        mattes.append(cv2.resize(pred[0, 0], (width, height), interpolation=cv2.INTER_LINEAR))
        prev_image, prev_pred = image, pred
    return mattes


def stepper_loop(stepper: FrameStepper, frames: list[np.ndarray], *,
                 keep_state: bool = True) -> list[np.ndarray]:
    """FrameStepper driven the way the engine drives it, on code/255 float frames."""
    prev = prev_pred = None
    mattes = []
    for frame in frames:
        cur = stepper.prepare(frame.astype(np.float32) / 255.0)
        pred = stepper.step(cur, prev, prev_pred)
        mattes.append(stepper.to_plate(pred, *frame.shape[:2]))
        if keep_state:
            prev, prev_pred = cur, pred
    return mattes


def max_delta(a: list[np.ndarray], b: list[np.ndarray]) -> list[float]:
    return [float(np.abs(x - y).max()) for x, y in zip(a, b)]


def test_card_loop_parity_fp32(fp32_model):
    # 720 rows are upscaled and 1600 columns downscaled to 1024: both INTER_LINEAR directions
    frames = synthetic_frames(720, 1600, 3)
    stepper = FrameStepper(fp32_model, resolution=CARD_RESOLUTION)
    ours = stepper_loop(stepper, frames)
    card = card_loop(fp32_model.module, frames)
    deltas = max_delta(ours, card)
    print("card-loop max |dalpha| per frame (uint8 OpenCV resize):", deltas)
    assert max(deltas) <= TOLERANCE
    assert all(m.shape == (720, 1600) and m.dtype == np.float32 for m in ours)

    # The remaining difference is the card's uint8 rounding of the resized frame: resizing the
    # same code values as floats with OpenCV agrees with FrameStepper to float precision
    # (two frames, so the temporal state is included).
    card_float = card_loop(fp32_model.module, frames[:2], float_resize=True)
    float_deltas = max_delta(ours[:2], card_float)
    print("card-loop max |dalpha| per frame (float OpenCV resize):", float_deltas)
    assert max(float_deltas) <= 1e-5

    # The tolerance is meaningful: the second frame without the temporal state misses it.
    stateless = stepper_loop(stepper, frames[1:2], keep_state=False)
    assert max_delta(stateless, card[1:2])[0] > TOLERANCE


def test_prepare_is_opencv_inter_linear(fp32_model):
    stepper = FrameStepper(fp32_model, resolution=256)
    rng = np.random.default_rng(5)
    for height, width in ((97, 130), (600, 333), (256, 256)):
        rgb = rng.random((height, width, 3), dtype=np.float32)
        reference = (cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_LINEAR) - MEAN) / STD
        got = stepper.prepare(rgb)
        assert got.shape == (1, 3, 256, 256) and got.dtype == torch.float32
        np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), reference, atol=2e-5)


def test_first_frame_uses_zeros(fp32_model):
    stepper = FrameStepper(fp32_model)
    rgb = np.random.default_rng(1).random((64, 80, 3), dtype=np.float32)
    cur = stepper.prepare(rgb)
    first = stepper.step(cur, None, None)
    size = fp32_model.config.resolution
    zeros = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        direct = fp32_model.module(torch.cat([cur, zeros], dim=1))[-1].sigmoid()
    assert torch.equal(first, direct)
    later = stepper.step(cur, cur, torch.ones_like(first))
    assert not torch.equal(later, first)  # the prior does reach the network
    with pytest.raises(ValueError):
        stepper.step(cur, cur, None)


def test_state_keeps_the_model_dtype_bf16(model_dir):
    loaded = load_model(model_dir, device="cpu", precision="bf16")
    stepper = FrameStepper(loaded)
    rgb = np.random.default_rng(2).random((50, 70, 3), dtype=np.float32)
    cur = stepper.prepare(rgb)
    assert cur.dtype == torch.float32
    pred = stepper.step(cur, None, None)
    size = loaded.config.resolution
    assert pred.dtype == torch.bfloat16 and pred.shape == (1, 1, size, size)
    second = stepper.step(cur, cur, pred)
    assert second.dtype == torch.bfloat16
    alpha = stepper.to_plate(second, 50, 70)
    assert alpha.dtype == np.float32 and alpha.shape == (50, 70)


def test_steps_are_deterministic_on_cpu(fp32_model):
    stepper = FrameStepper(fp32_model)
    frames = synthetic_frames(90, 120, 2)
    assert all(np.array_equal(a, b) for a, b in
               zip(stepper_loop(stepper, frames), stepper_loop(stepper, frames)))


def test_to_plate_size_and_range(fp32_model):
    stepper = FrameStepper(fp32_model)
    size = fp32_model.config.resolution
    pred = torch.linspace(0, 1, size * size).reshape(1, 1, size, size)
    for height, width in ((size, size), (1080, 1920), (37, 53)):
        alpha = stepper.to_plate(pred, height, width)
        assert alpha.shape == (height, width) and alpha.dtype == np.float32
        assert alpha.flags["C_CONTIGUOUS"] and 0.0 <= alpha.min() and alpha.max() <= 1.0
    same = stepper.to_plate(pred, size, size)
    assert np.array_equal(same, pred[0, 0].numpy())
    expected = cv2.resize(pred[0, 0].numpy(), (53, 37), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(stepper.to_plate(pred, 37, 53), expected, atol=1e-5)


def test_bad_inputs(fp32_model):
    with pytest.raises(UsageError, match="multiple of 32"):
        FrameStepper(fp32_model, resolution=1000)
    stepper = FrameStepper(fp32_model)
    with pytest.raises(InputError, match="RGB"):
        stepper.prepare(np.zeros((10, 10), dtype=np.float32))
