"""digest_delivery.message stored without compression (STORAGE EXTERNAL)

A composed digest (about 23 kB) is written once, sent, and cleared when it is recorded `sent`: it
lives for seconds. PostgreSQL's default for bytea compressed it with pglz on the way in, which cost
the database about 0.6 ms of CPU a digest (bench/digest_send.py, docs/benchmarks.md), more than
everything else the database does for a digest together, to save disk for a row that is about
to be emptied. Stored out of line as it is; rows written before keep their compressed value.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE digest_delivery ALTER COLUMN message SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE digest_delivery ALTER COLUMN message SET STORAGE EXTENDED")
