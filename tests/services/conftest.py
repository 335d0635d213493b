from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openft.services.context import ServiceContext
from openft.settings import Settings


@pytest.fixture
def ctx(tmp_path: Path, database_url: str) -> Iterator[ServiceContext]:
    """Services on a database of the test's own (SQLite, or PostgreSQL with OPENFT_TEST_DATABASE_URL)."""
    context = ServiceContext.open(Settings(data_dir=tmp_path / "data", database_url=database_url))
    yield context
    context.close()
