"""subscriber.mail_reached_at: when the newest mailed link the reader opened was made

A bounce can come back by mail hours or days after its digest went out (`papertide digest
bounce`). If the reader has opened a link made after that digest (a manage or confirm link), the
address has taken mail since, and the late bounce must not suppress it again. The suppression
row itself is deleted when such a link lifts it, so the time is kept on the subscriber.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscriber", sa.Column("mail_reached_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("subscriber", "mail_reached_at")
