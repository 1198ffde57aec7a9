"""paper_view_visitor: who has already been counted for a paper today, as a daily salted hash

A paper page counted a view on every load, so one reader reloading (or a script) could push a
paper up the trending list (issue 11). Now a view counts once per visitor per paper per day: the
visitor is a keyed hash of the client's address and user agent under a key that changes every day
(web.view_counting), so the table never holds an address and yesterday's hashes cannot be linked
to today's. `address` is the same kind of hash of the address alone: one address counts at most a
few visitors a paper a day, so a script that makes up a new user agent for each request cannot add a
view per request. Rows older than a few days are deleted as new ones arrive (papers.repository).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paper_view_visitor",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("paper_id", sa.Text(), nullable=False),
        sa.Column("visitor", sa.LargeBinary(), nullable=False),
        sa.Column("address", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["paper.id"], name=op.f("fk_paper_view_visitor_paper_id_paper"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("day", "paper_id", "visitor", name=op.f("pk_paper_view_visitor")),
    )


def downgrade() -> None:
    op.drop_table("paper_view_visitor")
