"""The base-model catalog: packaged pretrained models, the built-in models, registered local models
(transformers directories or GGUF files), and Hugging Face hub ids.

Registrations live in `models_dir/catalog.json`, replaced atomically on every change. Importing this
module stays cheap (no torch, no transformers): the API server reads the catalog on its start-up path.
"""

from __future__ import annotations

import contextlib
import functools
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
from openft.models.gguf_header import read_gguf_header
from openft.models.gguf_import import Progress, converted_dir, ensure_converted, looks_like_gguf
from openft.models.model_dir import FALLBACK_CONTEXT_LENGTH, count_parameters, inspect_model_dir
from openft.models.packaged import (
    PACKAGED_MODELS,
    PackagedSpec,
    locate_packaged_file,
    not_installed_message,
)

Kind = Literal["package", "builtin", "local", "hub"]
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
    # local models registered from a GGUF file: the file, converted again if its cache is removed.
    gguf_path: Path | None = None
    n_parameters: int | None = None
    # Set where the model cannot be used on this machine: what to do about it (e.g. the install command).
    unavailable_reason: str | None = None


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
        """Packaged pretrained models first (also when not installed: the entry says how to install
        them), then the built-in ones, then registered ones by name. Hub ids are not listed."""
        packaged = [self._packaged_entry(spec) for spec in PACKAGED_MODELS.values()]
        builtins = [self._builtin_entry(spec) for spec in BUILTIN_MODELS.values()]
        registered = self._read()
        return packaged + builtins + [_local_entry(name, registered[name]) for name in sorted(registered)]

    def get(self, name: str) -> ModelEntry:
        """The entry of a usable model; ModelUnavailableError for a packaged model that is not installed."""
        if name in PACKAGED_MODELS:
            entry = self._packaged_entry(PACKAGED_MODELS[name])
            if entry.unavailable_reason is not None:
                raise ModelUnavailableError(entry.unavailable_reason)
            return entry
        if name in BUILTIN_MODELS:
            return self._builtin_entry(BUILTIN_MODELS[name])
        registered = self._read()
        if name in registered:
            return _local_entry(name, registered[name])
        if _HUB_ID.fullmatch(name):
            return self._hub_entry(name)
        raise UnknownModelError(name, [*PACKAGED_MODELS, *BUILTIN_MODELS, *sorted(registered)])

    def add_local(self, name: str, path: Path, progress: Progress | None = None) -> ModelEntry:
        """Register a transformers model directory (config.json, tokenizer, weights), or a GGUF file,
        under `name`. A GGUF file is converted into a cached checkpoint first (`progress` hears how
        that goes); the registration points at the checkpoint and remembers the file."""
        _check_name(name)
        source = path.expanduser().resolve()
        gguf_path = source if looks_like_gguf(source) else None
        if gguf_path is None and source.is_file():
            raise InvalidModelError(
                f"{source} is neither a model directory nor a GGUF file (it does not start with the "
                "bytes 'GGUF'); expected a transformers model directory or a .gguf file",
                param="path",
            )
        if gguf_path is not None:
            self._check_unregistered(name)  # before a conversion that takes a while
            source = ensure_converted(gguf_path, self.models_dir, progress)
        model = inspect_model_dir(source)
        record: dict[str, Any] = {
            "kind": "local",
            "path": str(model.path),
            "context_length": model.context_length,
            "has_chat_template": model.has_chat_template,
            "n_parameters": count_parameters(model.path),
            "created_at": int(time.time()),
        }
        if gguf_path is not None:
            record["gguf_path"] = str(gguf_path)
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

    def _check_unregistered(self, name: str) -> None:
        registered = self._read()
        if name in registered:
            raise InvalidModelError(
                f"Model '{name}' is already registered (at {registered[name]['path']}); remove it first",
                param="name",
            )

    def remove(self, name: str) -> None:
        """Forget a registration (the model's files are left alone)."""
        if name in PACKAGED_MODELS:
            raise InvalidModelError(
                f"Model '{name}' comes from an installed package; uninstall "
                f"{PACKAGED_MODELS[name].distribution} to remove it",
                param="name",
            )
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
        if entry.kind == "package":
            gguf_file = locate_packaged_file(PACKAGED_MODELS[name])
            assert gguf_file is not None  # get() said it is installed
            return ensure_converted(gguf_file, self.models_dir)
        if entry.kind == "builtin":
            return ensure_builtin_model(name, self.models_dir)
        if entry.kind == "hub":
            assert entry.hub_id is not None
            return hub.fetch_model(entry.hub_id, self.hub_cache_dir).path
        assert entry.path is not None
        gguf_path = entry.gguf_path
        if not (entry.path / "config.json").is_file() and gguf_path is not None and gguf_path.is_file():
            # A cached conversion that was cleaned away: convert the registered file again.
            return ensure_converted(gguf_path, self.models_dir)
        if not (entry.path / "config.json").is_file():
            raise ModelUnavailableError(
                f"Model '{name}' is registered from the directory '{entry.path.name}', "
                f"but it no longer holds a model. "
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

    def _packaged_entry(self, spec: PackagedSpec) -> ModelEntry:
        gguf_file = locate_packaged_file(spec)
        facts, problem = None, None if gguf_file else not_installed_message(spec)
        if gguf_file is not None:
            try:
                facts = _gguf_facts(gguf_file, self.models_dir)
            except InvalidModelError as exc:  # a damaged install: say so instead of failing every list
                problem = f"{exc.message}. Reinstall it: `{spec.install_command} --force-reinstall`"
        return ModelEntry(
            name=spec.name,
            kind="package",
            path=facts.path if facts else None,
            hub_id=None,
            context_length=(facts.context_length if facts else None) or FALLBACK_CONTEXT_LENGTH,
            has_chat_template=facts.has_chat_template if facts else None,
            defaults=spec.defaults,
            created_at=spec.created_at,
            description=spec.description,
            n_parameters=facts.n_parameters if facts else None,
            unavailable_reason=problem,
        )

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
            n_parameters=spec.n_parameters,
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
    if name in PACKAGED_MODELS:
        raise InvalidModelError(
            f"'{name}' is the name of a packaged model; choose another name", param="name"
        )
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
    path = Path(record["path"])
    # Registrations made before the count was recorded: read it from the weights' headers.
    n_parameters = record.get("n_parameters")
    gguf_path = record.get("gguf_path")
    return ModelEntry(
        name=name,
        kind="local",
        path=path,
        hub_id=None,
        context_length=int(record.get("context_length") or FALLBACK_CONTEXT_LENGTH),
        has_chat_template=bool(record.get("has_chat_template")),
        defaults=PRETRAINED_DEFAULTS,
        created_at=int(record.get("created_at", 0)),
        n_parameters=n_parameters if isinstance(n_parameters, int) else count_parameters(path),
        gguf_path=Path(gguf_path) if gguf_path else None,
    )


@dataclass(frozen=True)
class _GGUFFacts:
    path: Path  # where its converted checkpoint is (or will be)
    context_length: int | None
    has_chat_template: bool
    n_parameters: int


def _gguf_facts(gguf_file: Path, models_dir: Path) -> _GGUFFacts:
    stat = gguf_file.stat()
    return _gguf_facts_cached(gguf_file, stat.st_size, stat.st_mtime_ns, models_dir)


@functools.lru_cache(maxsize=32)
def _gguf_facts_cached(gguf_file: Path, _size: int, _mtime_ns: int, models_dir: Path) -> _GGUFFacts:
    """What the header says (read once per file version and process: listing must stay quick)."""
    header = read_gguf_header(gguf_file)
    return _GGUFFacts(
        path=converted_dir(gguf_file, models_dir),
        context_length=header.context_length,
        has_chat_template=header.has_chat_template,
        n_parameters=header.n_parameters,
    )
