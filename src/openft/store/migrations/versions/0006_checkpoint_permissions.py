"""Checkpoint permissions: a project lets another project use one of its fine-tuned models.

Revision ID: 0006_checkpoint_permissions
Revises: 0005_job_grader
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_checkpoint_permissions"
down_revision = "0005_job_grader"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoint_permissions",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        # Deleting the model (or a checkpoint pruned by its job) takes its permissions with it.
        sa.Column(
            "model_name",
            sa.String(512),
            sa.ForeignKey("fine_tuned_models.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("model_name", "project_id", name="uq_checkpoint_permissions_model_project"),
    )
    op.create_index("ix_checkpoint_permissions_project_id", "checkpoint_permissions", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_checkpoint_permissions_project_id", table_name="checkpoint_permissions")
    op.drop_table("checkpoint_permissions")
