"""The catalog: built-in, registered and hub models, its file on disk, and errors that say what to do."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from openft.errors import InvalidRequest, NotFound
from openft.models.builtin import BUILTIN_MODELS
from openft.models.catalog import (
    FALLBACK_CONTEXT_LENGTH,
    Catalog,
    InvalidModelError,
    ModelUnavailableError,
    UnknownModelError,
)
from openft.models.defaults import PRETRAINED_DEFAULTS, SMALL_PRETRAINED_DEFAULTS
from openft.models.packaged import PACKAGED_MODELS


def make_model_dir(
    path: Path, config: dict | None = None, *, tokenizer: bool = True, weights: bool = True
) -> Path:
    """A directory with the files the catalog checks (contents are never loaded here)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(
        json.dumps(config if config is not None else {"max_position_embeddings": 4096})
    )
    if tokenizer:
        (path / "tokenizer.json").write_text("{}")
        (path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    if weights:
        (path / "model.safetensors").write_bytes(b"")
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "models", hub_cache_dir=tmp_path / "hub")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network: downloads are disabled, and any attempt to connect fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the catalog tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_packaged_then_builtins_are_listed_first_with_their_defaults(catalog: Catalog) -> None:
    entries = catalog.list()
    assert [e.name for e in entries] == [*PACKAGED_MODELS, *BUILTIN_MODELS]
    # The packaged small chat model trains with the defaults measured on it, installed or not.
    assert entries[0].defaults == SMALL_PRETRAINED_DEFAULTS != PRETRAINED_DEFAULTS
    tiny = catalog.get("openft-tiny")
    assert tiny.kind == "builtin"
    assert tiny.context_length == 2048
    assert tiny.has_chat_template is True
    assert tiny.defaults == BUILTIN_MODELS["openft-tiny"].defaults
    assert tiny.path == catalog.models_dir / "openft-tiny"
    assert tiny.created_at == BUILTIN_MODELS["openft-tiny"].created_at


def test_add_local_registers_and_persists(catalog: Catalog, tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path / "qwen")
    entry = catalog.add_local("my-qwen", model_dir)
    assert (entry.kind, entry.path, entry.context_length, entry.has_chat_template) == (
        "local",
        model_dir,
        4096,
        True,
    )
    assert entry.defaults == PRETRAINED_DEFAULTS
    assert entry.created_at > 0
    reopened = Catalog(catalog.models_dir)
    assert reopened.get("my-qwen") == entry
    assert [e.name for e in reopened.list()] == [*PACKAGED_MODELS, *BUILTIN_MODELS, "my-qwen"]
    assert reopened.resolve_path("my-qwen") == model_dir
    stored = json.loads((catalog.models_dir / "catalog.json").read_text())
    assert stored["models"]["my-qwen"]["path"] == str(model_dir)


def test_remove_forgets_the_registration_but_keeps_the_files(catalog: Catalog, tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path / "m")
    catalog.add_local("m", model_dir)
    catalog.remove("m")
    assert [e.name for e in catalog.list()] == [*PACKAGED_MODELS, *BUILTIN_MODELS]
    assert (model_dir / "config.json").is_file()
    with pytest.raises(UnknownModelError):
        catalog.remove("m")
    with pytest.raises(InvalidModelError, match="built in"):
        catalog.remove("openft-tiny")


def test_unknown_model_error_is_a_key_error_with_a_helpful_message(catalog: Catalog) -> None:
    with pytest.raises(UnknownModelError) as caught:
        catalog.get("gpt-4o-mini")
    error = caught.value
    assert isinstance(error, KeyError) and isinstance(error, NotFound)
    assert str(error).startswith(
        "Model 'gpt-4o-mini' is not in the catalog. Known models: smollm2-135m-instruct, openft-tiny"
    )
    assert "openft models add NAME PATH" in str(error)
    assert error.envelope()["error"]["param"] == "model"


@pytest.mark.parametrize("name", ["openft-tiny", "ft:x", "org/model", "", "-x", "a b", "x" * 65])
def test_bad_names_are_refused(catalog: Catalog, tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidModelError) as caught:
        catalog.add_local(name, make_model_dir(tmp_path / "m"))
    assert isinstance(caught.value, InvalidRequest) and isinstance(caught.value, ValueError)


def test_a_name_cannot_be_registered_twice(catalog: Catalog, tmp_path: Path) -> None:
    catalog.add_local("m", make_model_dir(tmp_path / "a"))
    with pytest.raises(InvalidModelError, match="already registered"):
        catalog.add_local("m", make_model_dir(tmp_path / "b"))
    assert catalog.get("m").path == tmp_path / "a"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": None, "tokenizer": False, "weights": False, "missing": True}, "is not a directory"),
        ({"config": "broken"}, "not valid JSON"),
        ({"tokenizer": False}, "has no tokenizer"),
        ({"weights": False}, "has no weights"),
    ],
)
def test_directories_that_are_not_models_are_refused(
    catalog: Catalog, tmp_path: Path, kwargs: dict, message: str
) -> None:
    path = tmp_path / "m"
    if not kwargs.pop("missing", False):
        make_model_dir(path, tokenizer=kwargs.get("tokenizer", True), weights=kwargs.get("weights", True))
        if kwargs.get("config") == "broken":
            (path / "config.json").write_text("{not json")
    with pytest.raises(InvalidModelError, match=message):
        catalog.add_local("m", path)
    assert not (catalog.models_dir / "catalog.json").exists()


