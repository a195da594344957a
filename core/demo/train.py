"""Training of the bundled demo model on generated shots, on CPU (`vrmbg model train-demo`).

The model is trained the way it is run: autoregressively. Each training clip is a short shot
(ACEScg plates converted by OCIO to the model's sRGB input space, exactly as the pipeline does),
resized to the model's native size with the card's bilinear resize and ImageNet-normalised. Frame
t's input is `cat[norm(rgb_t), norm(rgb_{t-1}) * alpha_{t-1}]`, zeros on a clip's first frame,
where alpha_{t-1} is the model's own previous prediction (detached) or, with a probability that
decays during training (scheduled sampling), a perturbed ground truth. Loss on alpha: BCE + L1 +
soft IoU, plus BCE on the coarse side outputs the network returns in training mode.

The result is demo-only: it has seen synthetic shots and nothing else.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..fs import atomic_write_text
from ..engine.step import IMAGENET_MEAN, IMAGENET_STD, resize_bilinear
from . import synth
from .train_settings import TrainSettings

_MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
# Plate sizes clips are rendered at before the resize to the native size (squashed like the
# pipeline squashes real plates), so the model copes with 16:9, 4:3, portrait and square plates.
CLIP_SIZES = ((256, 256), (384, 216), (320, 240), (224, 320), (320, 320))
# The tiny preset without the deformable ASPP branches: on CPU their pure-torch backward pass
# costs several times the rest of a training step, and the demo task does not need them.
DEMO_CHANGES = {"aspp_kernels": ()}
HELD_OUT_SEEDS = (424242, 424243, 424244, 424245, 424246, 424247)  # never used for training


# ----------------------------------------------------------------------------------------------
# Tensors the way the pipeline makes them


def resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """The card's resize to a square, exactly as the pipeline's frame stepper does it."""
    return resize_bilinear(image, size, size)


def normalise(rgb01: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation of (N, 3, H, W) RGB in [0, 1]."""
    return (rgb01 - _MEAN) / _STD


def clip_tensors(rgb01: np.ndarray, alpha: np.ndarray, size: int) -> tuple[torch.Tensor,
                                                                             torch.Tensor]:
    """(T,H,W,3) [0,1] RGB and (T,H,W) alpha -> normalised (T,3,R,R) and (T,1,R,R) at size R."""
    rgb = torch.from_numpy(np.ascontiguousarray(rgb01)).permute(0, 3, 1, 2)
    a = torch.from_numpy(np.ascontiguousarray(alpha))[:, None]
    return normalise(resize(rgb, size)).contiguous(), resize(a, size).clamp(0, 1).contiguous()


# ----------------------------------------------------------------------------------------------
# Data


