"""phrase_embedding: interest phrases' vectors, kept between digest runs

Every digest run encoded every due reader's phrases again (0.8 s of CPU for 648 phrases on the
development VM, paid by each sender of each run; a real list has far more distinct phrases than the
bench's). A phrase's vector depends only on the model and the text, so it is kept, keyed by both.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phrase_embedding",
        sa.Column("model", sa.Text(), primary_key=True),
        sa.Column("phrase", sa.Text(), primary_key=True),
        sa.Column("embedding", Vector(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("phrase_embedding")
