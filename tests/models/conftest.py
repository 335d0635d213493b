"""Built-in models are built once per test session: building is quick, importing torch is not free."""

from __future__ import annotations

from pathlib import Path

import pytest

from openft.models.builtin import ensure_builtin_model


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_dir(models_dir: Path) -> Path:
    return ensure_builtin_model("openft-tiny", models_dir)
