"""late digests and the start of a pause: what the schedule needs to lose no date

- `digest_delivery.made_late`: a row made after its date had ended for its reader (a catch-up of
  a missed send hour, a `digest send --date` backfill). Such a row no longer stands in for a later
  date's digest: a scheduler back at 00:15 after an outage sent the 24th's digest then, and the
  25th's at its hour was skipped as "a digest already made that day" (a date lost).
- `subscriber.pause_began_at`: when the last pause began, kept after a resume. A pause and resume
  both after the send hour (with no pass between) dropped that date's digest, because only the
  resume's time was kept.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "digest_delivery",
        sa.Column("made_late", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("subscriber", sa.Column("pause_began_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("subscriber", "pause_began_at")
    op.drop_column("digest_delivery", "made_late")
