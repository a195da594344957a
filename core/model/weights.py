"""Safetensors weights on local disk: finding the files, reading them, loading them strictly.

Only safetensors are ever read: pickle checkpoints (``.bin``, ``.pt``, ``.pth``, ``.ckpt``) can
run code when loaded, so they are refused before being opened. The built-in architecture is
built on the meta device and filled tensor by tensor from the files; every load is ``strict``,
and a key or shape mismatch is a ModelError that names the file and the keys.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import ModelError, first_line
from .config import ModelConfig
from .fingerprint import read_header

WEIGHTS_NAME = "model.safetensors"
INDEX_SUFFIX = ".safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".pck", ".tar")


@dataclass
class Located:
    """Where the weights of a source are on local disk."""

    folder: Path | None          # the model folder (None for a bare .safetensors file)
    weights: list[Path]
    label: str                   # what the user asked for, for messages and LoadedModel.source


@dataclass(frozen=True)
class StoredTensor:
    """Where one tensor lives on disk; `shape` is all variant detection and key checks need."""

    path: str
    name: str                   # the name in the file (before wrapper prefixes are stripped)
    shape: tuple[int, ...]


# --------------------------------------------------------------------------------------------
# Finding the files
# --------------------------------------------------------------------------------------------
def single_file(path: Path) -> Path:
    """Check a weights file given directly and return it: safetensors only.

    Pickle suffixes are refused unopened, and the header is read so that a pickle renamed to
    ``.safetensors`` is refused too.
    """
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        refuse_pickle(path)
    if suffix != ".safetensors":
        raise ModelError(f"unsupported weights file type {suffix or '(none)'!r}: "
                         "expected a .safetensors file or a model folder", path=path)
    read_header(path)  # refuses a pickle renamed to .safetensors
    return path


def folder_weights(folder: Path, hub_repo: str = "") -> list[Path]:
    """The safetensors files that make up the model in a folder.

    ``model.safetensors`` wins, then a shard index, then a lone ``.safetensors`` file; each
    header is read up front so a bad file fails here, naming it. `hub_repo` only changes the
    wording of the messages (the folder is a downloaded repository).
    """
    index = sorted(folder.glob("*" + INDEX_SUFFIX))
    if (folder / WEIGHTS_NAME).is_file():
        files = [folder / WEIGHTS_NAME]
    elif index:
        files = _index_files(index[0])
    else:
        files = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
        if len(files) > 1:
            names = ", ".join(p.name for p in files[:4])
            raise ModelError(f"several .safetensors files ({names}) and no model.safetensors: "
                             "pass the file to use with --model", path=folder)
    if not files:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        where = f"repository {hub_repo}" if hub_repo else "folder"
        if pickles:
            raise ModelError(f"the {where} has only pickle weights ({', '.join(pickles[:3])}), "
                             "which are refused because loading them can run arbitrary code; "
                             "convert them to .safetensors", path=folder)
        raise ModelError(f"no model.safetensors in the {where}", path=folder)
    for path in files:
        read_header(path)
    return files


def _index_files(index: Path) -> list[Path]:
    """Shard files named by a `*.safetensors.index.json` weight map."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ModelError(f"cannot read the shard index: {exc}", path=index) from exc
    files = [index.parent / name for name in names]
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        raise ModelError(f"shard(s) missing: {', '.join(missing[:3])}", path=index.parent)
    return files


def refuse_pickle(path: Path) -> None:
    """Raise ModelError for a pickle checkpoint without opening it (loading can run code)."""
    raise ModelError(f"{path.suffix} checkpoints are pickle files, which are refused because "
                     "loading them can run arbitrary code; use .safetensors weights", path=path)


