"""Find, check and load VRMBG weights into a ready-to-run module (the public API).

Sources, in the order a name is tried: the word ``demo`` (the bundled demo model), an existing
local folder or ``.safetensors`` file, then a Hugging Face repo id (default
``briaai/VRMBG-3.0``). Only safetensors are ever read: pickle checkpoints (``.bin``, ``.pt``,
``.pth``, ``.ckpt``) can run code when loaded, so they are refused before being opened.

The weights normally go into the built-in architecture (``network.VRMBGNet``), whose variant comes
from our ``config.json`` or, when that is absent or foreign, from the tensor shapes. With
``trust_remote_code=True`` the repository's own ``model.py`` is imported and built instead.
Every load is ``strict``: a key or shape mismatch is an error that names the file and keys.

The work is split by concern: ``weights`` (safetensors files, strict loading), ``hub``
(Hugging Face downloads and their errors) and ``remote_code`` (the repository's own model code).
Their public names used elsewhere are re-exported here.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..fs import atomic_write, atomic_write_text, make_folder, remove_empty_folder
from ..errors import ModelError, first_line
from .config import ARCHITECTURE, CONFIG_NAME, ModelConfig
from .families import ModelKind, identify, with_published_resolution
from .fingerprint import combine, read_header, weights_fingerprint
from .hub import download, hub_error
from .remote_code import build_remote, remote_hint
from .weights import (INDEX_SUFFIX, PICKLE_SUFFIXES, WEIGHTS_NAME, Located, build_builtin,
                      folder_weights, read_weights, refuse_pickle, single_file,
                      stored_dtype, stored_tensors, where)

__all__ = ["DEFAULT_REPO", "DEMO_FOLDER", "INDEX_SUFFIX", "OUR_ARCHITECTURE", "PICKLE_SUFFIXES",
           "WEIGHTS_NAME", "LoadedModel", "Located", "hub_error", "init_random", "load_model",
           "locate", "model_fingerprint", "save_model"]

DEFAULT_REPO = "briaai/VRMBG-3.0"
OUR_ARCHITECTURE = ARCHITECTURE
DEMO_FOLDER = Path(__file__).resolve().parent.parent / "demo" / "weights" / "demo"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LoadedModel:
    """A module ready for inference plus what the cache needs to know about it.

    `fingerprint` covers the weights' tensors, the architecture config and (for remote code)
    the model code, so it changes whenever the mattes could change. `kind` says which
    published model it is and whether it is temporal (fed the previous frame and its matte)
    or per-frame (each frame's matte depends on that frame alone).
    """

    module: nn.Module
    config: ModelConfig
    device: torch.device
    dtype: torch.dtype
    fingerprint: str
    source: str
    files: tuple[str, ...] = ()          # the safetensors files the weights came from
    stored_dtype: str = ""               # dtype of the tensors on disk, e.g. "float32"
    remote_code: bool = False            # built from the repository's own model.py
    variant_from: str = ""               # "config.json" or "tensor shapes"
    kind: ModelKind | None = None        # family, variant, temporal or per-frame
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def temporal(self) -> bool:
        """True when each frame also sees the previous frame and its matte (6-channel input)."""
        if self.kind is not None:
            return self.kind.temporal
        return int(getattr(self.config, "in_channels", 6)) == 6

    @property
    def family(self) -> str:
        """The published family, e.g. "VRMBG-3.0", "BiRefNet", "demo" ("" when unknown)."""
        return self.kind.family if self.kind is not None else ""

    @property
    def kind_label(self) -> str:
        """One phrase for logs and matte metadata, e.g. "BiRefNet HR (per-frame)"."""
        if self.kind is not None:
            return self.kind.label
        return "temporal" if self.temporal else "per-frame"

    @property
    def parameter_count(self) -> int:
        """Number of learnable parameters of the module."""
        return sum(p.numel() for p in self.module.parameters())


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def load_model(source: str = DEFAULT_REPO, *, device: str = "auto", precision: str = "auto",
               revision: str = "", token: str | bool | None = None,
               cache_dir: str | os.PathLike | None = None,
               trust_remote_code: bool = False) -> LoadedModel:
    """Load weights from `source` onto a device at a precision, ready for `FrameStepper`.

    `token=None` lets huggingface_hub find a token itself (HF_TOKEN, `hf auth login`);
    HF_HUB_OFFLINE=1 makes hub sources resolve from the local cache only. Raises ModelError
    (a one-line message saying what to do) for anything wrong with the weights.
    """
    from .devices import resolve_device

    torch_device, dtype = resolve_device(device, precision)
    located = locate(source, revision=revision, token=token, cache_dir=cache_dir,
                     trust_remote_code=trust_remote_code)
    raw_config = _read_raw_config(located)
    headers = [read_header(p) for p in located.weights]
    if trust_remote_code:
        module, config, code_digest = build_remote(located, raw_config,
                                                   read_weights(located.weights))
        variant_from = "model.py"
        kind = _kind(located, raw_config, config)
    else:
        stored = stored_tensors(headers)
        config, variant_from = _builtin_config(located, raw_config, stored)
        kind = _kind(located, raw_config, config)
        if variant_from != CONFIG_NAME:
            config = with_published_resolution(config, kind)
        module = build_builtin(config, stored, located, remote_hint(located, raw_config),
                               torch_device, dtype)
        code_digest = ""
    module = _prepare(module, torch_device, dtype)
    return LoadedModel(
        module=module, config=config, device=torch_device, dtype=dtype,
        fingerprint=model_fingerprint(located.weights, config, code_digest),
        source=located.label, files=tuple(str(p) for p in located.weights),
        stored_dtype=stored_dtype(headers), remote_code=trust_remote_code,
        variant_from=variant_from, kind=kind)


def save_model(module: nn.Module, config: ModelConfig, folder: str | os.PathLike) -> str:
    """Write `config.json` + `model.safetensors` into folder atomically; returns the folder.

    Each file goes to a temp name in the same folder, is fsync'd and renamed into place, so a
    reader always sees whole files; nothing partial is left on error.
    """
    from safetensors.torch import save_file

    folder_path = Path(folder)
    created = not folder_path.exists()
    try:
        make_folder(str(folder_path))
    except OSError as exc:
        raise ModelError(f"cannot create model folder: {exc.strerror or exc}", path=folder) from exc
    tensors = {name: t.detach().to("cpu").contiguous().clone()
               for name, t in module.state_dict().items()}
    metadata = {"format": "pt", "vrmbg_architecture": OUR_ARCHITECTURE, "vrmbg_config": config.name}
    try:
        atomic_write(str(folder_path / WEIGHTS_NAME),
                     lambda tmp: save_file(tensors, tmp, metadata=metadata))
        atomic_write_text(str(folder_path / CONFIG_NAME), config.to_json())
    except BaseException:
        if created:
            remove_empty_folder(str(folder_path))  # we made it and nothing was written
        raise
    return str(folder_path)


def init_random(folder: str | os.PathLike, config: str | ModelConfig = "tiny",
                seed: int = 0) -> str:
    """Write a random-weight model folder (same layout as real weights) for tests and dry runs.

    The same config and seed always give the same weights (and so the same fingerprint).
    """
    from .network import VRMBGNet

    cfg = ModelConfig.preset(config) if isinstance(config, str) else config
    cfg = cfg.replace(extra={**cfg.extra, "random_init_seed": int(seed)})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        module = VRMBGNet(cfg)
    module.eval()
    return save_model(module, cfg, folder)


# --------------------------------------------------------------------------------------------
# Finding the weights
# --------------------------------------------------------------------------------------------
def locate(source: str, *, revision: str = "", token: str | bool | None = None,
           cache_dir: str | os.PathLike | None = None,
           trust_remote_code: bool = False) -> Located:
    """Turn a source string into local safetensors files (downloading from the hub if needed)."""
    source = (source or DEFAULT_REPO).strip()
    if source == "demo":
        return _locate_demo()
    path = Path(os.path.expanduser(source))
    if path.exists():
        if path.is_dir():
            return Located(path, folder_weights(path), source)
        return Located(None, [single_file(path)], source)
    if _REPO_ID.match(source) and not source.startswith((".", "/", "~")):
        folder = download(source, revision=revision, token=token, cache_dir=cache_dir,
                          trust_remote_code=trust_remote_code)
        label = f"{source}@{revision}" if revision else source
        return Located(folder, folder_weights(folder, hub_repo=source), label)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        refuse_pickle(path)
    raise ModelError("no such model file or folder, and not a Hugging Face repo id "
                     "(like briaai/VRMBG-3.0)", path=source)


def _locate_demo() -> Located:
    """The demo model bundled with the package."""
    if not (DEMO_FOLDER / WEIGHTS_NAME).is_file():
        raise ModelError("the bundled demo model is missing from this installation "
                         "(reinstall vrmbg, or use --model with real weights)", path=DEMO_FOLDER)
    return Located(DEMO_FOLDER, folder_weights(DEMO_FOLDER), "demo")


# --------------------------------------------------------------------------------------------
# config.json and the built-in variant
# --------------------------------------------------------------------------------------------
def _read_raw_config(located: Located) -> dict[str, Any] | None:
    """The JSON of config.json beside the weights, or None when there is none."""
    folder = located.folder or located.weights[0].parent
    path = folder / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelError(f"cannot read model config: {first_line(exc)}", path=path) from exc
    if not isinstance(data, dict):
        raise ModelError("model config is not a JSON object", path=path)
    return data


def _kind(located: Located, raw_config: dict[str, Any] | None,
          config: ModelConfig) -> ModelKind:
    """Family, variant and kind of the located weights (see `families`)."""
    source = located.label if located.folder != DEMO_FOLDER else "demo"
    return identify(source, raw_config, located.folder, config, ours=_is_ours(raw_config))


def _is_ours(raw_config: Mapping[str, Any] | None) -> bool:
    """True for a config.json written by ModelConfig (not a repository's own format)."""
    return bool(raw_config) and raw_config.get("architecture") == OUR_ARCHITECTURE


def _builtin_config(located: Located, raw_config: dict[str, Any] | None,
                    state: Mapping[str, Any]) -> tuple[ModelConfig, str]:
    """Our config.json when present, else the variant read from the tensor shapes."""
    if _is_ours(raw_config):
        folder = located.folder or located.weights[0].parent
        try:
            return ModelConfig.from_dict(raw_config), CONFIG_NAME  # type: ignore[arg-type]
        except ModelError as exc:
            raise ModelError(exc.message, path=exc.path or folder / CONFIG_NAME,
                             hint=exc.hint) from None
    from .variants import detect_config

    try:
        return detect_config(state), "tensor shapes"
    except ModelError as exc:
        raise ModelError(f"{exc.message}{remote_hint(located, raw_config)}",
                         path=exc.path or where(located), hint=exc.hint) from exc


# --------------------------------------------------------------------------------------------
# Finishing
# --------------------------------------------------------------------------------------------
def _prepare(module: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """Eval mode, target device and dtype (channels_last on CPU), gradients off.

    Remote-code modules get the same treatment as ours, so both run the card's loop alike.
    """
    from .devices import prepare_module

    module = prepare_module(module, device, dtype) or module
    module.eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return module


def model_fingerprint(files: list[Path] | list[str], config: ModelConfig,
                      code_digest: str = "") -> str:
    """Weights identity: tensors + architecture config (+ remote code), hex SHA-256.

    The config's free-form `name` and `extra` notes are left out: they do not change results.
    """
    arch = {k: v for k, v in config.to_dict().items() if k not in ("name", "extra")}
    parts = [("weights", weights_fingerprint(files)),
             ("config", json.dumps(arch, sort_keys=True))]
    if code_digest:
        parts.append(("code", code_digest))
    return combine(parts)
