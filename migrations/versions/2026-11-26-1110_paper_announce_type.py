"""paper.announce_type: how arXiv announced the paper (new, cross, replace)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 11:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("paper", sa.Column("announce_type", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("paper", "announce_type")
