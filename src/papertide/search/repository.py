"""SQL for full-text and vector search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from papertide.models import PaperEmbedding

# ts_headline marks matches with these sentinels, and the service escapes the text before turning
# them into <mark>, so no abstract can inject HTML. An abstract may hold them too (any source can
# send control characters), so the query strips them from the abstract before it is marked.
MARK_START = "\x02"
MARK_END = "\x03"
_HEADLINE_OPTIONS = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxFragments=2, MaxWords=35, MinWords=15"


@dataclass
class KeywordRow:
    paper_id: str
    rank: float
    headline: str
    all_words: bool = True  # False: found by the any-word fallback


_KEYWORD_SQL = """
    SELECT p.id, ts_rank_cd(p.search_vector, q) AS rank,
           ts_headline('english', translate(p.abstract, :sentinels, ''), q, :options) AS headline
    FROM paper p, {query} q
    WHERE p.search_vector @@ q {exclude}
    ORDER BY rank DESC, p.id
    LIMIT :limit
"""
# All of the query's words (websearch syntax: quotes, OR, -minus) ...
_ALL_WORDS = text(_KEYWORD_SQL.format(query="websearch_to_tsquery('english', :query)", exclude=""))
# ... then, when that finds too few, any of them: a long query (a pasted title) rarely has every
# word in one abstract, and a ranked OR beats an empty page. The lexemes are already stemmed, so
# the OR query is parsed with the 'simple' configuration.
_ANY_WORD = text(
    _KEYWORD_SQL.format(query="to_tsquery('simple', :any_words)", exclude="AND NOT (p.id = ANY(:seen))")
)
_LEXEMES = text("SELECT unnest(tsvector_to_array(to_tsvector('english', :query)))")


def keyword(session: Session, *, query: str, limit: int, any_word: bool = True) -> list[KeywordRow]:
    """Papers matching every word (ts_rank_cd; title words weigh more), then (any_word) papers matching some."""
    params = {
        "query": query,
        "limit": limit,
        "options": _HEADLINE_OPTIONS,
        "sentinels": MARK_START + MARK_END,
    }
    rows = [_row(r, all_words=True) for r in session.execute(_ALL_WORDS, params)]
    lexemes = list(session.scalars(_LEXEMES, {"query": query})) if any_word and len(rows) < limit else []
    if len(lexemes) > 1:
        seen = [r.paper_id for r in rows]
        more = {**params, "any_words": _any_of(lexemes), "limit": limit - len(rows), "seen": seen}
        rows += [_row(r, all_words=False) for r in session.execute(_ANY_WORD, more)]
    return rows


def _any_of(lexemes: list[str]) -> str:
    """`'a' | 'b'` in tsquery syntax, each lexeme quoted (backslash escapes quotes and backslashes)."""
    quoted = ("'" + word.replace("\\", "\\\\").replace("'", "\\'") + "'" for word in lexemes)
    return " | ".join(quoted)


def _row(row: Any, *, all_words: bool) -> KeywordRow:
    return KeywordRow(paper_id=row.id, rank=float(row.rank), headline=row.headline, all_words=all_words)


def nearest(
    session: Session, *, vector: Any, model: str, limit: int, exclude: str | None = None
) -> list[tuple[str, float]]:
    """(paper_id, cosine similarity) of the nearest embeddings from `model`, via its HNSW index."""
    # ef_search bounds how many candidates HNSW returns; raise it past the page size.
    session.execute(text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(max(100, limit * 2))})
    dim = len(vector)
    # The same cast and model filter as the partial index (embeddings/repository.py), so the planner uses it.
    sql = text(
        f"""
        SELECT paper_id, 1 - (embedding::vector({dim}) <=> CAST(:query AS vector({dim}))) AS similarity
        FROM paper_embedding WHERE model = :model
        ORDER BY embedding::vector({dim}) <=> CAST(:query AS vector({dim}))
        LIMIT :limit
        """
    )
    query = "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"
    params = {"query": query, "model": model, "limit": limit + (1 if exclude else 0)}
    rows = [(r.paper_id, float(r.similarity)) for r in session.execute(sql, params)]
    return [row for row in rows if row[0] != exclude][:limit]


def embedding_of(session: Session, paper_id: str, *, model: str) -> Any | None:
    stmt = select(PaperEmbedding.embedding).where(
        PaperEmbedding.paper_id == paper_id, PaperEmbedding.model == model
    )
    return session.scalar(stmt)


def embedded_count(session: Session, *, model: str) -> int:
    stmt = select(func.count()).select_from(PaperEmbedding).where(PaperEmbedding.model == model)
    return session.scalar(stmt) or 0
