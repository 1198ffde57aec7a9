"""One HNSW index per embedding model: vectors carry their model, the index follows the model in use.

pgvector indexes need a fixed dimension, and the column holds any (migration 0005), so each
model gets a partial expression index, `((embedding::vector(DIM)) vector_cosine_ops) WHERE model = NAME`.
Queries that cast the same way and filter on the model use it (search.repository.nearest).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session

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
