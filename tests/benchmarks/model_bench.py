"""Benchmark of the built-in network: seconds per forward and peak memory, per precision.

Prints one JSON object. Each precision runs in a fresh subprocess so its peak RSS is its own.
Weights are random (shapes are what matter for speed); the model is built on the meta device and
materialised directly in the target dtype, as a loader streaming safetensors would.

    python tests/benchmarks/model_bench.py                       # full, 1024², fp32 + bf16
    python tests/benchmarks/model_bench.py --config tiny --repeats 5
    python tests/benchmarks/model_bench.py --precisions bf16 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def _build(config_name: str, dtype_name: str):
    import torch

    from vrmbg.core.model.config import ModelConfig
    from vrmbg.core.model.devices import prepare_module, resolve_device
    from vrmbg.core.model.network import VRMBGNet

    device, dtype = resolve_device("cpu", dtype_name)
    with torch.device("meta"):
        model = VRMBGNet(ModelConfig.preset(config_name))
    model = model.to_empty(device=device).to(dtype)
    gen = torch.Generator().manual_seed(0)
    norms = (torch.nn.LayerNorm, torch.nn.BatchNorm2d)
    with torch.no_grad():
        for module in model.modules():
            for name, param in module.named_parameters(recurse=False):
                if isinstance(module, norms):
                    param.fill_(1.0 if name == "weight" else 0.0)
                else:  # roughly unit-variance activations, like trained weights
                    fan_in = param[0].numel() if param.dim() > 1 else 50
                    param.copy_(torch.randn(param.shape, generator=gen) / fan_in ** 0.5)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
        model.reset_derived_buffers()
    prepare_module(model, device, dtype)
    return model, device, dtype


def worker(config_name: str, dtype_name: str, resolution: int, repeats: int) -> dict:
    """Time `repeats` forwards after one warm-up, in this process; returns a JSON-able dict."""
    import torch

    t0 = time.perf_counter()
    model, device, dtype = _build(config_name, dtype_name)
    build_s = time.perf_counter() - t0
    res = resolution or model.config.resolution
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, model.config.in_channels, res, res, generator=gen).to(device, dtype)
    times, cpu = [], []
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = model(x)[-1]
        warmup = time.perf_counter() - t0
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            out = model(x)[-1]
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    assert out.shape == (1, 1, res, res) and bool(torch.isfinite(out).all())
    return {
        "precision": dtype_name,
        "resolution": res,
        "build_seconds": round(build_s, 2),
        "warmup_seconds": round(warmup, 3),
        "seconds": [round(t, 3) for t in times],
        "median_seconds": round(statistics.median(times), 3),
        # CPU seconds of this process per forward: above threads x wall means spinning threads
        # waited on other processes (a loaded machine); a quiet 2-core run shows about 2x wall.
        "median_cpu_seconds": round(statistics.median(cpu), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "params": sum(p.numel() for p in model.parameters()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="full", choices=("tiny", "full"))
    parser.add_argument("--resolution", type=int, default=0, help="0 = the config's own")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0 = torch's default")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(worker(args.config, args.worker, args.resolution, args.repeats)))
        return 0

    report = {
        "benchmark": "model_forward",
        "config": args.config,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
    }
    for name in [p.strip() for p in args.precisions.split(",") if p.strip()]:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--config",
               args.config, "--resolution", str(args.resolution), "--repeats",
               str(args.repeats), "--threads", str(report["threads"])]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            report[name] = {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        report["params"] = result.pop("params")
        report[name] = result
    report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
