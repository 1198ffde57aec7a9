"""SQL for claiming papers that need an embedding and writing the vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from papertide.models import Paper, PaperEmbedding


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
    stmt = (
        select(Paper)
        .outerjoin(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .where(_stale(model))
        .order_by(Paper.announced_at.desc().nulls_last(), Paper.id)
        .limit(limit)
        .with_for_update(of=Paper, skip_locked=True)
    )
    return list(session.scalars(stmt))


def write_embeddings(
    session: Session, papers: Sequence[Paper], vectors: np.ndarray[Any, Any], *, model: str
) -> None:
    """Upsert one vector per paper, tagged with the model and the hash of the text it came from."""
    rows = [
        {"paper_id": p.id, "model": model, "dim": int(v.shape[0]), "text_hash": p.text_hash, "embedding": v}
        for p, v in zip(papers, vectors, strict=True)
    ]
    stmt = insert(PaperEmbedding)
    stmt = stmt.on_conflict_do_update(
        index_elements=[PaperEmbedding.paper_id],
        set_={
            "model": stmt.excluded.model,
            "dim": stmt.excluded.dim,
            "text_hash": stmt.excluded.text_hash,
            "embedding": stmt.excluded.embedding,
            "embedded_at": func.now(),
        },
    )
    session.execute(stmt, rows)
