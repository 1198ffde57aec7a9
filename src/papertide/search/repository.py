"""SQL for search: the keyword index's queue and source rows, vector search, trend order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from papertide.embeddings import repository as embedding_repository
from papertide.models import KeywordPending, PaperEmbedding, PaperScore
from papertide.papers import categories
from papertide.search.keyword_index import KeywordDoc
from papertide.search.schemas import DateField, SearchFilters

# --- the keyword index's queue (filled by triggers on paper, migration 0012) -----------------------

_DOC_COLUMNS = "p.title, p.abstract, p.authors, p.categories, p.published_at, p.announced_at, p.code_url"

# Claimed rows are deleted in the caller's transaction, which commits only after the index has
# committed them; SKIP LOCKED lets two feeders take different papers. A paper deleted since it was
# queued comes back with no text: the index drops it.
_CLAIM = text(
    f"""
    WITH claimed AS (
        DELETE FROM keyword_pending WHERE paper_id IN (
            SELECT paper_id FROM keyword_pending ORDER BY paper_id LIMIT :limit FOR UPDATE SKIP LOCKED
        )
        RETURNING paper_id
    )
    SELECT c.paper_id, p.id IS NOT NULL AS present, {_DOC_COLUMNS}
    FROM claimed c LEFT JOIN paper p ON p.id = c.paper_id
    """
)


@dataclass(frozen=True)
class ClaimedBatch:
    docs: list[KeywordDoc]  # papers to (re)index
    gone: list[str]  # papers deleted since they were queued


def claim_pending(session: Session, *, limit: int) -> ClaimedBatch:
    """Up to `limit` queued papers, taken off the queue when the caller's transaction commits."""
    docs, gone = [], []
    for row in session.execute(_CLAIM, {"limit": limit}):
        if row.present:
            docs.append(_doc(row.paper_id, row))
        else:
            gone.append(row.paper_id)
    return ClaimedBatch(docs, gone)


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(KeywordPending)) or 0


def queue_everything(session: Session) -> int:
    """Queue every paper (a new, empty index must be filled from the database)."""
    stmt = text(
        "INSERT INTO keyword_pending (paper_id) SELECT id FROM paper ON CONFLICT (paper_id) DO NOTHING"
    )
    return session.execute(stmt).rowcount  # type: ignore[attr-defined,no-any-return]


def every_paper(session: Session, *, batch_size: int) -> Iterator[list[KeywordDoc]]:
    """Every paper as the index holds it, in batches, streamed (a server-side cursor)."""
    stmt = text(f"SELECT p.id AS paper_id, {_DOC_COLUMNS} FROM paper p")
    result = session.execute(stmt, execution_options={"stream_results": True, "yield_per": batch_size})
    for rows in result.partitions(batch_size):  # partitions() alone ignored yield_per: one list of every row
        yield [_doc(row.paper_id, row) for row in rows]


def paper_count(session: Session) -> int:
    return session.scalar(text("SELECT count(*) FROM paper")) or 0


def pending_in_snapshot(session: Session) -> list[tuple[str, datetime]]:
    """The queue as of one snapshot that the rest of the transaction keeps (REPEATABLE READ): a
    rebuild that then reads every paper has read each queued change."""
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    stmt = select(KeywordPending.paper_id, KeywordPending.queued_at)
    return [(row.paper_id, row.queued_at) for row in session.execute(stmt)]


def forget_pending(session: Session, queued: list[tuple[str, datetime]]) -> int:
    """Delete these queue rows, unless queued again since (a new queued_at)."""
    if not queued:
        return 0
    stmt = text(
        "DELETE FROM keyword_pending k USING unnest(CAST(:ids AS text[]), CAST(:times AS timestamptz[])) AS s(id, at)"
        " WHERE k.paper_id = s.id AND k.queued_at = s.at"
    )
    ids, times = zip(*queued, strict=True)
    return session.execute(stmt, {"ids": list(ids), "times": list(times)}).rowcount  # type: ignore[attr-defined,no-any-return]


def _doc(paper_id: str, row: Any) -> KeywordDoc:
    return KeywordDoc(
        paper_id=paper_id,
        title=row.title or "",
        abstract=row.abstract or "",
        authors=row.authors or [],
        categories=row.categories or [],
        published=row.published_at,
        listed=row.announced_at,
        has_code=row.code_url is not None,
    )


# --- vectors -------------------------------------------------------------------------------------


