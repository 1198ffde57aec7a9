"""Compute and store trending scores for every period."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.papers import repository as paper_repository
from papertide.ranking import repository
from papertide.ranking.trending import PERIODS, DataClock, TrendParams, data_clock, rank


def params_from(settings: Settings) -> TrendParams:
    return TrendParams(
        gravity=settings.trend_gravity,
        weight_upvotes=settings.trend_weight_upvotes,
        weight_stars=settings.trend_weight_stars,
        weight_comments=settings.trend_weight_comments,
    )


def current_clock(session: Session, *, now: datetime) -> DataClock:
    """The moment trending is computed for: now, or the newest data when the data is old."""
    return data_clock(now=now, newest=paper_repository.newest_activity_at(session))


def compute_scores(session: Session, *, now: datetime, params: TrendParams) -> dict[str, int]:
    """Rescore every period as of the data clock; returns how many papers each period ranks."""
    clock = current_clock(session, now=now)
    longest = max(PERIODS.values())
    activity = repository.load_activity(session, since=clock.as_of - longest, as_of=clock.as_of)
    counts = {}
    for period in PERIODS:
        scored = rank(activity, as_of=clock.as_of, period=period, params=params)
        repository.replace_scores(session, period=period, as_of=clock.as_of, scored=scored)
        counts[period] = len(scored)
    return counts
