"""SQL for claiming papers that need an embedding, writing the vectors, and each model's index.

One HNSW index per embedding model: vectors carry their model, the index follows the model in use.
pgvector indexes need a fixed dimension, and the column holds any (migration 0005), so each
model gets a partial expression index, `((embedding::vector(DIM)) vector_cosine_ops) WHERE model = NAME`.
Queries that cast the same way and filter on the model use it (search.repository.nearest).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from pgvector.psycopg import register_vector
from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from papertide.models import Paper, PaperEmbedding

_made: set[tuple[str, str, int]] = set()


def index_name(model: str, dim: int) -> str:
    digest = hashlib.sha1(f"{model}:{dim}".encode()).hexdigest()[:12]
    return f"ix_paper_embedding_hnsw_{digest}"


def ensure_index(session: Session, *, model: str, dim: int) -> None:
    """Create the model's index if it is missing; cheap after the first call in a process."""
    key = (str(session.connection().engine.url), model, dim)
    if key in _made:
        return
    literal = model.replace("'", "''")  # DDL takes no bind parameters; the name is quoted as a literal
    # Workers that start together would race on CREATE INDEX IF NOT EXISTS (a duplicate pg_class
    # row); the lock makes the second wait for the first's commit, then find the index there.
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('papertide:embedding-index'))"))
    session.execute(
        text(
            f'CREATE INDEX IF NOT EXISTS "{index_name(model, dim)}" ON paper_embedding '
            f"USING hnsw ((embedding::vector({int(dim)})) vector_cosine_ops) WHERE model = '{literal}'"
        )
    )
    _made.add(key)


def _stale(model: str) -> Any:
    return or_(
        PaperEmbedding.paper_id.is_(None),
        PaperEmbedding.model != model,
        PaperEmbedding.text_hash != Paper.text_hash,
    )


def count_stale(session: Session, *, model: str) -> int:
    """Papers with no embedding from `model` for their current text."""
    stmt = (
        select(func.count())
        .select_from(Paper)
        .outerjoin(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .where(_stale(model))
    )
    return session.scalar(stmt) or 0


def claim_stale(session: Session, *, model: str, limit: int) -> list[Paper]:
    """Lock up to `limit` stale papers; rows another worker holds are skipped, not waited for."""
    locked = (
        select(Paper.id)
        .outerjoin(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .where(_stale(model))
        .order_by(Paper.announced_at.desc().nulls_last(), Paper.id)
        .limit(limit)
        .with_for_update(of=Paper, skip_locked=True)
    )
    while ids := list(session.scalars(locked)):
        if papers := _still_stale(session, ids, model=model):
            return papers
    return []


def _still_stale(session: Session, ids: list[str], *, model: str) -> list[Paper]:
    # A worker that committed just before we took the locks wrote paper_embedding, not paper, so
    # Postgres' recheck of the locked paper rows still saw them stale. Ask again with a fresh
    # snapshot (READ COMMITTED) and keep only what is still stale, or it would be embedded twice.
    fresh = (
        select(Paper)
        .outerjoin(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .where(Paper.id.in_(ids), _stale(model))
        .order_by(Paper.announced_at.desc().nulls_last(), Paper.id)
    )
    return list(session.scalars(fresh))  # empty: all were just embedded elsewhere; claim the next ones


_CREATE_STAGING = text(
    "CREATE TEMP TABLE IF NOT EXISTS embedding_staging "
    "(paper_id text, model text, dim int4, text_hash text, embedding vector) ON COMMIT DELETE ROWS"
)
_MERGE = text(
    """
    INSERT INTO paper_embedding (paper_id, model, dim, text_hash, embedding, embedded_at)
    SELECT paper_id, model, dim, text_hash, embedding, now() FROM embedding_staging
    ON CONFLICT (paper_id) DO UPDATE SET model = excluded.model, dim = excluded.dim,
        text_hash = excluded.text_hash, embedding = excluded.embedding, embedded_at = excluded.embedded_at
    """
)


def write_embeddings(
    session: Session, papers: Sequence[Paper], vectors: np.ndarray[Any, Any], *, model: str
) -> None:
    """Upsert one vector per paper, tagged with the model and the hash of the text it came from.

    One binary COPY into a staging table and one merge: a GPU worker writes thousands of vectors a
    second, more than row-by-row inserts of 384 numbers as text keep up with.
    """
    dim = int(vectors.shape[1])
    ensure_index(session, model=model, dim=dim)
    session.execute(_CREATE_STAGING)
    raw: Any = session.connection().connection.driver_connection
    register_vector(raw)
    with (
        raw.cursor() as cursor,
        cursor.copy(
            "COPY embedding_staging (paper_id, model, dim, text_hash, embedding) FROM STDIN (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["text", "text", "int4", "text", "vector"])
        for paper, vector in zip(papers, vectors, strict=True):
            copy.write_row((paper.id, model, dim, paper.text_hash, vector))
    session.execute(_MERGE)
