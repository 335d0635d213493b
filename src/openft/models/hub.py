"""Hugging Face hub models: the local cache first, a download only where this machine may download."""

from __future__ import annotations

import os
from pathlib import Path

from openft.models.errors import ModelUnavailableError
from openft.models.model_dir import ModelDir, inspect_model_dir

# What a download fetches: configs, tokenizers, templates and safetensors weights, not every format.
DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
_TRUE = {"1", "true", "yes", "on"}


def cached_model(hub_id: str, cache_dir: Path | None) -> ModelDir | None:
    """The complete model `hub_id` in the local Hugging Face cache, or None; never uses the network."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return inspect_model_dir(Path(snapshot_download(hub_id, cache_dir=cache_dir, local_files_only=True)))
    except Exception:  # not cached, partly cached or not a model: all mean "not usable from the cache"
        return None


def fetch_model(hub_id: str, cache_dir: Path | None) -> ModelDir:
    """The model from the cache, else downloaded; ModelUnavailableError where neither works."""
    cached = cached_model(hub_id, cache_dir)
    if cached is not None:
        return cached
    no_network = (
        f"Model '{hub_id}' is not in this machine's Hugging Face cache and cannot be downloaded here "
        "(no network access, or HF_HUB_OFFLINE is set). Copy the model directory to this machine and "
        "register it with `openft models add NAME /path/to/model`, then use NAME as the model."
    )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ModelUnavailableError(no_network) from exc
    if _offline():
        raise ModelUnavailableError(no_network)
    try:
        downloaded = snapshot_download(hub_id, cache_dir=cache_dir, allow_patterns=DOWNLOAD_PATTERNS)
        return inspect_model_dir(Path(downloaded))
    except Exception as exc:  # network, auth, missing repo or not a model: the same advice applies
        raise ModelUnavailableError(f"{no_network} ({type(exc).__name__}: {exc})") from exc


def _offline() -> bool:
    from huggingface_hub import constants

    flags = (os.environ.get(var, "").strip().lower() for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; the environment may have changed since.
    return any(flag in _TRUE for flag in flags) or bool(constants.HF_HUB_OFFLINE)
