"""The GPU paths measured on a real GPU (issue 27); a quick dry run of the same code on a CPU.

Writes one JSON object to `$OUT/gpu_check.json` (or `--out`), rewritten as each section ends
so a run cut short still leaves its results, and prints it at the end. The device comes first.

Sections (`--sections 1,2,3,4`), each in a child process of its own with a time limit
(`--section-seconds`), inside an overall budget (`--budget-seconds`, 270 s on a GPU) that
starts after the model folders and plates are written (up to 2 minutes; about 25 s there):

1. The full network (random weights, `full` config) at 1024²: fp16 and bf16, channels_last
   and not: ms per frame, peak GPU memory, where the time goes (blocks, the top kernels, the
   deformable convolutions alone), CUDA graphs; torch.compile runs last, with what is left
   of the budget (compilation can take minutes).
2. Exactness: a 12-frame chain through the engine run twice, and a jump (frames 1-6 in one
   process, 7-12 continued from the cache in another) against the straight run, under
   torch's default, cuDNN's deterministic, torch's deterministic and cuDNN's benchmark modes.
3. The device colour path against the OCIO CPU processor on 2K and 4K plates.
4. The engine end to end on generated 2K and 4K EXR plates with 1/2/4/8 readers: frames per
   second, host CPU per frame, how busy the GPU is.

Without CUDA (or with `--dry-run`) the same code runs on the CPU at small sizes with the `tiny`
config, bf16/fp32 instead of fp16/bf16, and torch.compile's `aot_eager` backend; only the CUDA
graphs have nothing to run there.

    python tests/benchmarks/gpu_check.py [--dry-run] [--sections 1,2,3,4] [--out PATH]
                                         [--section-seconds 60] [--budget-seconds 270]
                                         [--size 1024] [--plates 2048x1080,4096x2160]

On the lent GPU machine (no package index there), with the wheels that
`tests/benchmarks/gpu_wheels.sh` downloads into `gpu_wheels/`: see that script for the command.
Runs from the source tree too: when `vrmbg` is not installed, `vrmbg.core` and `vrmbg.plugin`
are mapped onto the repository's `core/` and `plugin/` folders (pyproject's package-dir).
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from dataclasses import asdict, dataclass
from typing import Any, Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as engine_bench: before torch loads

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIRST = 1001
sys.path.insert(0, HERE)  # engine_bench, model_bench


def ensure_vrmbg() -> str:
    """Import `vrmbg` as installed, or map `vrmbg.core`/`vrmbg.plugin` onto the source tree
    (pyproject.toml's package-dir) when it is not installed. Returns where it came from."""
    if importlib.util.find_spec("vrmbg") is None:
        package = types.ModuleType("vrmbg")
        package.__path__ = []  # a namespace with only the mapped sub-packages
        sys.modules["vrmbg"] = package
        for name in ("core", "plugin"):
            folder = os.path.join(REPO, name)
            spec = importlib.util.spec_from_file_location(
                f"vrmbg.{name}", os.path.join(folder, "__init__.py"),
                submodule_search_locations=[folder])
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            setattr(package, name, module)
            spec.loader.exec_module(module)
        return f"source tree {REPO} (import shim)"
    import vrmbg.core

    return f"installed: {os.path.dirname(vrmbg.core.__file__)}"


VRMBG_FROM = ensure_vrmbg()


# ============================================================================ plumbing

def write_json(path: str, data: Any) -> None:
    """Write `data` as JSON atomically (a reader never sees half a file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temp = f"{path}.tmp{os.getpid()}"
    with open(temp, "w") as handle:
        json.dump(data, handle, indent=1, default=str)
    os.replace(temp, path)


def read_json(path: str) -> dict:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


class Part:
    """A child process's results: saved after every step, so a kill keeps what was done."""

    def __init__(self, path: str, deadline: float) -> None:
        self.path, self.deadline, self.data = path, deadline, {}

    def time_left(self) -> float:
        return self.deadline - time.time()

    def save(self) -> None:
        if self.path:
            write_json(self.path, self.data)

    def step(self, name: str, action: Callable[[], Any], need_s: float = 0.0) -> Any:
        """Run one measurement into `data[name]`: its result, or its traceback (and go on),
        or "skipped" when less than `need_s` of the section's time is left."""
        if self.time_left() < need_s:
            self.data[name] = f"skipped: {self.time_left():.0f} s of the section left"
            self.save()
            return None
        began = time.perf_counter()
        try:
            result = action()
        except Exception:  # recorded, and the next measurement runs
            self.data[name] = {"error": traceback.format_exc(limit=8)[-3000:]}
            result = None
        else:
            self.data[name] = result
        if isinstance(self.data[name], dict):
            self.data[name].setdefault("seconds", round(time.perf_counter() - began, 2))
        self.save()
        return result


def run_child(args: list[str], timeout: float, log: str, env: dict | None = None) -> dict:
    """Run this script as a child (its own process group, killed whole at `timeout`)."""
    began = time.perf_counter()
    with open(log, "w") as out:
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), *args],
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                 env={**os.environ, **(env or {})})
        try:
            code = child.wait(timeout=max(1.0, timeout))
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # our own child's group only
            child.wait()
            code, status = None, f"timed out after {timeout:.0f} s"
    result = {"status": status, "wall_s": round(time.perf_counter() - began, 1)}
    if code != 0:
        with open(log, errors="replace") as handle:
            result["log_tail"] = handle.read()[-3000:]
    return result


# ============================================================================ what runs where

@dataclass
class Plan:
    """Sizes and settings: the real ones on CUDA, small ones for a CPU dry run."""

    gpu: bool
    device: str
    config: str
    size: int
    model_precisions: list[str]
    warmup: int
    repeats: int
    chain_frames: int
    jump_at: int
    chain_plate: tuple[int, int]
    plates: list[tuple[int, int]]
    e2e_frames: list[int]
    e2e_precision: str
    readers: list[int]
    compile_backend: str
    section_seconds: float
    budget_seconds: float
    work: str = ""


def make_plan(args: argparse.Namespace) -> Plan:
    import torch

    gpu = torch.cuda.is_available() and not args.dry_run
    sizes = ([tuple(int(v) for v in text.split("x")) for text in args.plates.split(",")]
             if args.plates else ([(2048, 1080), (4096, 2160)] if gpu
                                  else [(512, 270), (1024, 540)]))
    return Plan(
        gpu=gpu, device="cuda" if gpu else "cpu", config="full" if gpu else "tiny",
        size=args.size or (1024 if gpu else 128),
        model_precisions=["fp16", "bf16"] if gpu else ["bf16", "fp32"],
        warmup=3 if gpu else 1, repeats=20 if gpu else 5,
        chain_frames=12, jump_at=6,
        chain_plate=(2048, 1080) if gpu else (128, 72),
        plates=sizes,
        e2e_frames=[48 if w * h <= 2048 * 1152 else 24 for w, h in sizes] if gpu
        else [8] * len(sizes),
        e2e_precision="fp16" if gpu else "bf16",
        readers=[1, 2, 4, 8],
        compile_backend=args.compile_backend or ("inductor" if gpu else "aot_eager"),
        section_seconds=args.section_seconds or (60.0 if gpu else 120.0),
        budget_seconds=args.budget_seconds or (270.0 if gpu else 240.0),
        work=args.work)


