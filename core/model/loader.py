"""Find, check and load VRMBG weights into a ready-to-run module.

Sources, in the order a name is tried: the word ``demo`` (the bundled demo model), an existing
local folder or ``.safetensors`` file, then a Hugging Face repo id (default
``briaai/VRMBG-3.0``). Only safetensors are ever read: pickle checkpoints (``.bin``, ``.pt``,
``.pth``, ``.ckpt``) can run code when loaded, so they are refused before being opened.

The weights normally go into the built-in architecture (``network.VRMBGNet``), whose variant comes
from our ``config.json`` or, when that is absent or foreign, from the tensor shapes. With
``trust_remote_code=True`` the repository's own ``model.py`` is imported and built instead.
Every load is ``strict``: a key or shape mismatch is an error that names the file and keys.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..errors import ModelError
from .config import CONFIG_NAME, ModelConfig
from .fingerprint import combine, read_header, weights_fingerprint

DEFAULT_REPO = "briaai/VRMBG-3.0"
WEIGHTS_NAME = "model.safetensors"
INDEX_SUFFIX = ".safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".pck", ".tar")
OUR_ARCHITECTURE = "vrmbg-birefnet"
DEMO_FOLDER = Path(__file__).resolve().parent.parent / "demo" / "weights" / "demo"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_FILES = ["config.json", "*.safetensors", "*" + INDEX_SUFFIX]
_LOCAL_HINT = "or point --model at a local folder holding config.json + model.safetensors"


@dataclass
class LoadedModel:
    """A module ready for inference plus what the cache needs to know about it.

    `fingerprint` covers the weights' tensors, the architecture config and (for remote code)
    the model code, so it changes whenever the mattes could change.
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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def parameter_count(self) -> int:
        """Number of learnable parameters of the module."""
        return sum(p.numel() for p in self.module.parameters())


@dataclass
class _Located:
    """Where the weights of a source are on local disk."""

    folder: Path | None          # the model folder (None for a bare .safetensors file)
    weights: list[Path]
    label: str                   # what the user asked for, for messages and LoadedModel.source


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
        module, config, code_digest = _build_remote(located, raw_config,
                                                    _read_weights(located.weights))
        variant_from = "model.py"
    else:
        stored = _stored_tensors(headers)
        config, variant_from = _builtin_config(located, raw_config, stored)
        module = _build_builtin(config, stored, located, raw_config, torch_device, dtype)
        code_digest = ""
    module = _prepare(module, torch_device, dtype)
    return LoadedModel(
        module=module, config=config, device=torch_device, dtype=dtype,
        fingerprint=model_fingerprint(located.weights, config, code_digest),
        source=located.label, files=tuple(str(p) for p in located.weights),
        stored_dtype=_stored_dtype(headers), remote_code=trust_remote_code,
        variant_from=variant_from)


def save_model(module: nn.Module, config: ModelConfig, folder: str | os.PathLike) -> str:
    """Write `config.json` + `model.safetensors` into folder atomically; returns the folder.

    Each file goes to a temp name in the same folder, is fsync'd and renamed into place, so a
    reader always sees whole files; nothing partial is left on error.
    """
    from safetensors.torch import save_file

    folder_path = Path(folder)
    created = not folder_path.exists()
    try:
        folder_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create model folder: {exc.strerror or exc}", path=folder) from exc
    tensors = {name: t.detach().to("cpu").contiguous().clone()
               for name, t in module.state_dict().items()}
    metadata = {"format": "pt", "vrmbg_architecture": OUR_ARCHITECTURE, "vrmbg_config": config.name}
    try:
        _atomic(folder_path / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata=metadata))
        _atomic(folder_path / CONFIG_NAME,
                lambda tmp: Path(tmp).write_text(config.to_json(), encoding="utf-8"))
    except BaseException:
        if created:
            _remove_if_empty(folder_path)
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
           trust_remote_code: bool = False) -> _Located:
    """Turn a source string into local safetensors files (downloading from the hub if needed)."""
    source = (source or DEFAULT_REPO).strip()
    if source == "demo":
        return _locate_demo()
    path = Path(os.path.expanduser(source))
    if path.exists():
        if path.is_dir():
            return _Located(path, _folder_weights(path), source)
        return _Located(None, [_single_file(path)], source)
    if _REPO_ID.match(source) and not source.startswith((".", "/", "~")):
        folder = _download(source, revision=revision, token=token, cache_dir=cache_dir,
                           trust_remote_code=trust_remote_code)
        label = f"{source}@{revision}" if revision else source
        return _Located(folder, _folder_weights(folder, hub_repo=source), label)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        _refuse_pickle(path)
    raise ModelError("no such model file or folder, and not a Hugging Face repo id "
                     "(like briaai/VRMBG-3.0)", path=source)


