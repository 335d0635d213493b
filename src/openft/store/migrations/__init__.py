"""Alembic migrations, applied on start by `openft.store.migrate.upgrade`."""