def sync(plan: Plan) -> None:
    if plan.gpu:
        import torch

        torch.cuda.synchronize()


def device_info(plan: Plan) -> dict:
    """The machine, first in the JSON: GPU, driver, CUDA, torch, CPU, the plate libraries."""
    import torch

    info: dict[str, Any] = {
        "python": sys.version.split()[0], "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(), "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "memory": _proc_field("/proc/meminfo", "MemTotal"), "vrmbg": VRMBG_FROM,
        "cuda_available": torch.cuda.is_available(), "ran_on": plan.device,
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_files": len(_git("status", "--porcelain").splitlines()),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=torch.cuda.get_device_name(0),
            capability=".".join(map(str, torch.cuda.get_device_capability(0))),
            gpu_memory_gib=round(props.total_memory / 2 ** 30, 1),
            multiprocessors=props.multi_processor_count,
            bf16_supported=torch.cuda.is_bf16_supported(),
            cudnn=torch.backends.cudnn.version(), gpu_count=torch.cuda.device_count())
        info["nvidia_smi"] = _nvidia_smi()
    for name in ("numpy", "OpenImageIO", "PyOpenColorIO", "OpenEXR", "opentimelineio",
                 "pynvml", "safetensors", "cv2"):
        try:
            module = __import__(name)
            info[f"{name}_version"] = str(getattr(module, "__version__", "present"))
        except Exception as exc:  # noqa: BLE001 - what is missing is the information
            info[f"{name}_version"] = f"missing ({type(exc).__name__})"
    return info


def _proc_field(path: str, key: str) -> str:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _git(*args: str) -> str:
    """Output of a git command in the repository ('' where there is no git or no .git)."""
    try:
        done = subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True,
                              timeout=15, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _nvidia_smi() -> str:
    query = "name,driver_version,memory.total,clocks.max.sm,power.limit,pstate"
    try:
        done = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=15, check=False)
        return done.stdout.strip() or done.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({type(exc).__name__})"


# ============================================================================ shared inputs

def model_folder(plan: Plan, config: str | None = None) -> str:
    """A model folder with random weights scaled like trained ones (model_bench's init:
    non-zero deformable offsets, unit-variance activations), written once per work folder.

    The loader's own `init_random` leaves the deformable offsets at zero, which would make
    every sample land on a pixel and hide the cost and the rounding of the interpolation."""
    config = config or plan.config
    folder = os.path.join(plan.work, f"model_{config}")
    if not os.path.isfile(os.path.join(folder, "config.json")):
        from model_bench import _build

        from vrmbg.core.model.config import ModelConfig
        from vrmbg.core.model.loader import save_model

        module, _, _ = _build(config, "fp32")
        preset = ModelConfig.preset(config)
        save_model(module, preset.replace(extra={**preset.extra,
                                                 "random_init": "model_bench seed 0"}), folder)
    return folder


def load(plan: Plan, precision: str, config: str | None = None):
    """The model through the engine's loader, on the plan's device."""
    from vrmbg.core.model.loader import load_model

    return load_model(model_folder(plan, config), device=plan.device, precision=precision)


def plates(plan: Plan, width: int, height: int, count: int) -> str:
    """Half ZIP EXR plates (engine_bench's moving disc over texture), written once."""
    folder = os.path.join(plan.work, f"plates_{width}x{height}_{count}")
    done = os.path.join(folder, "done")
    if not os.path.isfile(done):
        try:
            from engine_bench import write_plates
        except ImportError:  # the bench moved on: the same plates, written here
            write_plates = _write_plates
        write_plates(folder, count, width, height)
        open(done, "w").close()
    return os.path.join(folder, "bench.####.exr")


def _write_plates(folder: str, count: int, width: int, height: int) -> str:
    import numpy as np
    import OpenImageIO as oiio

    os.makedirs(folder, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([0.05 + 0.3 * xx / width, 0.05 + 0.2 * yy / height,
                     0.1 + 0.05 * np.sin(xx * 0.05) * np.cos(yy * 0.04)], axis=-1)
    grain = np.random.default_rng(0).normal(0, 0.01, size=base.shape).astype(np.float32)
    spec = oiio.ImageSpec(width, height, 3, oiio.HALF)
    spec.attribute("compression", "zip")
    for i in range(count):
        frame = base + np.roll(grain, i * 7, axis=1)
        cx, cy = width * (0.2 + 0.6 * i / max(count, 1)), height * 0.5
        frame[(xx - cx) ** 2 + (yy - cy) ** 2 < (height * 0.2) ** 2] = (1.5, 1.1, 0.4)
        path = os.path.join(folder, f"bench.{FIRST + i}.exr")
        out = oiio.ImageOutput.create(path)
        out.open(path, spec)
        out.write_image(frame.astype(np.float16))
        out.close()
    return os.path.join(folder, "bench.####.exr")


def prepare(plan: Plan, part: Part) -> None:
    """Write the model folders and the plates every section uses (CPU work, timed apart
    from the sections' budget)."""
    part.step("model", lambda: {"folder": model_folder(plan)})
    part.step("tiny_model", lambda: {"folder": model_folder(plan, "tiny")})
    part.step("chain_plates", lambda: {"pattern": plates(plan, *plan.chain_plate,
                                                         plan.chain_frames)})
    for (width, height), count in zip(plan.plates, plan.e2e_frames):
        part.step(f"plates_{width}x{height}", lambda w=width, h=height, c=count: {
            "pattern": plates(plan, w, h, c)})


def colour_path(session) -> str:
    try:
        from engine_bench import colour_path as bench_colour_path

        return bench_colour_path(session)
    except ImportError:
        return "device tables" if session.device_colour else "OCIO CPU processor"


def timed_ms(action: Callable[[], Any], plan: Plan, repeats: int | None = None,
             warmup: int | None = None) -> list[float]:
    """Milliseconds of each call of `action`, the device finished after each."""
    for _ in range(plan.warmup if warmup is None else warmup):
        action()
    sync(plan)
    times = []
    for _ in range(plan.repeats if repeats is None else repeats):
        began = time.perf_counter()
        action()
        sync(plan)
        times.append((time.perf_counter() - began) * 1e3)
    return times


def summary_ms(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"median_ms": round(statistics.median(ordered), 3), "min_ms": round(ordered[0], 3),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 3), "n": len(ordered)}


# ============================================================================ section 1