def _locate_demo() -> _Located:
    """The demo model bundled with the package."""
    if not (DEMO_FOLDER / WEIGHTS_NAME).is_file():
        raise ModelError("the bundled demo model is missing from this installation "
                         "(reinstall vrmbg, or use --model with real weights)", path=DEMO_FOLDER)
    return _Located(DEMO_FOLDER, _folder_weights(DEMO_FOLDER), "demo")


def _single_file(path: Path) -> Path:
    """Check a file given directly: safetensors only."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        _refuse_pickle(path)
    if suffix != ".safetensors":
        raise ModelError(f"unsupported weights file type {suffix or '(none)'!r}: "
                         "expected a .safetensors file or a model folder", path=path)
    read_header(path)  # refuses a pickle renamed to .safetensors
    return path


def _folder_weights(folder: Path, hub_repo: str = "") -> list[Path]:
    """The safetensors files that make up the model in a folder."""
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
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"cannot read the shard index: {exc}", path=index) from exc
    files = [index.parent / name for name in names]
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        raise ModelError(f"shard(s) missing: {', '.join(missing[:3])}", path=index.parent)
    return files


def _refuse_pickle(path: Path) -> None:
    """Refuse a pickle checkpoint without opening it."""
    raise ModelError(f"{path.suffix} checkpoints are pickle files, which are refused because "
                     "loading them can run arbitrary code; use .safetensors weights", path=path)


# --------------------------------------------------------------------------------------------
# Hugging Face hub
# --------------------------------------------------------------------------------------------
def _hub_offline() -> bool:
    """True when HF_HUB_OFFLINE is set now (read at call time, not only at import)."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants
        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # an old or broken huggingface_hub: the env var is the source of truth
        return False


def _download(repo_id: str, *, revision: str, token: str | bool | None,
              cache_dir: str | os.PathLike | None, trust_remote_code: bool) -> Path:
    """Fetch config.json + safetensors (+ *.py with trust_remote_code) into the HF cache."""
    import huggingface_hub

    patterns = list(_HUB_FILES) + (["*.py"] if trust_remote_code else [])
    offline = _hub_offline()
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id, revision=revision or None, token=token,
            cache_dir=os.fspath(cache_dir) if cache_dir else None,
            allow_patterns=patterns, local_files_only=offline)
    except Exception as exc:
        mapped = hub_error(exc, repo_id, revision=revision, offline=offline)
        if mapped is None:
            raise
        raise mapped from exc
    return Path(folder)


def hub_error(exc: BaseException, repo_id: str, *, revision: str = "",
              offline: bool = False) -> ModelError | None:
    """A one-line ModelError telling the user what to do about a hub failure (None: not ours)."""
    from huggingface_hub import errors as hub

    page = f"https://huggingface.co/{repo_id}"
    login = "run `hf auth login` or set HF_TOKEN"
    if isinstance(exc, hub.GatedRepoError):
        return ModelError(f"{repo_id} is gated: accept its licence at {page} with your account, "
                          f"then {login}; {_LOCAL_HINT}")
    if isinstance(exc, hub.RepositoryNotFoundError):
        return ModelError(f"Hugging Face repository {repo_id} not found, or private and you are "
                          f"not logged in: check the name, {login}, {_LOCAL_HINT} "
                          f"(no local folder of that name exists)")
    if isinstance(exc, hub.RevisionNotFoundError):
        return ModelError(f"revision {revision!r} not found in {repo_id}: check --revision "
                          "(a branch, tag or commit hash)")
    if isinstance(exc, (hub.LocalEntryNotFoundError, getattr(hub, "OfflineModeIsEnabled", ()))):
        if offline:
            return ModelError(f"{repo_id} is not in the local Hugging Face cache and downloads "
                              "are off (HF_HUB_OFFLINE=1): download it once online, set "
                              f"HF_HUB_CACHE to the cache that has it, {_LOCAL_HINT}")
        return ModelError(f"cannot reach huggingface.co to fetch {repo_id} and it is not in the "
                          f"local cache: check the network or proxy, {_LOCAL_HINT}")
    if isinstance(exc, hub.HfHubHTTPError):
        return _http_error(exc, repo_id, page, login)
    if isinstance(exc, hub.HFValidationError):
        return ModelError(f"{repo_id!r} is not a valid Hugging Face repo id or revision: {exc}")
    if _is_connection_error(exc):
        return ModelError(f"cannot reach huggingface.co to fetch {repo_id}: check the network or "
                          f"proxy, set HF_HUB_OFFLINE=1 to use the local cache, {_LOCAL_HINT}")
    return None