class ClipPool:
    """A pool of rendered clips at the native size; sampled with flips and time reversal."""

    def __init__(self, settings: TrainSettings) -> None:
        self.settings = settings
        self.source: Iterator[tuple[np.ndarray, np.ndarray]] = synth.iter_training_clips(
            settings.seed, frames=settings.clip_frames, sizes=CLIP_SIZES)
        self.rng = np.random.default_rng([settings.seed, 0xB00])
        self.clips = [self._next() for _ in range(settings.pool)]
        self.drawn = 0

    def _next(self) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, alpha = next(self.source)
        return clip_tensors(rgb, alpha, self.settings.resolution)

    def refresh(self) -> None:
        """Replace one clip (round robin) with a freshly rendered one."""
        self.clips[self.drawn % len(self.clips)] = self._next()
        self.drawn += 1

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 3, R, R) normalised RGB and (B, T, 1, R, R) alpha."""
        picks = self.rng.choice(len(self.clips), self.settings.batch, replace=False)
        rgbs, alphas = [], []
        for i in picks:
            rgb, alpha = self.clips[int(i)]
            if self.rng.random() < 0.5:
                rgb, alpha = rgb.flip(-1), alpha.flip(-1)
            if self.rng.random() < 0.3:
                rgb, alpha = rgb.flip(0), alpha.flip(0)
            rgbs.append(rgb)
            alphas.append(alpha)
        return torch.stack(rgbs), torch.stack(alphas)


def perturb_prior(alpha: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A ground-truth prior made imperfect like a real prediction: shifted, blurred, eroded."""
    out = alpha
    dy, dx = (int(v) for v in rng.integers(-3, 4, 2))
    out = torch.roll(out, shifts=(dy, dx), dims=(-2, -1))
    if rng.random() < 0.5:
        out = F.avg_pool2d(out, 5, stride=1, padding=2, count_include_pad=False)
    if rng.random() < 0.3:
        k = int(rng.choice([3, 5]))
        pooled = F.max_pool2d(out if rng.random() < 0.5 else -out, k, stride=1, padding=k // 2)
        out = pooled.abs()
    return out.clamp(0, 1)


# ----------------------------------------------------------------------------------------------
# Loss


def alpha_loss(outputs: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """BCE + L1 + soft IoU on the full-size logits, plus BCE on the coarse side outputs."""
    logits = outputs[-1]
    pred = logits.sigmoid()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    l1 = (pred - target).abs().mean()
    inter = (pred * target).sum(dim=(1, 2, 3))
    union = (pred + target - pred * target).sum(dim=(1, 2, 3))
    iou = (1.0 - (inter + 1.0) / (union + 1.0)).mean()
    side = logits.new_zeros(())
    for coarse in outputs[:-1]:
        if coarse.shape[1] == 1:
            small = F.adaptive_avg_pool2d(target, coarse.shape[-2:])
            side = side + 0.1 * F.binary_cross_entropy_with_logits(coarse, small)
    return bce + l1 + iou + side


# ----------------------------------------------------------------------------------------------
# Evaluation (same maths as the pipeline: OCIO, half plates, card resize both ways)


def evaluate(model: torch.nn.Module, seeds: tuple[int, ...] = HELD_OUT_SEEDS, *, frames: int = 12,
             size: tuple[int, int] = (384, 216), resolution: int = 192) -> dict[str, float]:
    """Mean IoU (alpha > 0.5) and mean absolute alpha error on held-out generated shots."""
    was_training = model.training
    model.eval()
    ious, maes = [], []
    with torch.no_grad():
        for seed in seeds:
            shot = synth.generate_shot(seed, frames=frames, width=size[0], height=size[1])
            rgb01 = synth.to_model_input(shot.rgb.astype(np.float16).astype(np.float32))
            cur_all, _ = clip_tensors(rgb01, shot.alpha, resolution)
            prev = pred = None
            for t in range(frames):
                cur = cur_all[t:t + 1]
                prior = torch.zeros_like(cur) if prev is None else prev * pred
                pred = model(torch.cat([cur, prior], 1))[-1].sigmoid()
                prev = cur
                alpha = F.interpolate(pred, size=(size[1], size[0]), mode="bilinear",
                                      align_corners=False)[0, 0].numpy()
                gt = shot.alpha[t]
                inter = np.logical_and(alpha > 0.5, gt > 0.5).sum()
                union = np.logical_or(alpha > 0.5, gt > 0.5).sum()
                ious.append(float(inter) / max(float(union), 1.0))
                maes.append(float(np.abs(alpha - gt).mean()))
    model.train(was_training)
    return {"iou": float(np.mean(ious)), "mae": float(np.mean(maes))}


# ----------------------------------------------------------------------------------------------
# Training


def build_model(settings: TrainSettings):
    """A fresh VRMBGNet with the tiny preset at the requested native resolution."""
    from ..model.config import ModelConfig
    from ..model.network import VRMBGNet

    config = ModelConfig.preset("tiny").replace(
        name="demo", resolution=settings.resolution, **DEMO_CHANGES,
        extra={"purpose": "demo only: trained on synthetic shots, not real footage",
               "trained_with": "vrmbg model train-demo"})
    torch.manual_seed(settings.seed)
    return VRMBGNet(config), config


def load_weights(model: torch.nn.Module, folder: str) -> None:
    """Start from the weights of an earlier run (same architecture), strictly."""
    from safetensors.torch import load_file

    from ..errors import ModelError

    path = os.path.join(folder, "model.safetensors")
    try:
        model.load_state_dict(load_file(path), strict=True)
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"cannot start from these weights: {str(exc).splitlines()[0]}",
                         path=path) from None


def teacher_probability(progress: float) -> float:
    """Scheduled sampling: chance of feeding the (perturbed) ground truth as the prior."""
    return max(0.15, 0.9 - 1.1 * progress)


def learning_rate(settings: TrainSettings, progress: float) -> float:
    """Short warm-up, then cosine decay to 2% of the peak."""
    warm = min(1.0, progress / 0.03)
    return settings.lr * warm * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


class Clock:
    """Progress through the run, by steps when a step count is given, else by wall time."""

    def __init__(self, settings: TrainSettings) -> None:
        self.settings = settings
        self.start = time.monotonic()
        self.steps = 0

    def progress(self) -> float:
        if self.settings.steps:
            return self.steps / self.settings.steps
        return (time.monotonic() - self.start) / (self.settings.minutes * 60.0)

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def train_clip_batch(model, optimiser, rgb: torch.Tensor, alpha: torch.Tensor,
                     p_teacher: float, rng: np.random.Generator) -> float:
    """One autoregressive pass over a batch of clips: one optimiser step per frame."""
    batch, frames = rgb.shape[:2]
    pred = None
    total = 0.0
    for t in range(frames):
        cur = rgb[:, t]
        if t == 0:
            prior = torch.zeros_like(cur)
        else:
            teacher = torch.from_numpy(rng.random(batch) < p_teacher).view(batch, 1, 1, 1)
            gt_prior = perturb_prior(alpha[:, t - 1], rng)
            prior = rgb[:, t - 1] * torch.where(teacher, gt_prior, pred)
        outputs = model(torch.cat([cur, prior], 1))
        loss = alpha_loss(outputs, alpha[:, t])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        optimiser.step()
        pred = outputs[-1].detach().sigmoid()
        total += float(loss.detach())
    return total / frames


def train(settings: TrainSettings, log=print) -> dict:
    """Run the training; saves the model (and its card) into settings.out; returns a summary."""
    from ..model.loader import save_model

    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng([settings.seed, 0x7EAC])
    model, config = build_model(settings)
    if settings.init:
        load_weights(model, settings.init)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    log(f"train-demo: rendering {settings.pool} clips of {settings.clip_frames} frames ...")
    pool = ClipPool(settings)
    clock = Clock(settings)
    log(f"train-demo: training {sum(p.numel() for p in model.parameters())} parameters at "
        f"{settings.resolution}px for "
        + (f"{settings.steps} steps" if settings.steps else f"{settings.minutes:g} minutes"))
    history, losses, last_save, batches = [], [], clock.elapsed(), 0
    while clock.progress() < 1.0:
        progress = clock.progress()
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(settings, progress)
        rgb, alpha = pool.batch()
        losses.append(train_clip_batch(model, optimiser, rgb, alpha,
                                       teacher_probability(progress), rng))
        clock.steps += rgb.shape[1]
        batches += 1
        if batches % max(1, settings.refresh) == 0:
            pool.refresh()
        if batches % 25 == 0:
            log(f"train-demo: {clock.elapsed() / 60:5.1f} min  steps {clock.steps:5d}  "
                f"loss {np.mean(losses[-25:]):.4f}  lr {optimiser.param_groups[0]['lr']:.2e}  "
                f"teacher {teacher_probability(progress):.2f}  clips {pool.drawn + settings.pool}")
        if clock.elapsed() - last_save > 300:
            metrics = evaluate(model, resolution=settings.resolution, seeds=HELD_OUT_SEEDS[:2])
            history.append({"minutes": round(clock.elapsed() / 60, 2), "steps": clock.steps,
                            **{k: round(v, 4) for k, v in metrics.items()}})
            log(f"train-demo: held-out check {history[-1]}")
            save_model(model.eval(), config, settings.out)
            model.train()
            last_save = clock.elapsed()
    model.eval()
    train_minutes = clock.elapsed() / 60.0
    held_out = evaluate(model, resolution=settings.resolution)
    train_fit = evaluate(model, resolution=settings.resolution,
                         seeds=tuple(settings.seed * 1_000_000 + k for k in range(4)))
    save_model(model, config, settings.out)
    summary = {"settings": settings.__dict__, "steps": clock.steps, "clips_rendered":
               pool.drawn + settings.pool, "train_minutes": round(train_minutes, 2),
               "held_out": held_out, "train": train_fit, "history": history,
               "final_loss": float(np.mean(losses[-25:])) if losses else None,
               "parameters": sum(p.numel() for p in model.parameters())}
    write_model_card(settings.out, summary)
    log(f"train-demo: done in {train_minutes:.1f} min; held-out IoU {held_out['iou']:.3f}, "
        f"train IoU {train_fit['iou']:.3f}; saved to {settings.out}")
    return summary


# ----------------------------------------------------------------------------------------------
# Model card


def write_model_card(folder: str, summary: dict, quality: dict | None = None) -> str:
    """Write MODEL_CARD.md (demo-only notice, how it was trained, measured quality)."""
    s = summary["settings"]
    stages = [*summary.get("base_stages", []), summary]
    lines = [
        "# VRMBG demo model (demo only)",
        "",
        "**This model is for demonstrations and tests only.** It was trained on procedurally",
        "generated synthetic shots (saturated, textured shapes with hair strands and wires moving",
        "over defocused, low-contrast backgrounds; see `vrmbg/core/demo/synth.py`), never on real",
        "footage. It does not know what a person, an animal or a product is and will give",
        "meaningless mattes on real plates. For production use the real VRMBG-3.0 weights.",
        "",
        "## Architecture",
        f"The built-in VRMBG network (BiRefNet family): the `tiny` preset without the "
        f"deformable ASPP branches (`aspp_kernels: []`), native resolution "
        f"{s['resolution']}x{s['resolution']}, 6 input channels (current frame + previous frame "
        f"x previous alpha), {summary['parameters']:,} parameters, fp32 safetensors. "
        f"`vrmbg demo` and `--model demo` run it at its native size by default.",
        "",
        "## Training",
        *[line for i, stage in enumerate(stages) for line in _stage_lines(stage, i, len(stages))],
        "- Autoregressive like inference: input `cat[norm(rgb_t), norm(rgb_{t-1}) * alpha_{t-1}]`, "
        "zeros on a clip's first frame; the prior is the model's own detached prediction or, "
        "with a probability decaying from 0.9 to 0.15 (scheduled sampling), a perturbed "
        "ground truth.",
        "- Inputs exactly as the pipeline builds them: ACEScg plates stored as half, OCIO "
        "(`ocio://studio-config-latest`) to 'sRGB Encoded Rec.709 (sRGB)', clamped to [0, 1], "
        "bilinear resize (no antialias), ImageNet normalisation.",
        "- Loss: BCE + L1 + soft IoU on alpha, BCE on the coarse side outputs; AdamW, "
        "cosine learning rate.",
        "- A `--minutes` run follows the wall clock (its step count and schedules depend on "
        "the machine's speed); `--steps N` gives a run that depends only on the seed.",
        "",
        "## Measured quality (held-out synthetic shots, seeds never used in training)",
        f"- In-training evaluation (6 shots, 12 frames, 384x216): mean IoU "
        f"{summary['held_out']['iou']:.3f}, mean |alpha error| {summary['held_out']['mae']:.4f}; "
        f"on training shots: IoU {summary['train']['iou']:.3f}.",
    ]
    if quality:
        lines.append("- Full pipeline (`tests/benchmarks/quality_bench.py`): "
                     + ", ".join(f"{k} {v}" for k, v in quality.items()))
    lines += ["", "## Training record", "", "Held-out checks during training, then the whole "
              "run summary (read back by `quality_bench.py --update-card`).", "",
              "```json", json.dumps(summary, indent=1, default=str), "```", ""]
    path = os.path.join(folder, "MODEL_CARD.md")
    atomic_write_text(path, "\n".join(lines))
    return path


def _stage_lines(stage: dict, index: int, count: int) -> list[str]:
    """Model-card lines for one training run (stage `index` of `count`)."""
    s = stage["settings"]
    out = "" if index == count - 1 else " --out stage1"
    init = " --init stage1" if s.get("init") else ""
    budget = f"--steps {s['steps']}" if s["steps"] else f"--minutes {s['minutes']:g}"
    command = (f"vrmbg model train-demo {budget} --seed {s['seed']} "
               f"--resolution {s['resolution']}{init}{out}")
    label = f"Stage {index + 1}: " if count > 1 else ""
    return [
        f"- {label}`{command}` (CPU, {s['threads']} threads): {stage['steps']} optimiser steps "
        f"of {s['batch']} frames on {stage['clips_rendered']} generated clips of "
        f"{s['clip_frames']} frames (seed {s['seed']}), {stage['train_minutes']:.1f} minutes "
        f"of wall time; held-out IoU after it {stage['held_out']['iou']:.3f}.",
    ]


def read_training_summary(folder: str) -> dict:
    """The run summary stored in a model card by write_model_card (ValueError if absent)."""
    with open(os.path.join(folder, "MODEL_CARD.md"), encoding="utf-8") as handle:
        text = handle.read()
    start = text.find("```json\n")
    end = text.find("\n```", start + 8)
    if start < 0 or end < 0:
        raise ValueError("the model card holds no training record")
    return json.loads(text[start + 8:end])
