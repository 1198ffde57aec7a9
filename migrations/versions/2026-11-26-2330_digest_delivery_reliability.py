"""The digest ledger's hand-off state, retries and suppressed addresses (issue 8).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