def _http_error(exc: BaseException, repo_id: str, page: str, login: str) -> ModelError:
    """Message for an HTTP error status from the hub."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status in (401, 403):
        return ModelError(f"access to {repo_id} denied (HTTP {status}): {login} with a token that "
                          f"can read it, and accept the licence at {page}; {_LOCAL_HINT}")
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ModelError(f"Hugging Face error fetching {repo_id} (HTTP {status}): {detail}; "
                      f"try again later, {_LOCAL_HINT}")


def _is_connection_error(exc: BaseException) -> bool:
    """Network failures from the HTTP stack huggingface_hub uses (httpx / requests) or the OS."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    for module_name, names in (("httpx2", ("TransportError", "TimeoutException")),
                               ("httpx", ("TransportError", "TimeoutException")),
                               ("requests", ("ConnectionError", "Timeout"))):
        module = sys.modules.get(module_name)
        classes = tuple(getattr(module, n) for n in names if module and hasattr(module, n))
        if classes and isinstance(exc, classes):
            return True
    return False


# --------------------------------------------------------------------------------------------
# Reading weights and configs
# --------------------------------------------------------------------------------------------
def _read_weights(files: list[Path]) -> dict[str, torch.Tensor]:
    """All tensors of the safetensors files, on CPU; duplicate names across shards refused."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            part = load_file(os.fspath(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot read weights: {_first_line(exc)}", path=path) from exc
        duplicate = next((k for k in part if k in state), None)
        if duplicate is not None:
            raise ModelError(f"tensor {duplicate!r} appears in two weight files", path=path)
        state.update(part)
    return state


def _read_raw_config(located: _Located) -> dict[str, Any] | None:
    """The JSON of config.json beside the weights, or None when there is none."""
    folder = located.folder or located.weights[0].parent
    path = folder / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read model config: {_first_line(exc)}", path=path) from exc
    if not isinstance(data, dict):
        raise ModelError("model config is not a JSON object", path=path)
    return data


def _is_ours(raw_config: Mapping[str, Any] | None) -> bool:
    """True for a config.json written by ModelConfig (not a repository's own format)."""
    return bool(raw_config) and raw_config.get("architecture") == OUR_ARCHITECTURE


def _builtin_config(located: _Located, raw_config: dict[str, Any] | None,
                    state: Mapping[str, Any]) -> tuple[ModelConfig, str]:
    """Our config.json when present, else the variant read from the tensor shapes."""
    if _is_ours(raw_config):
        return ModelConfig.from_dict(raw_config), CONFIG_NAME  # type: ignore[arg-type]
    from .variants import detect_config

    try:
        return detect_config(state), "tensor shapes"
    except ModelError as exc:
        raise ModelError(f"{exc.message}{_remote_hint(located, raw_config)}",
                         path=exc.path or _where(located), hint=exc.hint) from exc


@dataclass(frozen=True)
class _StoredTensor:
    """Where one tensor lives on disk; `shape` is all variant detection and key checks need."""

    path: str
    name: str                   # the name in the file (before wrapper prefixes are stripped)
    shape: tuple[int, ...]


def _stored_tensors(headers: list) -> dict[str, _StoredTensor]:
    """Every tensor of the files by its model key (wrapper prefixes like "module." stripped)."""
    from .variants import strip_wrappers

    stored: dict[str, _StoredTensor] = {}
    for header in headers:
        for entry in header.tensors:
            if entry.name in stored:
                raise ModelError(f"tensor {entry.name!r} appears in two weight files",
                                 path=header.path)
            stored[entry.name] = _StoredTensor(header.path, entry.name, entry.shape)
    return strip_wrappers(stored)


def _build_builtin(config: ModelConfig, stored: Mapping[str, _StoredTensor], located: _Located,
                   raw_config: Mapping[str, Any] | None, device: torch.device,
                   dtype: torch.dtype) -> nn.Module:
    """VRMBGNet(config) with the weights loaded strictly, straight into the target dtype.

    The module is allocated once, empty, in the target dtype and filled tensor by tensor from
    the files, so peak memory is about one copy of the weights (no random init, no second
    full-precision copy).
    """
    from .network import VRMBGNet

    with torch.device("meta"):
        module = VRMBGNet(config)
    _check_keys(module, stored, located, f"the built-in '{config.name}' architecture",
                _remote_hint(located, raw_config))
    persistent = set(module.state_dict())
    if any(name not in persistent for name, _ in module.named_buffers()):
        module = VRMBGNet(config).to(device=device, dtype=dtype)  # buffers computed in __init__
    else:
        module = module.to(dtype=dtype).to_empty(device=device)
    _fill(module, stored)
    return module


def _fill(module: nn.Module, stored: Mapping[str, _StoredTensor]) -> None:
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
                raise ModelError(f"cannot read weights: {_first_line(exc)}", path=path) from exc


def _check_keys(module: nn.Module, state: Mapping[str, Any], located: _Located,
                what: str, hint: str = "") -> None:
    """ModelError naming the file and the first mismatching keys when a strict load would fail."""
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
                     path=_where(located))


