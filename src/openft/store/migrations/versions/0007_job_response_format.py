"""A reinforcement job's response_format (the JSON Schema its sampled answers follow).

Revision ID: 0007_job_response_format
Revises: 0006_checkpoint_permissions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_job_response_format"
down_revision = "0006_checkpoint_permissions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("response_format_json", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("response_format_json")
