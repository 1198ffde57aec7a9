"""digest_pass and subscriber.resumed_at: what a catch-up of a missed digest date must know

The scheduler catches up a local date whose send hour no pass saw (a restart, a long DIGEST_CRON).
digest_pass holds when the last pass ran, so a date whose hour a pass did see (and skipped on
purpose: a pause, a move east across the date line) is never made up later. resumed_at: resuming
clears paused_at, so without it a date that fell during a pause with no pass running would be sent
after the resume (docs/digest.md: a pause drops what was due, it does not postpone it).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscriber", sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "digest_pass",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_digest_pass")),
    )


def downgrade() -> None:
    op.drop_table("digest_pass")
    op.drop_column("subscriber", "resumed_at")