def _remote_hint(located: _Located, raw_config: Mapping[str, Any] | None) -> str:
    """Suffix telling the user about --trust-remote-code when the weights ship their own code."""
    folder = located.folder
    has_code = folder is not None and (folder / "model.py").is_file()
    if has_code or (raw_config and "auto_map" in raw_config):
        return ("; these weights ship their own model code: rerun with --trust-remote-code to "
                "use it (it executes downloaded code, only for repositories you trust)")
    return ""


def _where(located: _Located) -> str:
    """The path to name in messages: the single weights file, or the folder."""
    return str(located.weights[0] if len(located.weights) == 1 else located.folder)


# --------------------------------------------------------------------------------------------
# The repository's own model code (opt-in)
# --------------------------------------------------------------------------------------------
def _build_remote(located: _Located, raw_config: dict[str, Any] | None,
                  state: Mapping[str, torch.Tensor]) -> tuple[nn.Module, ModelConfig, str]:
    """Import the folder's model.py, build its class from config.json, load weights strictly."""
    folder = located.folder
    if folder is None or not any(folder.glob("*.py")):
        raise ModelError("--trust-remote-code was given but there is no model.py beside the "
                         "weights", path=folder or located.weights[0])
    raw = dict(raw_config or {})
    model_ref, config_ref = _remote_entry_points(folder, raw)
    package = _import_folder(folder)
    cls = _resolve_ref(package, folder, model_ref)
    config_obj = _make_remote_config(package, folder, config_ref, raw) if config_ref else raw
    module = _instantiate(cls, config_obj, raw, folder)
    if not isinstance(module, nn.Module):
        raise ModelError(f"{model_ref} did not build a torch module", path=folder)
    _check_keys(module, state, located, f"the repository's {model_ref}")
    module.load_state_dict(state, strict=True)
    return module, _remote_config(raw, state, model_ref), _code_digest(folder)


def _remote_entry_points(folder: Path, raw: Mapping[str, Any]) -> tuple[str, str]:
    """("module.Class" of the model, "module.Class" of its config or "") from config.json."""
    auto_map = raw.get("auto_map") or {}
    if isinstance(auto_map, Mapping):
        model_ref = next((str(v) for k, v in auto_map.items() if str(k).startswith("AutoModel")),
                         "")
        config_ref = str(auto_map.get("AutoConfig", ""))
        if model_ref:
            return _strip_repo(model_ref), _strip_repo(config_ref)
    if not (folder / "model.py").is_file():
        raise ModelError("config.json has no auto_map and there is no model.py", path=folder)
    architectures = raw.get("architectures") or []
    name = str(architectures[0]) if architectures else ""
    return f"model.{name}" if name else "model", ""


def _strip_repo(ref: str) -> str:
    """auto_map values may be "repo--module.Class"; keep "module.Class"."""
    return ref.split("--", 1)[-1] if ref else ""


def _import_folder(folder: Path) -> str:
    """Make the folder importable as a private package; returns the package name."""
    name = "vrmbg_remote_" + hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    if name not in sys.modules:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        sys.modules[name] = importlib.util.module_from_spec(spec)
    return name


def _import_module(package: str, folder: Path, module_name: str) -> Any:
    """Import module_name from the remote folder (relative and plain imports both work)."""
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(f"{package}.{module_name}")
    except ModuleNotFoundError as exc:
        raise ModelError(f"the repository's model code needs the Python package {exc.name!r} "
                         f"(pip install {exc.name})", path=folder / f"{module_name}.py") from exc
    except Exception as exc:  # the downloaded code itself failed
        raise ModelError(f"importing the repository's model code failed: "
                         f"{type(exc).__name__}: {_first_line(exc)}",
                         path=folder / f"{module_name}.py") from exc
    finally:
        try:
            sys.path.remove(str(folder))
        except ValueError:
            pass


