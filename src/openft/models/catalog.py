"""The base-model catalog: the built-in models, registered local directories, and Hugging Face hub ids.

Registrations live in `models_dir/catalog.json`, replaced atomically on every change. Importing this
module stays cheap (no torch, no transformers): the API server reads the catalog on its start-up path.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from openft.models import hub
from openft.models.builtin import BUILTIN_MODELS, BuiltinSpec, ensure_builtin_model
from openft.models.defaults import PRETRAINED_DEFAULTS, TrainingDefaults
from openft.models.errors import InvalidModelError, ModelUnavailableError, UnknownModelError
from openft.models.model_dir import FALLBACK_CONTEXT_LENGTH, inspect_model_dir

Kind = Literal["builtin", "local", "hub"]
CATALOG_FILE = "catalog.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")

__all__ = [
    "FALLBACK_CONTEXT_LENGTH",
    "Catalog",
    "InvalidModelError",
    "ModelEntry",
    "ModelUnavailableError",
    "ResolvedModel",
    "UnknownModelError",
]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: Kind
    # builtin: where it is (or will be) built; local: the registered directory; hub: None (see hub_id).
    path: Path | None
    hub_id: str | None
    context_length: int
    # None where unknown: a hub model that is not on this machine yet.
    has_chat_template: bool | None
    defaults: TrainingDefaults
    created_at: int
    description: str = ""


@dataclass(frozen=True)
class ResolvedModel:
    """A base model ready to train from: its name, directory, defaults (None: pretrained) and context."""

    name: str
    path: Path
    defaults: TrainingDefaults | None
    context_length: int


class Catalog:
    def __init__(self, models_dir: Path, *, hub_cache_dir: Path | None = None) -> None:
        self.models_dir = models_dir
        # None: huggingface_hub's own cache (HF_HOME / HF_HUB_CACHE).
        self.hub_cache_dir = hub_cache_dir

    @property
    def catalog_path(self) -> Path:
        return self.models_dir / CATALOG_FILE

    def list(self) -> list[ModelEntry]:
        """Built-in models first, then registered ones by name. Hub ids are not listed."""
        builtins = [self._builtin_entry(spec) for spec in BUILTIN_MODELS.values()]
        registered = self._read()
        return builtins + [_local_entry(name, registered[name]) for name in sorted(registered)]

    def get(self, name: str) -> ModelEntry:
        if name in BUILTIN_MODELS:
            return self._builtin_entry(BUILTIN_MODELS[name])
        registered = self._read()
        if name in registered:
            return _local_entry(name, registered[name])
        if _HUB_ID.fullmatch(name):
            return self._hub_entry(name)
        raise UnknownModelError(name, [*BUILTIN_MODELS, *sorted(registered)])

    def add_local(self, name: str, path: Path) -> ModelEntry:
        """Register a transformers model directory (config.json, tokenizer, weights) under `name`."""
        _check_name(name)
        model = inspect_model_dir(path.expanduser().resolve())
        record = {
            "kind": "local",
            "path": str(model.path),
            "context_length": model.context_length,
            "has_chat_template": model.has_chat_template,
            "created_at": int(time.time()),
        }
        with self._locked():
            registered = self._read()
            if name in registered:
                raise InvalidModelError(
                    f"Model '{name}' is already registered (at {registered[name]['path']}); remove it first",
                    param="name",
                )
            registered[name] = record
            self._write(registered)
        return _local_entry(name, record)

    def remove(self, name: str) -> None:
        """Forget a registration (the model's files are left alone)."""
        if name in BUILTIN_MODELS:
            raise InvalidModelError(f"Model '{name}' is built in and cannot be removed", param="name")
        with self._locked():
            registered = self._read()
            if name not in registered:
                raise UnknownModelError(name, [*BUILTIN_MODELS, *sorted(registered)])
            del registered[name]
            self._write(registered)

    def resolve_path(self, name: str) -> Path:
        """A local directory that `from_pretrained` can load: built, registered, or from the hub cache."""
        entry = self.get(name)
        if entry.kind == "builtin":
            return ensure_builtin_model(name, self.models_dir)
        if entry.kind == "hub":
            assert entry.hub_id is not None
            return hub.fetch_model(entry.hub_id, self.hub_cache_dir).path
        assert entry.path is not None
        if not (entry.path / "config.json").is_file():
            raise ModelUnavailableError(
                f"Model '{name}' is registered at {entry.path}, but that directory no longer holds a model. "
                f"Restore it, or run `openft models remove {name}` and register it again."
            )
        return entry.path

    def resolve_spec(self, spec: str) -> ResolvedModel:
        """What a command-line model argument means: an existing model directory (a pretrained model, so
        no per-model defaults), else a catalog name resolved to its directory."""
        candidate = Path(spec).expanduser()
        if candidate.is_dir():
            found = inspect_model_dir(candidate.resolve())
            return ResolvedModel(candidate.name, found.path, None, found.context_length)
        entry = self.get(spec)
        return ResolvedModel(entry.name, self.resolve_path(spec), entry.defaults, entry.context_length)

    def _builtin_entry(self, spec: BuiltinSpec) -> ModelEntry:
        return ModelEntry(
            name=spec.name,
            kind="builtin",
            path=self.models_dir / spec.name,
            hub_id=None,
            context_length=spec.context_length,
            has_chat_template=True,
            defaults=spec.defaults,
            created_at=spec.created_at,
            description=spec.description,
        )

    def _hub_entry(self, hub_id: str) -> ModelEntry:
        # What a hub model says about itself is known once it is in the local cache.
        cached = hub.cached_model(hub_id, self.hub_cache_dir)
        return ModelEntry(
            name=hub_id,
            kind="hub",
            path=None,
            hub_id=hub_id,
            context_length=cached.context_length if cached else FALLBACK_CONTEXT_LENGTH,
            has_chat_template=cached.has_chat_template if cached else None,
            defaults=PRETRAINED_DEFAULTS,
            created_at=0,
        )

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.catalog_path.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise RuntimeError(f"{self.catalog_path} is not valid JSON ({exc}); fix or remove it") from exc
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict):
            raise RuntimeError(f'{self.catalog_path} has no "models" object; fix or remove it')
        return models

    def _write(self, registered: dict[str, dict[str, Any]]) -> None:
        # Write a sibling file and rename it over the old one: readers see the old or the new catalog.
        self.models_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".catalog.", suffix=".json", dir=self.models_dir)
        try:
            with os.fdopen(fd, "w") as tmp:
                json.dump({"models": registered}, tmp, indent=2, sort_keys=True)
                tmp.write("\n")
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, self.catalog_path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write between processes (the API and the CLI may both register)."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with open(self.models_dir / f"{CATALOG_FILE}.lock", "a") as lock_file:
            if sys.platform != "win32":
                import fcntl

                fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield


def _check_name(name: str) -> None:
    if name in BUILTIN_MODELS:
        raise InvalidModelError(
            f"'{name}' is the name of a built-in model; choose another name", param="name"
        )
    if not _NAME.fullmatch(name):
        raise InvalidModelError(
            f"Invalid model name '{name}': use 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit ('/' is kept for hub ids and ':' for fine-tuned models)",
            param="name",
        )


def _local_entry(name: str, record: dict[str, Any]) -> ModelEntry:
    return ModelEntry(
        name=name,
        kind="local",
        path=Path(record["path"]),
        hub_id=None,
        context_length=int(record.get("context_length") or FALLBACK_CONTEXT_LENGTH),
        has_chat_template=bool(record.get("has_chat_template")),
        defaults=PRETRAINED_DEFAULTS,
        created_at=int(record.get("created_at", 0)),
    )