def nearest(
    session: Session,
    *,
    vector: Any,
    model: str,
    limit: int,
    exclude: str | None = None,
    filters: SearchFilters | None = None,
    among: Sequence[str] | None = None,
    ef_search: int = 100,
) -> list[tuple[str, float]]:
    """(paper_id, cosine similarity) of the nearest embeddings from `model`: the HNSW graph's and
    the fresh part's (embeddings/repository.py), so a vector counts from its commit on.

    With filters, the graph's candidates are filtered after the fact; when that leaves fewer than
    `limit` (a narrow filter), the filtered papers are ranked exactly instead. `among`: only these
    papers (an author's, as the keyword index found them)."""
    want = limit + (1 if exclude else 0)
    # ef_search bounds how many candidates HNSW returns: at least the page's depth.
    session.execute(text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(max(ef_search, want))})
    dim = len(vector)
    where, params = _filter_sql(filters)
    if among is not None:
        where += " AND p.id = ANY(CAST(:among AS text[]))"
        params["among"] = list(among)
    params |= {
        "query": "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]",
        "model": model,
        "limit": want,
    }
    distance = f"e.embedding::vector({dim}) <=> CAST(:query AS vector({dim}))"
    join = "JOIN paper p ON p.id = e.paper_id" if where else ""
    part = (
        f"(SELECT e.paper_id, {distance} AS distance FROM paper_embedding e {join} "
        f"WHERE e.model = :model{{watermark}}{where} ORDER BY {distance} LIMIT :limit)"
    )
    graph = embedding_repository.graph_of(session, model=model, dim=dim)
    if graph is None:
        branches = part.format(watermark="")
    else:
        # The index's own predicate, repeated, so the planner proves the partial HNSW index applies.
        stamp = f"'{graph.watermark.isoformat()}'::timestamptz"
        branches = f"{part.format(watermark=f' AND e.embedded_at <= {stamp}')} UNION ALL " + part.format(
            watermark=f" AND e.embedded_at > {stamp}"
        )
    approximate = text(
        f"SELECT paper_id, 1 - distance AS similarity FROM ({branches}) AS near ORDER BY distance LIMIT :limit"
    )
    rows = [(r.paper_id, float(r.similarity)) for r in session.execute(approximate, params)]
    if where and len(rows) < want:
        exact = text(
            f"""
            WITH candidates AS MATERIALIZED (
                SELECT e.paper_id, e.embedding FROM paper_embedding e JOIN paper p ON p.id = e.paper_id
                WHERE e.model = :model {where}
            )
            SELECT e.paper_id, 1 - ({distance}) AS similarity FROM candidates e
            ORDER BY {distance} LIMIT :limit
            """
        )
        rows = [(r.paper_id, float(r.similarity)) for r in session.execute(exact, params)]
    return [row for row in rows if row[0] != exclude][:limit]


def _filter_sql(filters: SearchFilters | None) -> tuple[str, dict[str, Any]]:
    """The filters as SQL conditions on `p` (paper), every value a bound parameter."""
    if filters is None or not filters.active:
        return "", {}
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if filters.author:
        raise ValueError("an author filter is matched by the keyword index: pass its papers as `among`")
    if filters.categories:
        condition = "p.categories && CAST(:categories AS text[])"
        params["categories"] = list(filters.categories)
        if archives := categories.archives(filters.categories):
            # An archive ("cs") takes in its subject classes (cs.CL, ...): papers/categories.py.
            condition = (
                f"({condition} OR EXISTS (SELECT 1 FROM unnest(p.categories) AS c"
                " WHERE c LIKE ANY(CAST(:category_classes AS text[]))))"
            )
            params["category_classes"] = [f"{archive}.%" for archive in archives]
        conditions.append(condition)
    column = (
        "coalesce(p.published_at, p.announced_at)"
        if filters.date_field == DateField.PUBLISHED
        else "p.announced_at"
    )
    if filters.date_from:
        conditions.append(f"{column} >= :date_from")
        params["date_from"] = datetime.combine(filters.date_from, time(), tzinfo=UTC)
    if filters.date_to:
        conditions.append(f"{column} < :date_to")
        params["date_to"] = datetime.combine(filters.date_to, time(), tzinfo=UTC) + timedelta(days=1)
    if filters.has_code:
        conditions.append("p.code_url IS NOT NULL")
    return "".join(f" AND {c}" for c in conditions), params


def embedding_of(session: Session, paper_id: str, *, model: str) -> Any | None:
    stmt = select(PaperEmbedding.embedding).where(
        PaperEmbedding.paper_id == paper_id, PaperEmbedding.model == model
    )
    return session.scalar(stmt)


def embedded_count(session: Session, *, model: str) -> int:
    stmt = select(func.count()).select_from(PaperEmbedding).where(PaperEmbedding.model == model)
    return session.scalar(stmt) or 0


# --- the facts a sort needs ------------------------------------------------------------------------


def trend_scores(session: Session, *, period: str, limit: int) -> list[tuple[str, float]]:
    """(paper_id, trend score) of the period's most trending papers, highest first."""
    stmt = (
        select(PaperScore.paper_id, PaperScore.score)
        .where(PaperScore.period == period)
        .order_by(PaperScore.score.desc(), PaperScore.paper_id)
        .limit(limit)
    )
    return [(row.paper_id, float(row.score)) for row in session.execute(stmt)]


def published_times(session: Session, ids: Sequence[str]) -> dict[str, datetime]:
    """When each paper was published (or listed, when the source gave no date)."""
    if not ids:
        return {}
    stmt = text(
        "SELECT id, coalesce(published_at, announced_at, first_seen_at) AS at FROM paper WHERE id = ANY(:ids)"
    )
    return {row.id: row.at for row in session.execute(stmt, {"ids": list(ids)})}
