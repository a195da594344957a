"""Hugging Face hub: downloading a repository's weights and explaining hub failures.

Only config.json and safetensors (plus ``*.py`` when remote code is trusted) are fetched.
HF_HUB_OFFLINE=1 resolves from the local cache only. Every huggingface_hub failure we know is
turned into a one-line ModelError saying what to do.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import ModelError
from .weights import INDEX_SUFFIX

_HUB_FILES = ["config.json", "*.safetensors", "*" + INDEX_SUFFIX]
_LOCAL_HINT = "or point --model at a local folder holding config.json + model.safetensors"


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE is set now (read at call time, not only at import)."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants
        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # an old or broken huggingface_hub: the env var is the source of truth
        return False


def download(repo_id: str, *, revision: str, token: str | bool | None,
             cache_dir: str | os.PathLike | None, trust_remote_code: bool) -> Path:
    """Fetch config.json + safetensors (+ *.py with trust_remote_code) into the HF cache.

    Returns the local snapshot folder. Known hub failures become one-line ModelErrors (see
    `hub_error`); anything else propagates unchanged.
    """
    import huggingface_hub

    patterns = list(_HUB_FILES) + (["*.py"] if trust_remote_code else [])
    offline = hub_offline()
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