def _resolve_ref(package: str, folder: Path, ref: str) -> type:
    """The class named by "module.Class" (or the only nn.Module subclass of a bare module)."""
    module_name, _, class_name = ref.partition(".")
    module = _import_module(package, folder, module_name)
    if class_name:
        cls = getattr(module, class_name, None)
        if not isinstance(cls, type):
            raise ModelError(f"{module_name}.py has no class {class_name}", path=folder)
        return cls
    found = [v for v in vars(module).values() if isinstance(v, type)
             and issubclass(v, nn.Module) and v.__module__ == module.__name__]
    if len(found) != 1:
        raise ModelError(f"{module_name}.py defines {len(found)} torch modules; name the one to "
                         "use in config.json 'architectures'", path=folder)
    return found[0]


def _make_remote_config(package: str, folder: Path, ref: str, raw: dict[str, Any]) -> Any:
    """Instantiate the repository's config class from config.json."""
    cls = _resolve_ref(package, folder, ref)
    values = {k: v for k, v in raw.items() if k not in ("auto_map", "architectures")}
    try:
        if hasattr(cls, "from_dict"):
            return cls.from_dict(values)
        return cls(**values)
    except Exception as exc:
        raise ModelError(f"cannot build {ref} from config.json: {_first_line(exc)}",
                         path=folder) from exc


def _instantiate(cls: type, config_obj: Any, raw: Mapping[str, Any], folder: Path) -> Any:
    """Build the model class: cls(config) for a one-argument constructor, else keyword args."""
    try:
        if isinstance(getattr(cls, "__dict__", {}).get("from_config"), classmethod):
            return cls.from_config(config_obj)
        params = [p for p in inspect.signature(cls).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if len(params) == 1 and params[0].name in ("config", "cfg"):
            return cls(config_obj)
        names = {p.name for p in params}
        return cls(**{k: v for k, v in raw.items() if k in names})
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"building {cls.__name__} from config.json failed: "
                         f"{type(exc).__name__}: {_first_line(exc)}", path=folder) from exc


def _remote_config(raw: Mapping[str, Any], state: Mapping[str, torch.Tensor],
                   model_ref: str) -> ModelConfig:
    """A ModelConfig describing a remote-code model (variant from shapes when readable)."""
    from .variants import detect_config

    try:
        config = detect_config(state)
    except Exception:  # the remote code's layout need not be ours
        size = raw.get("resolution") or raw.get("image_size") or 1024
        size = int(size[0] if isinstance(size, (list, tuple)) else size)
        config = ModelConfig(name="remote", resolution=size)
    return config.replace(extra={**config.extra, "remote_code": model_ref})


def _code_digest(folder: Path) -> str:
    """SHA-256 over the folder's Python files, so changed model code changes the fingerprint."""
    hasher = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        hasher.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return hasher.hexdigest()


# --------------------------------------------------------------------------------------------
# Finishing
# --------------------------------------------------------------------------------------------
def _prepare(module: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """Eval mode, target device and dtype (channels_last on CPU), gradients off."""
    try:
        from .devices import prepare_module
    except ImportError:
        prepare_module = None
    if prepare_module is not None:
        module = prepare_module(module, device, dtype) or module
    else:
        module = module.to(device=device, dtype=dtype)
        if device.type == "cpu":
            module = module.to(memory_format=torch.channels_last)
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


def _stored_dtype(headers: list) -> str:
    """The dtype the stored weights use, e.g. "float32" (integer buffers such as BatchNorm
    counters are ignored; "mixed: a, b" when the floating tensors disagree)."""
    names: list[str] = []
    for header in headers:
        names.extend(n for n in header.dtypes if n not in names)
    floats = [n for n in names if n.startswith(("float", "bfloat"))] or names
    return floats[0] if len(floats) == 1 else ("mixed: " + ", ".join(floats) if floats else "")


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    """Write through a temp file in the same folder, fsync, rename; temp removed on error."""
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; model folders are shared
        with open(tmp, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ModelError(f"cannot write model file: {exc.strerror or exc}", path=path) from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _remove_if_empty(folder: Path) -> None:
    """Remove a folder we created when nothing was written into it."""
    try:
        folder.rmdir()
    except OSError:
        pass


def _first_line(exc: BaseException) -> str:
    """First line of an exception's text (messages stay one line)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

