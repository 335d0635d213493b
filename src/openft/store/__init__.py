"""Persistence: SQLAlchemy tables, blob storage, migrations (and, later, the job queue)."""