def section_model(plan: Plan, part: Part) -> None:
    """(1) The network alone at the inference size, per precision and memory layout.

    Why: the engine can only be as fast as the forward; the issue's target is 30 fps (33 ms)
    at fp16 on 2K plates. Each precision times channels_last (what the CPU path uses) and
    contiguous weights (what `prepare_module` leaves on CUDA today), synced after every frame
    (a chain is serial) and queued (what a free-running pipeline could reach), with the host's
    dispatch time alone: dispatch close to the synced time means the GPU waits for Python.
    Then the deformable convolutions alone (pure torch today, a likely bottleneck) and, for
    the first precision, the time per block and the top kernels from the profiler. CUDA
    graphs of the whole forward (replays skip the dispatch) come last, once every eager
    figure is saved: a capture that fails can leave the process's CUDA state unusable.
    cuDNN's benchmark mode is timed in section 2, in a process of its own: PyTorch caches
    the algorithm chosen per shape, so in this process it would reuse the heuristics' pick.
    """
    import torch

    part.data["plan"] = {"config": plan.config, "size": plan.size, "device": plan.device}
    modules = {}
    for index, precision in enumerate(plan.model_precisions):
        holder: dict[str, Any] = {}
        part.step(f"{precision}_load", lambda: load_into(plan, precision, holder), need_s=10)
        module = holder.pop("module", None)
        if module is None:
            continue
        x = model_input(plan, module)
        for layout, fmt in (("channels_last", torch.channels_last),
                            ("contiguous", torch.contiguous_format)):
            module.to(memory_format=fmt)
            part.step(f"{precision}_{layout}", lambda: forward_timing(plan, module, x), 5)
        module.to(memory_format=torch.channels_last)
        eager = part.data.get(f"{precision}_channels_last", {})
        eager_ms = eager.get("synced", {}).get("median_ms") if isinstance(eager, dict) else None
        part.step(f"{precision}_deformable",
                  lambda: deformable_share(plan, module, x, eager_ms), 5)
        if index == 0:
            part.step(f"{precision}_blocks", lambda: block_times(plan, module, x), 5)
            part.step(f"{precision}_top_ops", lambda: top_ops(plan, module, x), 5)
        modules[precision] = (module, x)
    for precision, (module, x) in modules.items():
        if plan.gpu:
            part.step(f"{precision}_cuda_graph", lambda: cuda_graph(plan, module, x), 5)
        else:
            part.data[f"{precision}_cuda_graph"] = "skipped: no CUDA"


def load_into(plan: Plan, precision: str, holder: dict) -> dict:
    """Load the model into `holder["module"]`; what the load cost."""
    began = time.perf_counter()
    loaded = load(plan, precision)
    holder["module"] = loaded.module
    return {"load_s": round(time.perf_counter() - began, 2), "dtype": str(loaded.dtype),
            "params_m": round(sum(p.numel() for p in loaded.module.parameters()) / 1e6, 1)}


def model_input(plan: Plan, module):
    """A normalised-looking (1, 6, R, R) input in the model dtype, on the device."""
    import torch

    generator = torch.Generator().manual_seed(1)
    channels = module.config.in_channels
    dtype = next(module.parameters()).dtype
    return torch.randn(1, channels, plan.size, plan.size, generator=generator).to(
        plan.device, dtype)


def _free(plan: Plan) -> None:
    import gc

    gc.collect()
    if plan.gpu:
        import torch

        torch.cuda.empty_cache()


