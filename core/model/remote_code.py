"""The repository's own model code (``trust_remote_code=True``, opt-in).

The folder beside the weights is imported as a private package; the model class comes from
config.json's ``auto_map`` (or ``architectures`` / the only torch module of ``model.py``), is
built from config.json and loaded strictly. A digest of the Python files goes into the
fingerprint, so changed code invalidates cached mattes.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import ModelError, first_line
from .config import ModelConfig
from .weights import Located, check_keys


def build_remote(located: Located, raw_config: dict[str, Any] | None,
                 state: Mapping[str, torch.Tensor]) -> tuple[nn.Module, ModelConfig, str]:
    """Import the folder's model.py, build its class from config.json, load weights strictly.

    Returns (module, a ModelConfig describing it, the code digest for the fingerprint).
    This executes downloaded code, which is why it only runs on explicit request.
    """
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
    check_keys(module, state, located, f"the repository's {model_ref}")
    module.load_state_dict(state, strict=True)
    return module, _remote_config(raw, state, model_ref), code_digest(folder)


def remote_hint(located: Located, raw_config: Mapping[str, Any] | None) -> str:
    """Suffix telling the user about --trust-remote-code when the weights ship their own code.

    Appended to built-in load errors, where the likely cause is a foreign architecture.
    """
    folder = located.folder
    has_code = folder is not None and (folder / "model.py").is_file()
    if has_code or (raw_config and "auto_map" in raw_config):
        return ("; these weights ship their own model code: rerun with --trust-remote-code to "
                "use it (it executes downloaded code, only for repositories you trust)")
    return ""


def code_digest(folder: Path) -> str:
    """SHA-256 over the folder's Python files, so changed model code changes the fingerprint."""
    hasher = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        hasher.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return hasher.hexdigest()


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
                         f"{type(exc).__name__}: {first_line(exc)}",
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
        raise ModelError(f"cannot build {ref} from config.json: {first_line(exc)}",
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
                         f"{type(exc).__name__}: {first_line(exc)}", path=folder) from exc


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
