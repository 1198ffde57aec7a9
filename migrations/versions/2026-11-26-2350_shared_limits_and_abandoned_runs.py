"""Abandoned runs: each job_run records its host, pid and heartbeat (issue 8).

A `running` row whose process is gone, or whose heartbeat stopped, becomes `abandoned` at the next
run's start (papertide.runs.service). Rows from before this revision have no heartbeat: they are
judged by their start time.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_run", sa.Column("host", sa.Text(), nullable=True))
    op.add_column("job_run", sa.Column("pid", sa.Integer(), nullable=True))
    op.add_column("job_run", sa.Column("heartbeat_at", postgresql.TIMESTAMP(timezone=True), nullable=True))
    op.create_index(
        "ix_job_run_running",
        "job_run",
        ["heartbeat_at"],
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.execute("UPDATE job_run SET status = 'failed' WHERE status = 'abandoned'")
    op.drop_index("ix_job_run_running", table_name="job_run")
    op.drop_column("job_run", "heartbeat_at")
    op.drop_column("job_run", "pid")
    op.drop_column("job_run", "host")