def test_missing_config_json_is_named(catalog: Catalog, tmp_path: Path) -> None:
    path = make_model_dir(tmp_path / "m")
    (path / "config.json").unlink()
    with pytest.raises(InvalidModelError, match=r"has no config\.json"):
        catalog.add_local("m", path)


@pytest.mark.parametrize(
    ("config", "tokenizer_config", "expected"),
    [
        ({"max_position_embeddings": 32768}, {}, 32768),
        ({"n_positions": 1024}, {}, 1024),
        ({"text_config": {"max_position_embeddings": 8192}}, {}, 8192),
        ({}, {"model_max_length": 4096}, 4096),
        ({}, {"model_max_length": 1000000000000000019884624838656}, FALLBACK_CONTEXT_LENGTH),
    ],
)
def test_context_length_comes_from_the_config(
    catalog: Catalog, tmp_path: Path, config: dict, tokenizer_config: dict, expected: int
) -> None:
    path = make_model_dir(tmp_path / "m", config)
    (path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    entry = catalog.add_local("m", path)
    assert entry.context_length == expected
    assert entry.has_chat_template is False


def test_writes_are_atomic(catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog.add_local("first", make_model_dir(tmp_path / "a"))
    before = (catalog.models_dir / "catalog.json").read_bytes()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", crash)
    with pytest.raises(OSError, match="disk full"):
        catalog.add_local("second", make_model_dir(tmp_path / "b"))
    assert (catalog.models_dir / "catalog.json").read_bytes() == before
    assert sorted(p.name for p in catalog.models_dir.iterdir()) == ["catalog.json", "catalog.json.lock"]


def test_concurrent_registrations_are_all_kept(catalog: Catalog, tmp_path: Path) -> None:
    dirs = [make_model_dir(tmp_path / f"m{i}") for i in range(8)]
    threads = [threading.Thread(target=Catalog(catalog.models_dir).add_local, args=(d.name, d)) for d in dirs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {e.name for e in catalog.list()} == {*PACKAGED_MODELS, *BUILTIN_MODELS, *(d.name for d in dirs)}


def test_a_corrupt_catalog_file_is_reported(catalog: Catalog) -> None:
    catalog.models_dir.mkdir(parents=True)
    (catalog.models_dir / "catalog.json").write_text("{oops")
    with pytest.raises(RuntimeError, match=r"catalog\.json is not valid JSON"):
        catalog.list()


def test_a_moved_local_model_is_reported_on_resolve(catalog: Catalog, tmp_path: Path) -> None:
    path = make_model_dir(tmp_path / "m")
    catalog.add_local("m", path)
    (path / "config.json").unlink()
    with pytest.raises(ModelUnavailableError, match="no longer holds a model"):
        catalog.resolve_path("m")


def test_resolving_a_builtin_builds_it(models_dir: Path, tiny_dir: Path) -> None:
    assert Catalog(models_dir).resolve_path("openft-tiny") == tiny_dir


@pytest.mark.usefixtures("offline")
def test_hub_id_without_network_gives_a_clear_error(catalog: Catalog) -> None:
    entry = catalog.get("some-org/some-model")
    assert (entry.kind, entry.hub_id, entry.path) == ("hub", "some-org/some-model", None)
    assert entry.has_chat_template is None
    assert entry.context_length == FALLBACK_CONTEXT_LENGTH
    with pytest.raises(ModelUnavailableError) as caught:
        catalog.resolve_path("some-org/some-model")
    message = str(caught.value)
    assert "no network access" in message
    assert "openft models add NAME /path/to/model" in message
    assert caught.value.code == "model_not_available"


@pytest.mark.usefixtures("offline")
def test_hub_model_in_the_local_cache_resolves_offline(catalog: Catalog, tiny_dir: Path) -> None:
    assert catalog.hub_cache_dir is not None
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = catalog.hub_cache_dir / "models--some-org--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in tiny_dir.iterdir():
        (snapshot / file.name).symlink_to(file)
    entry = catalog.get("some-org/tiny")
    assert (entry.kind, entry.context_length, entry.has_chat_template) == ("hub", 2048, True)
    resolved = catalog.resolve_path("some-org/tiny")
    assert resolved == snapshot
    assert AutoTokenizer.from_pretrained(resolved).encode("ok", add_special_tokens=False) == [111, 107]


def test_importing_the_catalog_stays_light() -> None:
    heavy = ("torch", "transformers", "tokenizers", "huggingface_hub")
    code = (
        "import sys, openft.models, openft.models.catalog, openft.cli.models, openft.data.render\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_failed_download_gives_the_same_advice(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    attempts: list[bool] = []

    def no_route(repo_id: str, **kwargs: object) -> str:  # stands in for a machine without network
        attempts.append(bool(kwargs.get("local_files_only")))
        raise ConnectionError("no route to host")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_route)
    with pytest.raises(ModelUnavailableError, match="ConnectionError: no route to host") as caught:
        catalog.resolve_path("some-org/some-model")
    assert "openft models add NAME /path/to/model" in str(caught.value)
    assert attempts[-2:] == [True, False]  # the cache first, then the download


def test_a_local_models_parameter_count_comes_from_its_safetensors_headers(
    catalog: Catalog, tiny_dir: Path
) -> None:
    expected = BUILTIN_MODELS["openft-tiny"].n_parameters
    assert catalog.add_local("mine", tiny_dir).n_parameters == expected
    # A registration written before counts were recorded: counted from the files when read.
    stored = json.loads(catalog.catalog_path.read_text())
    del stored["models"]["mine"]["n_parameters"]
    catalog.catalog_path.write_text(json.dumps(stored))
    assert catalog.get("mine").n_parameters == expected
