"""Fine-tuning jobs, their events and checkpoints, and fine-tuned models.

Revision ID: 0002_jobs_events_ckpts_models
Revises: 0001_projects_keys_files_uploads
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_jobs_events_ckpts_models"
down_revision = "0001_projects_keys_files_uploads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("training_file", sa.String(64), nullable=False),
        sa.Column("validation_file", sa.String(64), nullable=True),
        sa.Column("hyperparameters_json", sa.Text, nullable=False),
        sa.Column("method_type", sa.String(32), nullable=False),
        sa.Column("suffix", sa.String(64), nullable=True),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("metadata_json", sa.Text, nullable=True),
        sa.Column("integrations_json", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("error_param", sa.String(64), nullable=True),
        sa.Column("model_short_id", sa.String(16), nullable=False),
        sa.Column("fine_tuned_model", sa.String(512), nullable=True),
        sa.Column("trained_tokens", sa.BigInteger, nullable=True),
        sa.Column("estimated_finish", sa.BigInteger, nullable=True),
        sa.Column("result_file_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.Column("worker_id", sa.String(128), nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=True),
        sa.Column("n_attempts", sa.Integer, nullable=False),
    )
    op.create_index("ix_jobs_project_id", "jobs", ["project_id"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "job_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("data_json", sa.Text, nullable=True),
    )
    op.create_index("ix_job_events_job_id", "job_events", ["job_id"])
    op.create_table(
        "job_checkpoints",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("step_number", sa.Integer, nullable=False),
        sa.Column("model_name", sa.String(512), nullable=False, unique=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("metrics_json", sa.Text, nullable=False),
    )
    op.create_index("ix_job_checkpoints_job_id", "job_checkpoints", ["job_id"])
    op.create_table(
        "fine_tuned_models",
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("base_model", sa.String(256), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_fine_tuned_models_project_id", "fine_tuned_models", ["project_id"])
    op.create_index("ix_fine_tuned_models_job_id", "fine_tuned_models", ["job_id"])


def downgrade() -> None:
    for table in ("fine_tuned_models", "job_checkpoints", "job_events", "jobs"):
        op.drop_table(table)