def forward_timing(plan: Plan, module, x) -> dict:
    """Synced and queued ms per forward, host dispatch ms, peak memory, output finite."""
    import torch

    with torch.inference_mode():
        out = module(x)[-1]
        sync(plan)
        weights_mb = torch.cuda.memory_allocated() / 2 ** 20 if plan.gpu else None
        if plan.gpu:
            torch.cuda.reset_peak_memory_stats()
        synced = timed_ms(lambda: module(x), plan)
        dispatch, began = [], time.perf_counter()
        for _ in range(plan.repeats):
            start = time.perf_counter()
            out = module(x)[-1]
            dispatch.append((time.perf_counter() - start) * 1e3)
        sync(plan)
        queued = (time.perf_counter() - began) * 1e3 / plan.repeats
        finite = bool(torch.isfinite(out).all())
    result = {"synced": summary_ms(synced), "queued_mean_ms": round(queued, 3),
              "host_dispatch_median_ms": round(statistics.median(dispatch), 3),
              "fps_synced": round(1e3 / statistics.median(synced), 1),
              "output_finite": finite}
    if plan.gpu:
        result["weights_mb"] = round(weights_mb, 1)
        result["peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
        result["peak_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2 ** 20, 1)
    else:
        import resource

        result["peak_rss_mb"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


class _Clock:
    """Start/stop marks on the device's timeline (CUDA events) or the host's."""

    def __init__(self, gpu: bool) -> None:
        self.gpu = gpu

    def mark(self):
        if self.gpu:
            import torch

            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def between_ms(self, start, stop) -> float:
        return start.elapsed_time(stop) if self.gpu else (stop - start) * 1e3


def block_times(plan: Plan, module, x) -> dict:
    """ms per forward in each top-level block of the network and of its decoder (forward
    hooks around each; a block called twice, such as a multi-scale backbone, sums)."""
    import torch

    clock, spans = _Clock(plan.gpu), {}
    blocks = [(name, child) for name, child in module.named_children()]
    decoder = getattr(module, "decoder", None)
    if decoder is not None:
        blocks += [(f"decoder.{name}", child) for name, child in decoder.named_children()]
    handles = []
    for name, block in blocks:
        open_marks: list = []

        def before(_m, _a, marks=open_marks):
            marks.append(clock.mark())

        def after(_m, _a, _o, name=name, marks=open_marks):
            spans.setdefault(name, []).append((marks.pop(), clock.mark()))

        handles += [block.register_forward_pre_hook(before), block.register_forward_hook(after)]
    repeats = 3
    try:
        with torch.inference_mode():
            module(x)
            sync(plan)
            spans.clear()
            total = sum(timed_ms(lambda: module(x), plan, repeats=repeats, warmup=0))
    finally:
        for handle in handles:
            handle.remove()
    sync(plan)
    per_block = {name: round(sum(clock.between_ms(a, b) for a, b in pairs) / repeats, 3)
                 for name, pairs in spans.items()}
    return {"forward_ms": round(total / repeats, 3),
            "blocks_ms": dict(sorted(per_block.items(), key=lambda kv: -kv[1]))}


def top_ops(plan: Plan, module, x, count: int = 15) -> dict:
    """The operators taking the most time in one forward (torch.profiler, self time)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if plan.gpu else [])
    with torch.inference_mode():
        module(x)
        sync(plan)
        with profile(activities=activities) as prof:
            module(x)
            sync(plan)
    rows = []
    for event in prof.key_averages():
        device_us = getattr(event, "self_device_time_total",
                            getattr(event, "self_cuda_time_total", 0)) or 0
        rows.append({"op": event.key[:120], "calls": event.count,
                     "self_device_ms": round(device_us / 1e3, 3),
                     "self_cpu_ms": round(event.self_cpu_time_total / 1e3, 3)})
    key = "self_device_ms" if plan.gpu else "self_cpu_ms"
    rows.sort(key=lambda row: -row[key])
    total = sum(row[key] for row in rows)
    return {"sorted_by": key, "total_ms": round(total, 3), "top": rows[:count]}


def deformable_share(plan: Plan, module, x, forward_ms: float | None) -> dict:
    """The deformable convolutions alone, on the inputs they get in a real forward (captured
    by hooks): the whole module (offset and modulator convs + sampling), the sampling op
    (`modulated_deform_conv2d`) alone, and a plain convolution of the same shape (what the
    op would cost as a cuDNN kernel), summed over every call, as a share of the forward."""
    import torch

    from vrmbg.core.model.deform import DeformableConv2d, modulated_deform_conv2d

    captured: list = []
    handles = [m.register_forward_pre_hook(lambda mod, args: captured.append((mod, args[0])))
               for m in module.modules() if isinstance(m, DeformableConv2d)]
    try:
        with torch.inference_mode():
            module(x)
    finally:
        for handle in handles:
            handle.remove()
    if not captured:
        return {"calls": 0}
    calls, repeats = [], max(3, plan.repeats // 2)
    with torch.inference_mode():
        for mod, inp in captured:
            offset = mod.offset_conv(inp)
            modulator = torch.sigmoid(mod.modulator_conv(inp)) * 2.0
            op = (lambda mod=mod, inp=inp, offset=offset, modulator=modulator:
                  modulated_deform_conv2d(inp, offset, modulator, mod.regular_conv.weight,
                                          mod.regular_conv.bias, mod.stride, mod.padding))
            calls.append({
                "input": list(inp.shape), "out_channels": mod.regular_conv.out_channels,
                "kernel": list(mod.regular_conv.kernel_size),
                "module_ms": statistics.median(timed_ms(lambda: mod(inp), plan, repeats, 1)),
                "op_ms": statistics.median(timed_ms(op, plan, repeats, 1)),
                "plain_conv_ms": statistics.median(
                    timed_ms(lambda: mod.regular_conv(inp), plan, repeats, 1))})
    totals = {key: round(sum(c[key] for c in calls), 3)
              for key in ("module_ms", "op_ms", "plain_conv_ms")}
    result = {"calls": len(calls), **{f"total_{k}": v for k, v in totals.items()},
              "forward_ms": forward_ms,
              "calls_detail": [{k: (round(v, 3) if isinstance(v, float) else v)
                                for k, v in c.items()} for c in calls[:12]]}
    if forward_ms:
        result["module_share_of_forward"] = round(totals["module_ms"] / forward_ms, 3)
        result["op_share_of_forward"] = round(totals["op_ms"] / forward_ms, 3)
    return result


def cuda_graph(plan: Plan, module, x) -> dict:
    """The whole forward captured as one CUDA graph and replayed: the time without Python
    dispatch, and whether a replay gives the eager forward's bits."""
    import torch

    static_x = x.clone()
    with torch.inference_mode():
        eager = module(static_x)[-1].clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                module(static_x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        began = time.perf_counter()
        with torch.cuda.graph(graph):
            static_out = module(static_x)[-1]
        capture_s = time.perf_counter() - began
        times = timed_ms(graph.replay, plan)
        same = bool(torch.equal(static_out, eager))
        diff = float((static_out.float() - eager.float()).abs().max())
    return {"capture_s": round(capture_s, 2), "replay": summary_ms(times),
            "fps": round(1e3 / statistics.median(times), 1),
            "bit_identical_to_eager": same, "max_abs_diff_to_eager": diff}


def section_compile(plan: Plan, part: Part) -> None:
    """(1, compiled) torch.compile of the network at the first precision, channels_last.

    Why: fusing the pure-torch deformable sampling and the attention's small ops may be the
    largest gain, but compiling costs every worker and farm task its start-up time, so the
    compile time is recorded apart; and a compiled forward is only usable for chains if its
    bits are the same run to run (they differ from eager ones: another chain identity)."""
    import torch

    precision = plan.model_precisions[0]
    part.data["backend"], part.data["precision"] = plan.compile_backend, precision
    module = load(plan, precision).module.to(memory_format=torch.channels_last)
    x = model_input(plan, module)
    with torch.inference_mode():
        eager = module(x)[-1].clone()
    part.step("default", lambda: _compiled(plan, module, x, eager, None), 10)
    mode = "reduce-overhead" if plan.gpu else None
    if mode and isinstance(part.data.get("default"), dict) and "error" not in part.data["default"]:
        need = part.data["default"].get("compile_s", 60) * 1.3 + 10
        part.step(mode, lambda: _compiled(plan, module, x, eager, mode), need)


def _compiled(plan: Plan, module, x, eager, mode: str | None) -> dict:
    import torch

    torch._dynamo.reset()
    from torch._dynamo.utils import counters

    counters.clear()
    compiled = torch.compile(module, backend=plan.compile_backend, mode=mode, dynamic=False)
    with torch.inference_mode():
        began = time.perf_counter()
        first = compiled(x)[-1].clone()
        sync(plan)
        compile_s = time.perf_counter() - began
        times = timed_ms(lambda: compiled(x), plan)
        again = compiled(x)[-1].clone()
        sync(plan)
    return {"compile_s": round(compile_s, 1), "synced": summary_ms(times),
            "fps": round(1e3 / statistics.median(times), 1),
            "graph_breaks": int(sum(counters["graph_break"].values())),
            "run_to_run_bit_identical": bool(torch.equal(first, again)),
            "bit_identical_to_eager": bool(torch.equal(first, eager)),
            "max_abs_diff_to_eager": float((first.float() - eager.float()).abs().max())}


# ============================================================================ section 2

# Each mode: (what it sets, extra environment for its processes). `default` is what the engine
# does today (torch's defaults); CUBLAS_WORKSPACE_CONFIG must be set before cuBLAS starts.
MODES = {
    "default": "torch defaults: cudnn.deterministic=False, cudnn.benchmark=False",
    "cudnn_deterministic": "cudnn.deterministic=True, cudnn.benchmark=False",
    "torch_deterministic": "cudnn.deterministic=True, cudnn.benchmark=False, "
                           "torch.use_deterministic_algorithms(True), "
                           "CUBLAS_WORKSPACE_CONFIG=:4096:8",
    "cudnn_benchmark": "cudnn.benchmark=True (the autotuner; not in the engine today)",
}
# Processes: modes that can be switched at run time share one; torch's deterministic mode
# needs the cuBLAS environment from the start.
MODE_GROUPS = [(["default", "cudnn_deterministic"], {}),
               (["torch_deterministic"], {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}),
               (["cudnn_benchmark"], {})]


def apply_mode(mode: str) -> dict:
    import torch

    torch.backends.cudnn.benchmark = mode == "cudnn_benchmark"
    torch.backends.cudnn.deterministic = mode in ("cudnn_deterministic", "torch_deterministic")
    torch.use_deterministic_algorithms(mode == "torch_deterministic")
    return {"cudnn.benchmark": torch.backends.cudnn.benchmark,
            "cudnn.deterministic": torch.backends.cudnn.deterministic,
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG", "")}


def section_exactness(plan: Plan, part: Part) -> None:
    """(2) Bit-exact chains through the engine's own session and cache.

    Why: the engine promises any frame is bit-identical to a straight run, whatever order or
    process computed it; on CUDA that holds only if every kernel gives the same bits run to
    run and process to process. For each mode and precision a child process runs a
    `chain_frames` chain twice (caches A and B) and frames 1..`jump_at` into cache C; a second
    child continues C to the last frame from the stored state. Mattes and states are compared
    byte for byte: A vs B (twice), C vs A (the jump), A vs the default mode's A (whether the
    mode changes the bits, i.e. whether it must be part of the chain identity). The model ms
    per frame of each mode is its cost."""
    width, height = plan.chain_plate
    part.data["plates"] = f"{width}x{height} half EXR, {plan.chain_frames} frames"
    part.data["modes"] = MODES
    pattern = plates(plan, width, height, plan.chain_frames)
    model_folder(plan)
    results: dict[str, dict] = {}
    for modes, env in MODE_GROUPS:
        if not plan.gpu and modes == ["cudnn_benchmark"]:
            part.data["cudnn_benchmark"] = "skipped: no cuDNN on the CPU"
            continue
        if part.time_left() < 15:
            for mode in modes:
                part.data[mode] = f"skipped: {part.time_left():.0f} s of the section left"
            part.save()
            continue
        runs = chain_children(plan, pattern, modes, env, part)
        for mode in modes:
            results[mode] = runs.get(mode, {})
            part.data[mode] = compare_mode(plan, mode, results)
        part.save()


def chain_children(plan: Plan, pattern: str, modes: list[str], env: dict,
                   part: Part) -> dict:
    """The two processes of one group of modes; returns mode -> precision -> runs."""
    tag = "_".join(modes)
    shared = ["--pattern", pattern, "--modes", ",".join(modes)]
    results = os.path.join(plan.work, f"chain_{tag}.json")
    jumped = os.path.join(plan.work, f"jump_{tag}.json")
    first = run_child(worker_args(plan, "chain-run", results, part.deadline) + shared,
                      part.time_left() - 2, results + ".log", env)
    second = (run_child(worker_args(plan, "chain-jump", jumped, part.deadline) + shared,
                        part.time_left() - 2, jumped + ".log", env)
              if part.time_left() > 8 else {"status": "skipped: section time limit"})
    done = read_json(results)
    for mode, by_precision in read_json(jumped).items():
        for precision, jump in by_precision.items():
            done.setdefault(mode, {}).setdefault(precision, {})["jump"] = jump
    for mode in modes:
        done.setdefault(mode, {})["_processes"] = {"run": first, "jump": second}
    return done


def chain_run(plan: Plan, part: Part, pattern: str, modes: list[str]) -> None:
    """Child of section 2: runs A, B (whole chain) and C (up to `jump_at`) per mode."""
    last, stop = FIRST + plan.chain_frames - 1, FIRST + plan.jump_at - 1
    for precision in plan.model_precisions:
        loaded = load(plan, precision)
        for mode in modes:
            key = f"{mode}/{precision}"
            settings = apply_mode(mode)
            out = part.data.setdefault(mode, {}).setdefault(precision, {"settings": settings})
            for name, frame in (("A", last), ("B", last), ("C", stop)):
                root = os.path.join(plan.work, "chains", mode, precision, name)
                shutil.rmtree(root, ignore_errors=True)
                try:
                    out[name] = ensure_through_engine(plan, loaded, pattern, root, frame)
                except Exception:
                    out[name] = {"error": traceback.format_exc(limit=8)[-3000:]}
                part.save()
            print(f"chain {key} done", flush=True)
        del loaded
        _free(plan)


def chain_jump(plan: Plan, part: Part, pattern: str, modes: list[str]) -> None:
    """Child of section 2, another process: continue each cache C to the last frame."""
    last = FIRST + plan.chain_frames - 1
    for precision in plan.model_precisions:
        loaded = load(plan, precision)
        for mode in modes:
            apply_mode(mode)
            root = os.path.join(plan.work, "chains", mode, precision, "C")
            try:
                result = ensure_through_engine(plan, loaded, pattern, root, last)
            except Exception:
                result = {"error": traceback.format_exc(limit=8)[-3000:]}
            part.data.setdefault(mode, {})[precision] = result
            part.save()
        del loaded
        _free(plan)


def ensure_through_engine(plan: Plan, loaded, pattern: str, root: str, frame: int) -> dict:
    """`session.ensure(frame)` on a session of the plates in cache `root`; the files and
    counters it leaves."""
    from vrmbg.core.engine.opening import open_session
    from vrmbg.core.engine.step import FrameStepper

    session = open_session(pattern, {}, cache_root=root,
                           stepper=FrameStepper(loaded, plan.size))
    began = time.perf_counter()
    session.ensure(frame)
    wall = time.perf_counter() - began
    counters = session.counters.to_dict()
    computed = max(1, counters.get("frames_computed", 0))
    frames = range(FIRST, frame + 1)
    return {"folder": session.folder, "colour": colour_path(session),
            "wall_ms_per_frame": ms(wall / computed),
            "model_ms_per_frame": ms(counters.get("seconds_in_model", 0.0) / computed),
            "counters": counters,
            "mattes": {str(f): session.matte_path(f) for f in frames},
            "states": {str(f): _state_file(session.folder, f) for f in frames}}


def _state_file(folder: str, frame: int) -> str:
    found = (glob.glob(os.path.join(folder, "state", f"{frame}_*.npy"))
             or glob.glob(os.path.join(folder, "**", f"{frame}_*.npy"), recursive=True))
    return sorted(found)[-1] if found else ""


def compare_mode(plan: Plan, mode: str, results: dict) -> dict:
    """Twice, jump and same-as-default verdicts of one mode, per precision."""
    by_precision = results.get(mode, {})
    report: dict[str, Any] = {"processes": by_precision.get("_processes")}
    jump_from = FIRST + plan.jump_at
    last = FIRST + plan.chain_frames - 1
    for precision in plan.model_precisions:
        runs = by_precision.get(precision)
        if not runs:
            report[precision] = "no result (see processes)"
            continue
        errors = {name: run["error"] for name, run in runs.items()
                  if isinstance(run, dict) and "error" in run}
        verdict: dict[str, Any] = {"settings": runs.get("settings")}
        if errors:
            verdict["errors"] = errors
        a, b, jump = runs.get("A"), runs.get("B"), runs.get("jump")
        timed = [run for run in (a, b) if run and "error" not in run]
        if timed:  # the faster of the two runs: the first one may pay the warm-up
            verdict["model_ms_per_frame"] = min(run["model_ms_per_frame"] for run in timed)
            verdict["engine_ms_per_frame"] = min(run["wall_ms_per_frame"] for run in timed)
            verdict["colour"] = timed[0]["colour"]
        if a and b and "error" not in a and "error" not in b:
            verdict["twice"] = compare_runs(a, b, range(FIRST, last + 1))
        if a and jump and "error" not in a and "error" not in jump:
            verdict["jump"] = compare_runs(a, jump, range(jump_from, last + 1))
            counters = jump.get("counters", {})
            verdict["jump"]["continued_from_cache"] = (
                counters.get("states_loaded") == 1
                and counters.get("frames_computed") == last - jump_from + 1)
            verdict["jump"]["jump_counters"] = {k: counters.get(k) for k in (
                "frames_computed", "states_loaded", "frames_from_cache")}
        base = results.get("default", {}).get(precision, {}).get("A")
        if mode != "default" and a and base and "error" not in a and "error" not in base:
            verdict["same_bits_as_default"] = compare_runs(
                base, a, range(FIRST, last + 1))["identical"]
        report[precision] = verdict
    return report


def compare_runs(a: dict, b: dict, frames) -> dict:
    """Mattes (pixels) and states (bytes) of two runs, frame by frame."""
    import numpy as np

    from vrmbg.core.io.mattes import read_matte

    first_diff, worst, states_same = None, 0.0, True
    for frame in frames:
        key = str(frame)
        left, right = read_matte(a["mattes"][key]), read_matte(b["mattes"][key])
        same = left.shape == right.shape and left.tobytes() == right.tobytes()
        if not same:
            worst = max(worst, float(np.abs(left.astype(np.float64) - right).max()))
            first_diff = first_diff or frame
        sa, sb = a["states"].get(key), b["states"].get(key)
        if not sa or not sb or np.load(sa).tobytes() != np.load(sb).tobytes():
            states_same = False
            first_diff = first_diff or frame
    return {"identical": first_diff is None and states_same, "mattes_first_difference":
            first_diff, "mattes_max_abs_diff": worst, "states_identical": states_same,
            "frames": f"{frames[0]}-{frames[-1]}"}


# ============================================================================ section 3

# Spaces of the default config: scene-linear plates (the EXR default), log and display ones.
COLOUR_SPACES = {"ACEScg": 1.0, "Linear Rec.709 (sRGB)": 1.0, "ACEScct": 0.6,
                 "ARRI LogC4": 0.6, "Rec.1886 Rec.709 - Display": 0.8}


def section_colour(plan: Plan, part: Part) -> None:
    """(3) The device colour path against OCIO's CPU processor on 2K and 4K plates.

    Why: on a GPU host the plates are converted on the device (`core.colour.device`) instead
    of by OCIO on the CPU; its tables were checked on probe pixels and on torch's CPU, never
    on CUDA. For each space, plate size and plate type (half; float where the device form
    takes it): the largest |difference| of the model RGB in [0, 1] (budget 1e-4), of the
    normalised model input after the resize to the inference size, the NaN/Inf counts, and
    the ms of each path (the device's includes the upload of the plate)."""
    import numpy as np

    from vrmbg.core.colour.device import build_device_colour
    from vrmbg.core.colour.transform import ColourTransform
    from vrmbg.core.engine.step import FrameStepper

    stepper = FrameStepper(load(plan, "fp32", "tiny"), plan.size)
    part.data["budget"] = 1e-4
    plates_by_size = {}
    for width, height in plan.plates:
        plates_by_size[(width, height)] = plate_values(height, width)
    for space, scale in COLOUR_SPACES.items():
        def one_space(space=space, scale=scale) -> dict:
            colour = ColourTransform(input_space=space, threads=0)
            began = time.perf_counter()
            converter = build_device_colour(colour, plan.device)
            report: dict[str, Any] = {"build_s": round(time.perf_counter() - began, 2)}
            if converter is None:
                report["device_form"] = "none (the CPU path is kept)"
                return report
            report["takes"] = sorted(converter.inputs)
            for (width, height), values in plates_by_size.items():
                for kind, dtype in (("half", np.float16), ("float", np.float32)):
                    if converter.handles(dtype):
                        rgb = np.ascontiguousarray((values * scale).astype(dtype))
                        report[f"{width}x{height}_{kind}"] = compare_colour(
                            plan, colour, converter, stepper, rgb)
            return report

        part.step(space, one_space, need_s=5)
    worst = [v.get(k, {}).get("max_abs_diff_rgb01", 0.0) for v in part.data.values()
             if isinstance(v, dict) for k in v if "x" in k and isinstance(v[k], dict)]
    part.data["max_abs_diff_rgb01_all"] = max(worst) if worst else None
    part.data["within_budget"] = bool(worst) and max(worst) <= 1e-4


def plate_values(height: int, width: int, seed: int = 7):
    """Plate pixels unlike the builder's probes: ramps, noise, hot highlights and a few
    NaN/Inf (the test suite's `plate_values`, at plate size)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([(xx / width) * (c + 1) * 0.5 + (yy / height) * 0.25 + 0.1 * c
                    for c in range(3)], axis=-1) * 1.3 - 0.05
    rgb += rng.normal(0.0, 0.05, rgb.shape).astype(np.float32)
    rgb[rng.random((height, width)) < 0.01] *= 40.0
    rgb[3, 4, 0], rgb[height // 2, width // 3, 2], rgb[-2, -5, 1] = np.nan, np.inf, -np.inf
    return rgb.astype(np.float32)


def compare_colour(plan: Plan, colour, converter, stepper, rgb) -> dict:
    import numpy as np
    import torch

    began = time.perf_counter()
    reference, bad_reference = colour.convert(rgb)
    cpu_ms = ms(time.perf_counter() - began)
    host = torch.from_numpy(rgb)
    times = timed_ms(lambda: converter.convert(host), plan, repeats=3, warmup=1)
    planes, bad = converter.convert(host)
    ours = planes.permute(1, 2, 0).cpu().numpy()
    with torch.inference_mode():
        model_cpu = stepper.prepare(reference)
        model_device = stepper.prepare_planes(planes)
        input_diff = float((model_cpu - model_device).abs().max())
    diff = float(np.abs(ours - reference).max())
    return {"max_abs_diff_rgb01": diff, "within_budget": diff <= 1e-4,
            "max_abs_diff_model_input_normalised": input_diff,
            "bad_pixels_cpu": int(bad_reference), "bad_pixels_device": int(bad),
            "ocio_cpu_ms": cpu_ms, "device_ms_with_upload": round(statistics.median(times), 2)}


# ============================================================================ section 4

def section_engine(plan: Plan, part: Part) -> None:
    """(4) The engine end to end on generated EXR plates, per reader count.

    Why: the targets are >= 30 fps at fp16 on 2K plates through the whole engine and the
    engine within 10% of the model-only time (GPU busy >= 90%). Per plate size: the model
    alone (prepared inputs, synced per frame as the engine's chain is), then the engine from
    an empty cache with 1/2/4/8 readers: frames per second, host CPU ms per frame (all
    threads, `time.process_time`), GPU busy from NVML when pynvml is there, and always the
    estimate model-only time x frames / wall time."""
    from vrmbg.core.engine.step import FrameStepper

    loaded = load(plan, plan.e2e_precision)
    part.data["precision"], part.data["size"] = plan.e2e_precision, plan.size
    part.data["gpu_busy_source"] = UtilSampler(plan).source
    for (width, height), count in zip(plan.plates, plan.e2e_frames):
        name = f"{width}x{height}"
        state: dict[str, Any] = {}

        def prepare(width=width, height=height, count=count, state=state) -> dict:
            began = time.perf_counter()
            state["pattern"] = plates(plan, width, height, count)
            state["stepper"] = FrameStepper(loaded, plan.size)
            written = time.perf_counter() - began
            model = model_only(plan, state["stepper"], state["pattern"], min(count, 12))
            state["model_ms"] = model["median_ms"]
            return {"frames": count, "plates_s": round(written, 1), "model_only": model}

        if part.step(f"{name}_model_only", prepare, need_s=10) is None:
            continue
        for readers in plan.readers:
            part.step(f"{name}_readers_{readers}",
                      lambda readers=readers, name=name, state=state: engine_run(
                          plan, state, readers, f"{name}_r{readers}"), need_s=5)
        part.step(f"{name}_readers_4_ocio_cpu_colour",
                  lambda name=name, state=state: engine_run(
                      plan, state, 4, f"{name}_r4_cpu", device_colour=False), need_s=5)
        rates = [(run.get("fps", 0), r) for r in plan.readers
                 if isinstance(run := part.data.get(f"{name}_readers_{r}"), dict)]
        if rates:
            fps, readers = max(rates)
            part.data[f"{name}_best"] = {"readers": readers, "fps": fps}
        part.save()


def model_only(plan: Plan, stepper, pattern: str, count: int) -> dict:
    """ms per frame of `FrameStepper.step` alone on prepared inputs, synced each frame."""
    from vrmbg.core.engine.opening import open_session

    reference = open_session(pattern, {}, cache_root=os.path.join(plan.work, "unused"),
                             stepper=stepper)
    inputs = [stepper.prepare(reference.colour.to_model(reference.plates.read(f).rgb))
              for f in range(FIRST, FIRST + count)]
    prev = pred = None
    times = []
    for round_ in range(2):  # the first round warms up
        prev = pred = None
        for cur in inputs:
            began = time.perf_counter()
            pred = stepper.step(cur, prev, pred)
            sync(plan)
            if round_:
                times.append((time.perf_counter() - began) * 1e3)
            prev = cur
    return summary_ms(times)


class UtilSampler(threading.Thread):
    """Samples `torch.cuda.utilization()` (NVML) every 50 ms while the engine runs."""

    def __init__(self, plan: Plan) -> None:
        super().__init__(daemon=True)
        self.samples: list[int] = []
        self.source = "none (no CUDA)"
        self._stop_event = threading.Event()
        if plan.gpu:
            import torch

            try:
                torch.cuda.utilization()
                self.source = "NVML (torch.cuda.utilization via pynvml)"
            except Exception as exc:  # noqa: BLE001 - pynvml missing or no NVML
                self.source = f"estimate only (NVML unavailable: {type(exc).__name__})"

    def run(self) -> None:
        import torch

        while not self._stop_event.wait(0.05):
            self.samples.append(int(torch.cuda.utilization()))

    def __enter__(self) -> "UtilSampler":
        if self.source.startswith("NVML"):
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()

    def busy(self) -> float | None:
        return round(statistics.mean(self.samples) / 100, 3) if self.samples else None


def engine_run(plan: Plan, state: dict, readers: int, tag: str,
               device_colour: bool | None = None) -> dict:
    """The engine from an empty cache with `readers` readers (after a warm-up session that
    pays the per-process costs: colour tables, cuDNN's first calls). `device_colour=False`
    keeps OCIO's CPU processor on a GPU host (the comparison for the device colour path)."""
    from vrmbg.core.cpu import writer_threads
    from vrmbg.core.engine.opening import open_session

    pattern, stepper = state["pattern"], state["stepper"]
    if not state.get("warm"):
        warm = open_session(pattern, {}, cache_root=os.path.join(plan.work, "e2e", "warm" + tag),
                            stepper=stepper, readers=readers)
        warm.ensure(FIRST + 2)
        state["warm"] = True
    session = open_session(pattern, {}, cache_root=os.path.join(plan.work, "e2e", tag),
                           stepper=stepper, readers=readers, device_colour=device_colour)
    count = len(session.frames.frames)
    with UtilSampler(plan) as sampler:
        began, cpu_began = time.perf_counter(), time.process_time()
        session.ensure(FIRST + count - 1)
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    counters = session.counters.to_dict()
    model_s = state["model_ms"] / 1e3
    return {"readers": session.io_threads, "writers": writer_threads(session.io_threads),
            "colour": colour_path(session), "frames": count,
            "fps": round(count / wall, 2), "ms_per_frame": ms(wall / count),
            "host_cpu_ms_per_frame": ms(cpu / count),
            "host_cores_busy": round(cpu / wall, 2),
            "model_ms_per_frame_in_engine": ms(counters.get("seconds_in_model", 0) / count),
            "ratio_to_model_only": round(wall / count / model_s, 3),
            "gpu_busy_nvml": sampler.busy(), "nvml_samples": len(sampler.samples),
            "busy_estimate_model_only_x_frames_over_wall": round(model_s * count / wall, 3)}


# ============================================================================ orchestration

SECTIONS = {"1": section_model, "1c": section_compile, "2": section_exactness,
            "3": section_colour, "4": section_engine}
# Each section's time limit as a multiple of --section-seconds: the exactness check starts
# eight processes, and compilation alone can take minutes (it gets what is left, up to this).
LIMIT_SCALE = {"1": 1.0, "2": 1.5, "3": 0.75, "4": 1.0, "1c": 2.0}
PREPARE_SECONDS = 120  # writing the model folders and plates, before the sections' budget
TITLES = {"1": "1_model", "1c": "1_model_compiled", "2": "2_exactness", "3": "3_colour",
          "4": "4_engine"}


def worker_args(plan: Plan, worker: str, out: str, deadline: float) -> list[str]:
    """The command line of a child running `worker` under the same plan."""
    args = ["--worker", worker, "--part-out", out, "--deadline", f"{deadline:.1f}",
            "--work", plan.work, "--size", str(plan.size),
            "--plates", ",".join(f"{w}x{h}" for w, h in plan.plates),
            "--compile-backend", plan.compile_backend]
    return args + (["--dry-run"] if not plan.gpu else [])


def run_section(plan: Plan, name: str, limit: float) -> dict:
    """One section in a child process; its saved results and how it ended."""
    out = os.path.join(plan.work, f"section_{name}.json")
    deadline = time.time() + limit - 3  # the child stops starting steps before the kill
    ended = run_child(worker_args(plan, f"section{name}", out, deadline), limit,
                      out + ".log")
    return {**ended, "time_limit_s": round(limit), **read_json(out)}


def worker_main(args: argparse.Namespace) -> int:
    plan = make_plan(args)
    part = Part(args.part_out, args.deadline or time.time() + 600)
    # never outlive the section by much, even if the parent was killed before it could
    signal.alarm(max(1, int(part.time_left()) + 15))
    try:
        if args.worker.startswith("section"):
            SECTIONS[args.worker[len("section"):]](plan, part)
        elif args.worker == "prepare":
            prepare(plan, part)
        elif args.worker == "chain-run":
            chain_run(plan, part, args.pattern, args.modes.split(","))
        elif args.worker == "chain-jump":
            chain_jump(plan, part, args.pattern, args.modes.split(","))
        else:
            raise SystemExit(f"unknown worker {args.worker}")
    except Exception:
        part.data["error"] = traceback.format_exc(limit=10)[-4000:]
        part.save()
        return 1
    part.save()
    return 0


def summarise(report: dict) -> dict:
    """The few numbers the docs' table wants, taken from the sections (missing ones None)."""
    sections = report.get("sections", {})

    def get(*path):
        node: Any = sections
        for key in path:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    plan = report.get("plan", {})
    first = (plan.get("model_precisions") or ["fp16"])[0]
    summary: dict[str, Any] = {"device": report.get("device", {}).get("gpu", "cpu (dry run)")}
    for precision in plan.get("model_precisions", []):
        for layout in ("channels_last", "contiguous"):
            summary[f"model_{precision}_{layout}_ms"] = get(
                "1_model", f"{precision}_{layout}", "synced", "median_ms")
        summary[f"model_{precision}_peak_mb"] = get(
            "1_model", f"{precision}_channels_last", "peak_allocated_mb")
        summary[f"model_{precision}_deformable_share"] = get(
            "1_model", f"{precision}_deformable", "module_share_of_forward")
        summary[f"model_{precision}_cuda_graph_ms"] = get(
            "1_model", f"{precision}_cuda_graph", "replay", "median_ms")
    summary[f"model_{first}_compiled_ms"] = get("1_model_compiled", "default", "synced",
                                                "median_ms")
    summary["compile_s"] = get("1_model_compiled", "default", "compile_s")
    for mode in MODES:
        for precision in plan.get("model_precisions", []):
            twice = get("2_exactness", mode, precision, "twice", "identical")
            jump = get("2_exactness", mode, precision, "jump", "identical")
            if twice is not None or jump is not None:
                summary[f"exact_{mode}_{precision}"] = {
                    "twice": twice, "jump": jump,
                    "model_ms": get("2_exactness", mode, precision, "model_ms_per_frame")}
    summary["colour_max_abs_diff"] = get("3_colour", "max_abs_diff_rgb01_all")
    for width, height in plan.get("plates", []):
        name = f"{width}x{height}"
        summary[f"engine_{name}_best"] = get("4_engine", f"{name}_best")
        summary[f"engine_{name}_model_only_ms"] = get("4_engine", f"{name}_model_only",
                                                      "model_only", "median_ms")
        best = (get("4_engine", f"{name}_best") or {}).get("readers")
        if best:
            run = get("4_engine", f"{name}_readers_{best}") or {}
            summary[f"engine_{name}_busy"] = {
                "nvml": run.get("gpu_busy_nvml"),
                "estimate": run.get("busy_estimate_model_only_x_frames_over_wall"),
                "host_cpu_ms_per_frame": run.get("host_cpu_ms_per_frame")}
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true",
                        help="the CPU at small sizes with the tiny config, even with CUDA")
    parser.add_argument("--sections", default="1,2,3,4")
    parser.add_argument("--out", default="",
                        help="the JSON file (default: $OUT/gpu_check.json, else in /tmp)")
    parser.add_argument("--section-seconds", type=float, default=0.0,
                        help="time limit of a section (default 60 on a GPU, 120 dry; "
                             "x1.5 for section 2, x0.75 for 3, x2 for torch.compile)")
    parser.add_argument("--budget-seconds", type=float, default=0.0,
                        help="all sections together (default 270 on a GPU, 240 dry); "
                             "writing the model and plates first has its own limit")
    parser.add_argument("--size", type=int, default=0,
                        help="inference size (default 1024 on a GPU, 128 dry)")
    parser.add_argument("--plates", default="",
                        help="plate sizes of sections 3 and 4 (default 2048x1080,4096x2160)")
    parser.add_argument("--compile-backend", default="",
                        help="torch.compile backend (default inductor; aot_eager dry)")
    parser.add_argument("--work", default="", help="work folder (default: a temp folder)")
    parser.add_argument("--keep-work", action="store_true")
    for hidden in ("--worker", "--part-out", "--pattern", "--modes"):
        parser.add_argument(hidden, default="", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    began = time.monotonic()
    out = args.out or os.path.join(os.environ.get("OUT") or tempfile.gettempdir(),
                                   "gpu_check.json")
    own_work = not args.work
    args.work = args.work or tempfile.mkdtemp(prefix="vrmbg-gpu-check-")
    os.makedirs(args.work, exist_ok=True)
    plan = make_plan(args)
    report: dict[str, Any] = {"check": "tests/benchmarks/gpu_check.py (issue 27)",
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "dry_run": not plan.gpu}
    report["device"] = device_info(plan)
    report["plan"] = {k: v for k, v in asdict(plan).items() if k != "work"}
    report["sections"] = {}
    write_json(out, report)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    order = [s for s in ("1", "2", "3", "4") if s in chosen] + (["1c"] if "1" in chosen else [])
    try:
        out_prepare = os.path.join(plan.work, "prepare.json")
        deadline = time.time() + PREPARE_SECONDS
        report["prepare"] = {**run_child(worker_args(plan, "prepare", out_prepare, deadline),
                                         PREPARE_SECONDS, out_prepare + ".log"),
                             **read_json(out_prepare)}
        write_json(out, report)
        began = time.monotonic()  # the budget is the sections'
        for name in order:
            left = plan.budget_seconds - (time.monotonic() - began)
            limit = min(plan.section_seconds * LIMIT_SCALE[name], left)
            if left < 20:
                report["sections"][TITLES[name]] = {
                    "status": f"skipped: {left:.0f} s of the {plan.budget_seconds:.0f} s "
                              "budget left"}
            else:
                print(f"section {name}: up to {limit:.0f} s", file=sys.stderr, flush=True)
                report["sections"][TITLES[name]] = run_section(plan, name, limit)
            report["elapsed_s"] = round(time.monotonic() - began, 1)
            report["summary"] = summarise(report)
            write_json(out, report)
    finally:
        if own_work and not args.keep_work:
            shutil.rmtree(args.work, ignore_errors=True)
    print(json.dumps(report, indent=1, default=str))
    print(f"written: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
