"""Keyword search moves to a BM25 index (tantivy, under DATA_DIR); PostgreSQL keeps a queue for it.

paper.search_vector, its GIN index and its trigger go: ts_rank_cd had no inverse document
frequency, and ranking every match in SQL cost seconds at a million papers (issue 10). Instead,
triggers queue the id of every paper whose indexed fields change, and the worker feeds the queue
to the index (search.service.index_pending). Inserts are queued per statement, so a bulk load pays
one INSERT ... SELECT, not a trigger call per row; updates per row, and only when an indexed field
changed (the WHEN clause), so a score run that rewrites topic_id queues nothing.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None

INDEXED = ("title", "abstract", "authors", "categories", "published_at", "announced_at", "code_url")
QUEUE = "INSERT INTO keyword_pending (paper_id) {rows} ON CONFLICT (paper_id) DO UPDATE SET queued_at = now()"


def upgrade() -> None:
    op.create_table(
        "keyword_pending",
        sa.Column("paper_id", sa.Text(), primary_key=True),  # no foreign key: a deleted paper is queued too
        sa.Column("queued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.execute(_function("keyword_queue_inserted", QUEUE.format(rows="SELECT id FROM inserted_rows")))
    op.execute(
        "CREATE TRIGGER paper_keyword_inserted AFTER INSERT ON paper REFERENCING NEW TABLE AS inserted_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION keyword_queue_inserted()"
    )
    op.execute(_function("keyword_queue_changed", QUEUE.format(rows="VALUES (coalesce(NEW.id, OLD.id))")))
    changed = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in INDEXED)
    op.execute(
        f"CREATE TRIGGER paper_keyword_updated AFTER UPDATE OF {', '.join(INDEXED)} ON paper "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION keyword_queue_changed()"
    )
    op.execute(
        "CREATE TRIGGER paper_keyword_deleted AFTER DELETE ON paper "
        "FOR EACH ROW EXECUTE FUNCTION keyword_queue_changed()"
    )
    op.execute("INSERT INTO keyword_pending (paper_id) SELECT id FROM paper")

    op.drop_index("ix_paper_search_vector_pending", table_name="paper")
    op.drop_index("ix_paper_search_vector", table_name="paper")
    op.execute("DROP TRIGGER paper_search_vector ON paper")
    op.execute("DROP FUNCTION paper_search_vector_update()")
    op.drop_column("paper", "search_vector")


def _function(name: str, statement: str) -> str:
    return f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {statement};
            RETURN NULL;
        END
        $$
    """


SEARCH_VECTOR = (
    "setweight(to_tsvector('english', coalesce({p}title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce({p}abstract, '')), 'B')"
)


def downgrade() -> None:
    op.add_column("paper", sa.Column("search_vector", sa.dialects.postgresql.TSVECTOR(), nullable=True))
    op.execute(f"UPDATE paper SET search_vector = {SEARCH_VECTOR.format(p='')}")
    op.execute(
        f"""
        CREATE FUNCTION paper_search_vector_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF coalesce(current_setting('papertide.defer_search_vector', true), '') = 'on' THEN
                NEW.search_vector := NULL;
            ELSE
                NEW.search_vector := {SEARCH_VECTOR.format(p="NEW.")};
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER paper_search_vector BEFORE INSERT OR UPDATE OF title, abstract ON paper "
        "FOR EACH ROW EXECUTE FUNCTION paper_search_vector_update()"
    )
    op.create_index("ix_paper_search_vector", "paper", ["search_vector"], postgresql_using="gin")
    op.create_index(
        "ix_paper_search_vector_pending", "paper", ["id"], postgresql_where="search_vector IS NULL"
    )
    op.execute("DROP TRIGGER paper_keyword_deleted ON paper")
    op.execute("DROP TRIGGER paper_keyword_updated ON paper")
    op.execute("DROP TRIGGER paper_keyword_inserted ON paper")
    op.execute("DROP FUNCTION keyword_queue_changed()")
    op.execute("DROP FUNCTION keyword_queue_inserted()")
    op.drop_table("keyword_pending")
