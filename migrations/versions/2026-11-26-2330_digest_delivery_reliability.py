"""The digest ledger's hand-off state, retries and suppressed addresses (issue 8).

A delivery is composed once and its message kept (`message`) from `sending` until it ends, so a
retry or the resend of an unknown hand-off sends the same bytes; `attempts` and `next_attempt_at`
drive the backoff; `mail_suppression` holds addresses refused for good. Rows that were `failed`
under the old rule (never retried) stay `failed`.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "digest_delivery", sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column(
        "digest_delivery", sa.Column("next_attempt_at", postgresql.TIMESTAMP(timezone=True), nullable=True)
    )
    op.add_column("digest_delivery", sa.Column("message", sa.LargeBinary(), nullable=True))
    op.create_index(
        "ix_digest_delivery_open",
        "digest_delivery",
        ["id"],
        postgresql_where=sa.text("status IN ('pending', 'sending', 'deferred')"),
    )
    op.create_table(
        "mail_suppression",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["digest_delivery.id"],
            name=op.f("fk_mail_suppression_delivery_id_digest_delivery"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_suppression")),
        sa.UniqueConstraint("email", name=op.f("uq_mail_suppression_email")),
    )


def downgrade() -> None:
    op.drop_table("mail_suppression")
    op.drop_index("ix_digest_delivery_open", table_name="digest_delivery")
    op.drop_column("digest_delivery", "message")
    op.drop_column("digest_delivery", "next_attempt_at")
    op.drop_column("digest_delivery", "attempts")
