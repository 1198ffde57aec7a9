"""The reader controls the digest: interest profiles, send hour and time zone, chosen weekdays,
pause; votes on papers; digest items remember the section they were sent in (issue 9).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None

EVERY_DAY = "{1,2,3,4,5,6,7}"  # ISO weekdays, Monday = 1


def upgrade() -> None:
    op.add_column("subscriber", sa.Column("send_hour", sa.SmallInteger(), server_default="7", nullable=False))
    op.add_column("subscriber", sa.Column("time_zone", sa.Text(), server_default="UTC", nullable=False))
    op.add_column(
        "subscriber",
        sa.Column("send_days", postgresql.ARRAY(sa.SmallInteger()), server_default=EVERY_DAY, nullable=False),
    )
    op.add_column("subscriber", sa.Column("paused_at", postgresql.TIMESTAMP(timezone=True), nullable=True))
    op.add_column(
        "subscriber", sa.Column("trending_papers", sa.Integer(), server_default="8", nullable=False)
    )
    op.create_check_constraint(op.f("ck_subscriber_send_hour"), "subscriber", "send_hour BETWEEN 0 AND 23")
    op.create_check_constraint(
        op.f("ck_subscriber_send_days"),
        "subscriber",
        "cardinality(send_days) >= 1 AND send_days <@ ARRAY[1,2,3,4,5,6,7]::smallint[]",
    )
    # Weekly digests went out on Mondays (07:00 UTC, as the one cron did).
    op.execute("UPDATE subscriber SET send_days = '{1}' WHERE frequency = 'weekly'")

    op.create_table(
        "interest_profile",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phrases", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("categories", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("model", postgresql.JSONB(), nullable=True),
        sa.Column("model_stale", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscriber.id"],
            name=op.f("fk_interest_profile_subscriber_id_subscriber"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interest_profile")),
        sa.UniqueConstraint("subscriber_id", "name", name=op.f("uq_interest_profile_subscriber_id_name")),
    )
    op.create_index(op.f("ix_interest_profile_subscriber_id"), "interest_profile", ["subscriber_id"])
    # The interests a subscriber had become their first profile.
    op.execute(
        "INSERT INTO interest_profile (subscriber_id, name, phrases, position)"
        " SELECT id, 'My interests', interests, 0 FROM subscriber WHERE cardinality(interests) > 0"
    )
    op.drop_column("subscriber", "interests")

    op.create_table(
        "paper_vote",
        sa.Column("profile_id", sa.BigInteger(), nullable=False),
        sa.Column("paper_id", sa.Text(), nullable=False),
        sa.Column("vote", sa.SmallInteger(), nullable=False),
        sa.Column(
            "created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("vote IN (-1, 1)", name=op.f("ck_paper_vote_vote")),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["interest_profile.id"],
            name=op.f("fk_paper_vote_profile_id_interest_profile"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["paper.id"], name=op.f("fk_paper_vote_paper_id_paper"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("profile_id", "paper_id", name=op.f("pk_paper_vote")),
    )

    op.add_column("digest_item", sa.Column("profile_id", sa.BigInteger(), nullable=True))
    op.add_column("digest_item", sa.Column("section", sa.Text(), server_default="Trending", nullable=False))
    op.create_foreign_key(
        op.f("fk_digest_item_profile_id_interest_profile"),
        "digest_item",
        "interest_profile",
        ["profile_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_digest_item_profile_id_interest_profile"), "digest_item", type_="foreignkey")
    op.drop_column("digest_item", "section")
    op.drop_column("digest_item", "profile_id")
    op.drop_table("paper_vote")
    op.add_column(
        "subscriber",
        sa.Column("interests", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
    )
    op.execute(
        "UPDATE subscriber AS s SET interests = p.phrases FROM interest_profile AS p"
        " WHERE p.subscriber_id = s.id AND p.position = 0"
    )
    op.drop_index(op.f("ix_interest_profile_subscriber_id"), table_name="interest_profile")
    op.drop_table("interest_profile")
    op.drop_constraint(op.f("ck_subscriber_send_days"), "subscriber", type_="check")
    op.drop_constraint(op.f("ck_subscriber_send_hour"), "subscriber", type_="check")
    for column in ("trending_papers", "paused_at", "send_days", "time_zone", "send_hour"):
        op.drop_column("subscriber", column)
