from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openft import ids
from openft.services import files as file_service
from openft.services.auth import ensure_project
from openft.services.context import Project, ServiceContext, now
from openft.settings import Settings
from openft.store.tables import FineTunedModelRow, JobRow

CHAT_EXAMPLE = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at the newest migration, copied for each test (migrating costs more
    than most tests here)."""
    path = tmp_path_factory.mktemp("migrated") / "openft.db"
    ServiceContext.open(Settings(data_dir=path.parent / "data", database_url=f"sqlite:///{path}")).close()
    return path


@pytest.fixture
def ctx(tmp_path: Path, database_url: str, migrated_sqlite: Path) -> Iterator[ServiceContext]:
    """Services on a database of the test's own (SQLite, or PostgreSQL with OPENFT_TEST_DATABASE_URL)."""
    sqlite_file = Path(database_url.removeprefix("sqlite:///"))
    if database_url.startswith("sqlite:///") and not sqlite_file.exists():
        shutil.copyfile(migrated_sqlite, sqlite_file)
    context = ServiceContext.open(Settings(data_dir=tmp_path / "data", database_url=database_url))
    yield context
    context.close()


@pytest.fixture
def project(ctx: ServiceContext) -> Project:
    return ensure_project(ctx, "personal")


@pytest.fixture
def other_project(ctx: ServiceContext) -> Project:
    return ensure_project(ctx, "other")


def upload(
    ctx: ServiceContext,
    project: Project,
    lines: list[Any] | bytes,
    *,
    purpose: str = "fine-tune",
    filename: str = "train.jsonl",
) -> str:
    """A stored file's id: JSON lines (or raw bytes) registered as the Files API registers an upload."""
    data = lines if isinstance(lines, bytes) else "".join(json.dumps(v) + "\n" for v in lines).encode()
    blob = ctx.files.write_all([data])
    return file_service.register_file(
        ctx, project, filename=filename, purpose=purpose, blob=blob, expires_after_s=None
    ).id


def add_model(
    ctx: ServiceContext, project: Project, name: str, path: Path, *, job_id: str = "ftjob-done"
) -> str:
    """A fine-tuned model of `project` as a finished job registers it (a full fine-tune in `path`)."""
    path.mkdir(parents=True, exist_ok=True)
    with ctx.db.session() as session:
        session.add(
            FineTunedModelRow(
                name=name,
                project_id=project.id,
                job_id=job_id,
                base_model="openft-tiny",
                path=str(path),
                created_at=now(),
            )
        )
    return name


def add_job(ctx: ServiceContext, project: Project, status: str = "running") -> str:
    """A job row in `status`, without events (the worker's verbs are not run)."""
    row = JobRow(
        id=ids.new_job_id(),
        project_id=project.id,
        model="openft-tiny",
        training_file="file-training",
        validation_file=None,
        hyperparameters_json="{}",
        method_type="supervised",
        suffix=None,
        seed=1,
        metadata_json=None,
        integrations_json="[]",
        status=status,
        model_short_id=ids.new_model_short_id(),
        created_at=now(),
        n_attempts=0,
    )
    with ctx.db.session() as session:
        session.add(row)
    return row.id
