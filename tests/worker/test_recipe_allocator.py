"""The memory allocator of recipe processes: jemalloc where the system has it, unless told otherwise
(openft.train.environment.training_process_environment, the train_allocator setting)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openft.settings import Settings
from openft.train import environment
from openft.train.environment import jemalloc_library, training_process_environment
from openft.worker.recipe_process import start_recipe_process

SAYS_ITS_ALLOCATOR = "from openft.train.environment import preloaded_allocator; print(preloaded_allocator())"


@pytest.fixture
def library_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Library directories of a made-up system: the test decides whether jemalloc is there."""
    lib = tmp_path / "lib"
    lib.mkdir()
    monkeypatch.setattr(environment, "LIBRARY_DIRS", (str(tmp_path / "missing"), str(lib)))
    jemalloc_library.cache_clear()
    yield lib
    jemalloc_library.cache_clear()


def test_auto_preloads_jemalloc_where_the_system_has_it(library_dirs: Path) -> None:
    (library_dirs / "libjemalloc.so.2").write_bytes(b"")
    env = training_process_environment("auto", base={"PATH": "/usr/bin"})
    assert env == {"PATH": "/usr/bin", "LD_PRELOAD": str(library_dirs / "libjemalloc.so.2")}


def test_without_jemalloc_the_environment_is_unchanged(library_dirs: Path) -> None:
    assert training_process_environment("auto", base={"PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}


def test_system_keeps_the_c_librarys_allocator(library_dirs: Path) -> None:
    (library_dirs / "libjemalloc.so.2").write_bytes(b"")
    assert "LD_PRELOAD" not in training_process_environment("system", base={})


def test_a_preload_the_user_set_is_kept(library_dirs: Path) -> None:
    (library_dirs / "libjemalloc.so.2").write_bytes(b"")
    env = training_process_environment("auto", base={"LD_PRELOAD": "/opt/libtcmalloc.so.4"})
    assert env["LD_PRELOAD"] == "/opt/libtcmalloc.so.4"


def test_the_setting_defaults_to_auto_and_refuses_other_values() -> None:
    assert Settings().train_allocator == "auto"
    with pytest.raises(ValueError, match="train_allocator"):
        Settings(train_allocator="mimalloc")


@pytest.mark.skipif(
    jemalloc_library() is None, reason="jemalloc is not installed (apt-get install libjemalloc2)"
)
def test_a_recipe_process_runs_on_jemalloc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    assert _allocator_of_a_recipe_process(tmp_path, "auto") == "jemalloc"


def test_a_recipe_process_told_system_runs_on_the_c_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    assert _allocator_of_a_recipe_process(tmp_path, "system") == "None"


def _allocator_of_a_recipe_process(tmp_path: Path, allocator: str) -> str:
    with open(tmp_path / "stderr.log", "wb") as stderr:
        process = start_recipe_process(
            [sys.executable, "-c", SAYS_ITS_ALLOCATOR], stderr, allocator=allocator
        )
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, (tmp_path / "stderr.log").read_text()
    return out.strip()
