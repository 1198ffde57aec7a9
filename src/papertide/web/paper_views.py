"""What the paper pages and the paper API show, gathered from the papers, ranking and search layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from papertide.models import Paper, PaperScore, Topic
from papertide.papers import repository as paper_repository
from papertide.ranking import repository as ranking_repository
from papertide.ranking.trending import STALE_AFTER
from papertide.search import service as search_service
from papertide.search.schemas import SearchHit


@dataclass
class PaperDetail:
    paper: Paper
    scores: dict[str, PaperScore]
    signals: dict[str, float]
    history: list[tuple[datetime, float]]
    similar: list[SearchHit] = field(default_factory=list)
    topic: Topic | None = None


def get_detail(session: Session, paper_id: str, *, model: str, similar_limit: int = 8) -> PaperDetail | None:
    """The paper with its trend breakdown, signals, upvote history and similar papers; None if unknown."""
    paper = paper_repository.get_paper(session, paper_id)
    if paper is None:
        return None
    return PaperDetail(
        paper=paper,
        scores={score.period: score for score in paper_repository.get_scores(session, paper_id)},
        signals=paper_repository.latest_signals(session, paper_id),
        history=paper_repository.signal_history(session, paper_id, "upvotes"),
        similar=search_service.similar(session, paper_id, model=model, limit=similar_limit)
        if similar_limit
        else [],
        topic=paper_repository.get_topic(session, paper.topic_id) if paper.topic_id else None,
    )


def sparkline_points(history: list[tuple[datetime, float]], *, width: int = 120, height: int = 28) -> str:
    """SVG polyline points for a small chart of one signal over time ('' with fewer than two points)."""
    if len(history) < 2:
        return ""
    start, end = history[0][0], history[-1][0]
    span = (end - start).total_seconds() or 1.0
    top = max(value for _, value in history) or 1.0
    points = []
    for at, value in history:
        x = (at - start).total_seconds() / span * width
        y = height - value / top * (height - 2) - 1
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)


def trending_clock(session: Session) -> dict[str, object]:
    """When the shown ranking was computed for, and whether that is older than today."""
    as_of = ranking_repository.scored_as_of(session)
    stale = as_of is not None and datetime.now(UTC) - as_of > STALE_AFTER
    return {"as_of": as_of, "stale": stale}
