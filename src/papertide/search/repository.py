"""SQL for full-text and vector search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from papertide.models import PaperEmbedding
from papertide.models.paper import SEARCH_VECTOR_SQL

# Sentinels that cannot occur in an abstract: ts_headline marks matches with them, and the service
# escapes the text before turning them into <mark>, so no abstract can inject HTML.
MARK_START = "\x02"
MARK_END = "\x03"
_HEADLINE_OPTIONS = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxFragments=2, MaxWords=35, MinWords=15"


@dataclass
class KeywordRow:
    paper_id: str
    rank: float
    headline: str


def keyword(session: Session, *, query: str, limit: int) -> list[KeywordRow]:
    """Papers matching `websearch_to_tsquery`, by ts_rank_cd (title words weigh more)."""
    sql = text(
        """
        SELECT p.id, ts_rank_cd(p.search_vector, q) AS rank,
               ts_headline('english', p.abstract, q, :options) AS headline
        FROM paper p, websearch_to_tsquery('english', :query) q
        WHERE p.search_vector @@ q
        ORDER BY rank DESC, p.id
        LIMIT :limit
        """
    )
    rows = session.execute(sql, {"query": query, "limit": limit, "options": _HEADLINE_OPTIONS})
    return [KeywordRow(paper_id=r.id, rank=float(r.rank), headline=r.headline) for r in rows]


def nearest(
    session: Session, *, vector: Any, model: str, limit: int, exclude: str | None = None
) -> list[tuple[str, float]]:
    """(paper_id, cosine similarity) of the nearest embeddings from `model`, via the HNSW index."""
    # ef_search bounds how many candidates HNSW returns; raise it past the page size.
    session.execute(text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(max(100, limit * 2))})
    distance = PaperEmbedding.embedding.cosine_distance(vector)
    stmt = (
        select(PaperEmbedding.paper_id, (1 - distance).label("similarity"))
        .where(PaperEmbedding.model == model)
        .order_by(distance)
        .limit(limit + (1 if exclude else 0))
    )
    rows = [(r.paper_id, float(r.similarity)) for r in session.execute(stmt)]
    return [row for row in rows if row[0] != exclude][:limit]


def embedding_of(session: Session, paper_id: str, *, model: str) -> Any | None:
    stmt = select(PaperEmbedding.embedding).where(
        PaperEmbedding.paper_id == paper_id, PaperEmbedding.model == model
    )
    return session.scalar(stmt)


def embedded_count(session: Session, *, model: str) -> int:
    stmt = select(func.count()).select_from(PaperEmbedding).where(PaperEmbedding.model == model)
    return session.scalar(stmt) or 0


_INDEX_PENDING = text(
    f"""
    UPDATE paper SET search_vector = {SEARCH_VECTOR_SQL}
    WHERE id IN (SELECT id FROM paper WHERE search_vector IS NULL LIMIT :limit FOR UPDATE SKIP LOCKED)
    """
)


def index_pending(session: Session, *, limit: int) -> int:
    """Compute the full-text vector of up to `limit` papers a bulk load left without one."""
    return session.execute(_INDEX_PENDING, {"limit": limit}).rowcount  # type: ignore[attr-defined,no-any-return]


def count_unindexed(session: Session) -> int:
    return session.scalar(text("SELECT count(*) FROM paper WHERE search_vector IS NULL")) or 0
