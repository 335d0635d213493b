"""The migrations build exactly the schema the SQLAlchemy tables describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from openft.store.db import make_engine
from openft.store.migrate import alembic_config, upgrade
from openft.store.tables import Base

ALEMBIC_VERSION_COLUMN_CHARS = 32  # alembic_version.version_num is VARCHAR(32)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
    elif os.environ.get("OPENFT_TEST_DATABASE_URL"):
        url = request.getfixturevalue("database_url")
    else:
        pytest.skip("set OPENFT_TEST_DATABASE_URL to run against PostgreSQL")
    made = make_engine(url)
    request.addfinalizer(made.dispose)
    return made


def schema_diffs(engine: sa.Engine) -> list:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"the migrations have several heads: {heads}"
    return heads[0]


def test_the_migrated_schema_equals_the_table_metadata(engine: sa.Engine) -> None:
    upgrade(engine)

    assert schema_diffs(engine) == []
    assert current_revision(engine) == head_revision()


def test_upgrade_twice_is_harmless(engine: sa.Engine) -> None:
    upgrade(engine)
    upgrade(engine)

    assert current_revision(engine) == head_revision()
    assert schema_diffs(engine) == []


def test_downgrade_to_base_removes_everything_and_upgrade_rebuilds_it(engine: sa.Engine) -> None:
    upgrade(engine)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    assert sorted(sa.inspect(engine).get_table_names()) == ["alembic_version"]
    upgrade(engine)
    assert schema_diffs(engine) == []


def test_every_revision_id_fits_the_alembic_version_column() -> None:
    """PostgreSQL refuses a longer id (StringDataRightTruncation); SQLite would not notice."""
    script = ScriptDirectory.from_config(alembic_config())
    too_long = [
        rev.revision for rev in script.walk_revisions() if len(rev.revision) > ALEMBIC_VERSION_COLUMN_CHARS
    ]

    assert too_long == []
