"""Single-use tokens bound to the choices they confirm; request limits shared by every process (issue 8).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscriber_token", sa.Column("interests", postgresql.ARRAY(sa.Text()), nullable=True))
    op.add_column("subscriber_token", sa.Column("frequency", sa.Text(), nullable=True))
    # A confirm link sent before this revision confirms what its sign-up stored on the subscriber then.
    op.execute(
        "UPDATE subscriber_token AS t SET interests = s.interests, frequency = s.frequency"
        " FROM subscriber AS s WHERE s.id = t.subscriber_id AND t.purpose = 'confirm'"
    )
    op.create_check_constraint(
        op.f("ck_subscriber_token_confirm_has_choices"),
        "subscriber_token",
        "purpose <> 'confirm' OR (interests IS NOT NULL AND frequency IS NOT NULL)",
    )
    op.create_table(
        "request_limit",
        sa.Column("window_start", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("window_start", "key", name=op.f("pk_request_limit")),
    )


def downgrade() -> None:
    op.drop_table("request_limit")
    op.drop_constraint(op.f("ck_subscriber_token_confirm_has_choices"), "subscriber_token", type_="check")
    op.drop_column("subscriber_token", "frequency")
    op.drop_column("subscriber_token", "interests")