# --------------------------------------------------------------------------------------------
# Reading tensors and headers
# --------------------------------------------------------------------------------------------
def read_weights(files: list[Path]) -> dict[str, torch.Tensor]:
    """All tensors of the safetensors files, on CPU; duplicate names across shards refused.

    Used where a whole state dict is needed at once (the repository's own model code).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            part = load_file(os.fspath(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot read weights: {first_line(exc)}", path=path) from exc
        duplicate = next((k for k in part if k in state), None)
        if duplicate is not None:
            raise ModelError(f"tensor {duplicate!r} appears in two weight files", path=path)
        state.update(part)
    return state


def stored_tensors(headers: list) -> dict[str, StoredTensor]:
    """Every tensor of the files by its model key (wrapper prefixes like "module." stripped).

    Built from the headers alone, so variant detection and key checks need no tensor data.
    """
    from .variants import strip_wrappers

    stored: dict[str, StoredTensor] = {}
    for header in headers:
        for entry in header.tensors:
            if entry.name in stored:
                raise ModelError(f"tensor {entry.name!r} appears in two weight files",
                                 path=header.path)
            stored[entry.name] = StoredTensor(header.path, entry.name, entry.shape)
    return strip_wrappers(stored)


def stored_dtype(headers: list) -> str:
    """The dtype the stored weights use, e.g. "float32", for LoadedModel.stored_dtype.

    Integer buffers such as BatchNorm counters are ignored; "mixed: a, b" when the floating
    tensors disagree.
    """
    names: list[str] = []
    for header in headers:
        names.extend(n for n in header.dtypes if n not in names)
    floats = [n for n in names if n.startswith(("float", "bfloat"))] or names
    return floats[0] if len(floats) == 1 else ("mixed: " + ", ".join(floats) if floats else "")


# --------------------------------------------------------------------------------------------
# Loading into the built-in architecture
# --------------------------------------------------------------------------------------------
def build_builtin(config: ModelConfig, stored: Mapping[str, StoredTensor], located: Located,
                  hint: str, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """VRMBGNet(config) with the weights loaded strictly, straight into the target dtype.

    The module is allocated once, empty, in the target dtype and filled tensor by tensor from
    the files, so peak memory is about one copy of the weights (no random init, no second
    full-precision copy). `hint` is appended to a key/shape mismatch message.
    """
    from .network import VRMBGNet

    with torch.device("meta"):
        module = VRMBGNet(config)
    check_keys(module, stored, located, f"the built-in '{config.name}' architecture", hint)
    persistent = set(module.state_dict())
    if any(name not in persistent for name, _ in module.named_buffers()):
        module = VRMBGNet(config).to(device=device, dtype=dtype)  # buffers computed in __init__
    else:
        module = module.to(dtype=dtype).to_empty(device=device)
    _fill(module, stored)
    return module


def _fill(module: nn.Module, stored: Mapping[str, StoredTensor]) -> None:
    """Copy every stored tensor into the module's matching parameter or buffer (cast as needed)."""
    from safetensors import SafetensorError, safe_open

    targets = module.state_dict(keep_vars=True)
    by_file: dict[str, list[tuple[str, str]]] = {}
    for key, item in stored.items():
        by_file.setdefault(item.path, []).append((key, item.name))
    with torch.no_grad():
        for path, names in by_file.items():
            try:
                with safe_open(path, framework="pt", device="cpu") as handle:
                    for key, name in names:
                        targets[key].copy_(handle.get_tensor(name))
            except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
                raise ModelError(f"cannot read weights: {first_line(exc)}", path=path) from exc


def check_keys(module: nn.Module, state: Mapping[str, Any], located: Located,
               what: str, hint: str = "") -> None:
    """Raise ModelError naming the file and the first mismatching keys when a strict load
    would fail, before any tensor is copied (`state` values need only a `.shape`)."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {expected[k]}" for k in expected
              if k in state and tuple(state[k].shape) != expected[k]]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("wrong shape (file vs model)", shapes)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            parts.append(f"{label}: {', '.join(items[:3])}{more}")
    raise ModelError(f"weights do not match {what}: {'; '.join(parts)}{hint}",
                     path=where(located))


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------
def where(located: Located) -> str:
    """The path to name in messages: the single weights file, or the folder."""
    return str(located.weights[0] if len(located.weights) == 1 else located.folder)

