"""SQL for trending: the activity the formula reads, and the scores it writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import Session

from papertide.models import Paper, PaperEmbedding, PaperScore, PaperSignal, PaperView, Topic
from papertide.ranking.trending import Activity, TrendParams


def load_activity(
    session: Session, *, since: datetime, as_of: datetime, params: TrendParams
) -> list[Activity]:
    """Papers listed in (since, as_of]: signal values at as_of and at each period's velocity window start."""
    listed_at = func.coalesce(Paper.announced_at, Paper.published_at, Paper.first_seen_at)
    papers = session.execute(
        select(Paper.id, listed_at.label("listed_at")).where(listed_at > since, listed_at <= as_of)
    ).all()
    if not papers:
        return []
    ids = [p.id for p in papers]
    windows = {period: params.velocity_window(period) for period in params.velocity_window_hours}
    current = _values_at(session, ids, at=as_of)
    earlier = {period: _values_at(session, ids, at=as_of - window) for period, window in windows.items()}
    momentum = topic_momentum(session)
    attention = {
        period: _attention(session, ids, since=as_of - window, until=as_of)
        for period, window in windows.items()
    }
    return [
        Activity(
            paper_id=p.id,
            listed_at=p.listed_at,
            momentum=momentum.get(p.id, 1.0),
            attention={period: counts.get(p.id, {}) for period, counts in attention.items()},
            earlier={period: _known(values.get(p.id, {})) for period, values in earlier.items()},
            **_known(current.get(p.id, {})),
        )
        for p in papers
    ]


def _attention(
    session: Session, ids: list[str], *, since: datetime, until: datetime
) -> dict[str, dict[str, float]]:
    """paper_id -> {"views", "clicks"} counted on the days in (since, until]."""
    stmt = (
        select(PaperView.paper_id, func.sum(PaperView.views), func.sum(PaperView.clicks))
        .where(PaperView.paper_id.in_(ids), PaperView.day > since.date(), PaperView.day <= until.date())
        .group_by(PaperView.paper_id)
    )
    return {row[0]: {"views": float(row[1]), "clicks": float(row[2])} for row in session.execute(stmt)}


def _values_at(session: Session, ids: list[str], *, at: datetime) -> dict[str, dict[str, float]]:
    """paper_id -> kind -> the newest value observed at or before `at`."""
    latest = (
        select(PaperSignal.paper_id, PaperSignal.kind, PaperSignal.value)
        .where(PaperSignal.observed_at <= at, PaperSignal.paper_id.in_(ids))
        .ext(distinct_on(PaperSignal.paper_id, PaperSignal.kind))
        .order_by(PaperSignal.paper_id, PaperSignal.kind, PaperSignal.observed_at.desc())
    )
    values: dict[str, dict[str, float]] = {}
    for row in session.execute(latest):
        values.setdefault(row.paper_id, {})[row.kind] = row.value
    return values


def _known(values: dict[str, float]) -> dict[str, float]:
    return {kind: values[kind] for kind in ("upvotes", "github_stars", "comments") if kind in values}


def lock_scoring(session: Session) -> None:
    """Wait for any other scoring transaction to finish; held until the caller's transaction ends."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('papertide:score'))"))


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


def embedded_papers(
    session: Session, *, model: str, since: datetime
) -> list[tuple[str, datetime, str, Any, int | None]]:
    """(id, listed_at, title + abstract, vector, current topic id) of papers listed after `since`, embedded by `model`."""
    listed_at = func.coalesce(Paper.announced_at, Paper.published_at, Paper.first_seen_at)
    stmt = (
        select(Paper.id, listed_at, Paper.title, Paper.abstract, PaperEmbedding.embedding, Paper.topic_id)
        .join(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .where(PaperEmbedding.model == model, listed_at > since)
        .order_by(Paper.id)
    )
    return [(r[0], r[1], f"{r[2]} {r[3]}", r[4], r[5]) for r in session.execute(stmt)]


def save_topics(session: Session, topics: list[dict[str, Any]], assignment: dict[str, int]) -> None:
    """Replace the topic table's rows and every paper's topic_id with a fresh clustering."""
    session.execute(update(Paper).values(topic_id=None))
    session.execute(delete(Topic))
    if topics:
        session.execute(insert(Topic), topics)
    by_topic: dict[int, list[str]] = {}
    for paper_id, topic_id in assignment.items():
        by_topic.setdefault(topic_id, []).append(paper_id)
    for topic_id, paper_ids in by_topic.items():
        session.execute(update(Paper).where(Paper.id.in_(paper_ids)).values(topic_id=topic_id))


def topic_momentum(session: Session) -> dict[str, float]:
    """paper_id -> the momentum of its topic."""
    stmt = select(Paper.id, Topic.momentum).join(Topic, Topic.id == Paper.topic_id)
    return {row[0]: float(row[1]) for row in session.execute(stmt)}


def topics_by_momentum(session: Session) -> list[Topic]:
    return list(session.scalars(select(Topic).order_by(Topic.momentum.desc(), Topic.size.desc(), Topic.id)))


def topic_papers(
    session: Session, topic_id: int, *, limit: int = 50
) -> list[tuple[Paper, PaperScore | None]]:
    """A topic's papers by their month trend score (unscored papers last, newest first)."""
    stmt = (
        select(Paper, PaperScore)
        .outerjoin(PaperScore, (PaperScore.paper_id == Paper.id) & (PaperScore.period == "month"))
        .where(Paper.topic_id == topic_id)
        .order_by(PaperScore.score.desc().nulls_last(), Paper.announced_at.desc().nulls_last(), Paper.id)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in session.execute(stmt)]
