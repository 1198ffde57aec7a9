"""Incremental topics: each topic keeps its centroid, topic_fit records the last fit, and papers
get an index on when they were listed.

The score job (every 15 minutes) used to recluster and set every paper's topic_id, then write it
again: at a million papers, 173 s and a million dead rows a run (issue 10). Now a run gives the
papers embedded since the last one the nearest centroid and refits only when the window moved
enough (ranking.topics.needs_refit); either way it writes only the rows whose topic changed.
Topics and trending select papers by `coalesce(announced_at, published_at, first_seen_at)`, the
moment a paper was listed, and a run finds the vectors written since the last by `embedded_at`:
indexed, both are range scans, not scans of the whole table.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("topic", sa.Column("centroid", Vector(), nullable=True))
    op.create_table(
        "topic_fit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("papers", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("fitted_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("assigned_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topic_fit")),
    )
    op.create_index(
        "ix_paper_listed_at", "paper", [sa.text("coalesce(announced_at, published_at, first_seen_at)")]
    )
    op.create_index("ix_paper_embedding_embedded_at", "paper_embedding", ["embedded_at"])


def downgrade() -> None:
    op.drop_index("ix_paper_embedding_embedded_at", table_name="paper_embedding")
    op.drop_index("ix_paper_listed_at", table_name="paper")
    op.drop_table("topic_fit")
    op.drop_column("topic", "centroid")
