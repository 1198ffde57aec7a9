"""paper_embedding.embedding: any dimension; one HNSW index per model, made when the model is first used

The column was vector(384), the dimension of the default model. A model with another dimension
could not be stored. Now the column is `vector` (any dimension; each row's model and dim say
which) and embeddings/indexes.py creates a partial expression index per model:
`USING hnsw ((embedding::vector(DIM)) vector_cosine_ops) WHERE model = 'NAME'`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 12:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_paper_embedding_hnsw", table_name="paper_embedding")
    op.execute("ALTER TABLE paper_embedding ALTER COLUMN embedding TYPE vector")
    op.create_index("ix_paper_embedding_model", "paper_embedding", ["model"])


def downgrade() -> None:
    op.drop_index("ix_paper_embedding_model", table_name="paper_embedding")
    op.execute("DELETE FROM paper_embedding WHERE dim <> 384")
    for (name,) in (
        op.get_bind()
        .exec_driver_sql(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'paper_embedding' AND starts_with(indexname, 'ix_paper_embedding_hnsw_')"
        )
        .all()
    ):
        op.execute(f'DROP INDEX "{name}"')
    op.execute("ALTER TABLE paper_embedding ALTER COLUMN embedding TYPE vector(384)")
    op.execute(
        "CREATE INDEX ix_paper_embedding_hnsw ON paper_embedding USING hnsw (embedding vector_cosine_ops)"
    )
