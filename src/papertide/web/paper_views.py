"""What the paper pages and the paper API show, gathered from the papers, ranking and search layers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from papertide.models import Paper, PaperScore, Topic
from papertide.papers import repository as paper_repository
from papertide.papers.ids import split_arxiv_id
from papertide.ranking import repository as ranking_repository
from papertide.ranking.trending import STALE_AFTER
from papertide.search import service as search_service
from papertide.search.schemas import SearchHit
from papertide.templating import counted


@dataclass
class PaperDetail:
    paper: Paper
    scores: dict[str, PaperScore]
    signals: dict[str, float]
    history: list[tuple[datetime, float]]
    similar: list[SearchHit] = field(default_factory=list)
    topic: Topic | None = None
    arxiv_id: str | None = None  # None for a paper that is not from arXiv: no "arXiv" label on it


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
        arxiv_id=arxiv_id(paper.id),
    )


@dataclass(frozen=True)
class ShareCard:
    """What a link to a paper shows when shared (OpenGraph and Twitter card tags on its page)."""

    title: str
    description: str
    url: str


SHARE_DESCRIPTION_LENGTH = 300  # previews cut near here anyway; a whole sentence or word reads better


def share_card(paper: Paper, *, base_url: str) -> ShareCard:
    """The paper's title, its abstract cut at a word near 300 characters, and its absolute URL."""
    return ShareCard(
        title=paper.title,
        description=shorten(paper.abstract, SHARE_DESCRIPTION_LENGTH),
        url=paper_url(paper.id, base_url=base_url),
    )


def paper_url(paper_id: str, *, base_url: str) -> str:
    """The paper page's absolute URL; an old-style arXiv id keeps its slash (hep-th/9901001)."""
    return f"{base_url.rstrip('/')}/papers/{quote(paper_id, safe='/')}"


def shorten(text: str, limit: int) -> str:
    """`text` with its whitespace collapsed, cut at the last word that fits in `limit`, plus `…`."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def arxiv_id(paper_id: str) -> str | None:
    """The paper's arXiv id, or None when its id is not one (a paper from a JSONL file or Kaggle
    without an arXiv id gets an id derived from its title, papers.ids.id_from_title)."""
    parsed = split_arxiv_id(paper_id)
    return parsed[0] if parsed else None


# The words each trending tab uses for its own period.
PERIOD_WORDS = {"day": "today", "week": "this week", "month": "this month"}


def trend_reason(components: Mapping[str, Any], *, period: str) -> str:
    """Why a paper is on a trending list, in a reader's words: `+165 upvotes today · 8 stars`.

    Built from the score's stored components (ranking.trending.components). A paper is on a
    period's list only if it was listed inside that period, so the upvotes it has came in during it
    (Hugging Face counts start when a paper is listed). The score itself stays on the paper's page.
    """
    upvotes = int(components.get("upvotes") or 0)
    parts = [
        f"+{counted(upvotes, 'upvote')} {PERIOD_WORDS.get(period, '')}".rstrip()
        if upvotes
        else "no upvotes yet"
    ]
    for key, noun in (("github_stars", "star"), ("comments", "comment")):
        if int(components.get(key) or 0):
            parts.append(counted(components[key], noun))
    if int(components.get("views") or 0):
        parts.append(counted(components["views"], "view") + " here")
    if float(components.get("momentum_boost") or 1.0) > 1.0:
        parts.append("rising topic")
    return " · ".join(parts)


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
    return clock_at(ranking_repository.scored_as_of(session))


def clock_at(as_of: datetime | None) -> dict[str, object]:
    """trending_clock() for a known `as_of` (the cached score run's: web/caching.py), with no query."""
    stale = as_of is not None and datetime.now(UTC) - as_of > STALE_AFTER
    return {"as_of": as_of, "stale": stale}
