"""topic.weekly: papers per week, for the chart on /topics and the momentum behind trending

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 12:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "topic",
        sa.Column("weekly", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
    )
    op.add_column(
        "topic", sa.Column("terms", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("topic", "terms")
    op.drop_column("topic", "weekly")
