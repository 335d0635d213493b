"""A reinforcement job's grader (OpenAI's grader JSON, as checked at creation).

Revision ID: 0005_job_grader
Revises: 0004_evals
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_job_grader"
down_revision = "0004_evals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("grader_json", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("grader_json")
