"""SQL for trending: the activity the formula reads, and the scores it writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import Session

from papertide.models import Paper, PaperScore, PaperSignal
from papertide.ranking.trending import Activity


def load_activity(session: Session, *, since: datetime, as_of: datetime) -> list[Activity]:
    """Papers listed in (since, as_of] with their newest signal values observed by as_of."""
    listed_at = func.coalesce(Paper.announced_at, Paper.published_at, Paper.first_seen_at)
    papers = session.execute(
        select(Paper.id, listed_at.label("listed_at")).where(listed_at > since, listed_at <= as_of)
    ).all()
    if not papers:
        return []
    latest = (
        select(PaperSignal.paper_id, PaperSignal.kind, PaperSignal.value)
        .where(PaperSignal.observed_at <= as_of, PaperSignal.paper_id.in_([p.id for p in papers]))
        .ext(distinct_on(PaperSignal.paper_id, PaperSignal.kind))
        .order_by(PaperSignal.paper_id, PaperSignal.kind, PaperSignal.observed_at.desc())
    )
    values: dict[str, dict[str, float]] = {}
    for row in session.execute(latest):
        values.setdefault(row.paper_id, {})[row.kind] = row.value
    return [Activity(paper_id=p.id, listed_at=p.listed_at, **_known(values.get(p.id, {}))) for p in papers]


def _known(values: dict[str, float]) -> dict[str, float]:
    return {kind: values[kind] for kind in ("upvotes", "github_stars", "comments") if kind in values}


def replace_scores(
    session: Session, *, period: str, as_of: datetime, scored: Sequence[tuple[str, float, dict[str, Any]]]
) -> None:
    """Swap one period's scores for a fresh set, inside the caller's transaction."""
    session.execute(delete(PaperScore).where(PaperScore.period == period))
    if scored:
        rows = [
            {"paper_id": pid, "period": period, "score": score, "components": parts, "as_of": as_of}
            for pid, score, parts in scored
        ]
        session.execute(insert(PaperScore), rows)


def trending(session: Session, *, period: str, limit: int, offset: int = 0) -> list[tuple[Paper, PaperScore]]:
    """Papers in trend order for one period."""
    stmt = (
        select(Paper, PaperScore)
        .join(PaperScore, PaperScore.paper_id == Paper.id)
        .where(PaperScore.period == period)
        .order_by(PaperScore.score.desc(), Paper.id)
        .limit(limit)
        .offset(offset)
    )
    return [(row[0], row[1]) for row in session.execute(stmt)]


def scored_as_of(session: Session) -> datetime | None:
    """The `as_of` of the current scores, if any were computed."""
    return session.scalar(select(func.max(PaperScore.as_of)))
