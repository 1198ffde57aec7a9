"""The trending formula (docs/trending.md), as pure functions of the data and of `as_of`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

PERIODS: dict[str, timedelta] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
}

# The pace of decay for each tab: a day's list is
# about hours, a month's list about days, so the month tab is not just "the newest papers".
DECAY_SCALE_HOURS: dict[str, float] = {"day": 12.0, "week": 48.0, "month": 168.0}

# Engagement velocity: what a paper gained over this window before as_of, per day.
VELOCITY_WINDOW: dict[str, timedelta] = {
    "day": timedelta(days=1),
    "week": timedelta(days=3),
    "month": timedelta(days=7),
}

# When the newest data is more than this older than the clock, trending is shown "as of" the data.
STALE_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class TrendParams:
    gravity: float = 1.5
    weight_upvotes: float = 1.0
    weight_stars: float = 0.05
    weight_comments: float = 2.0
    weight_momentum: float = 0.5
    weight_velocity: float = 1.0
    weight_views: float = 0.1
    weight_clicks: float = 1.0
    decay_scale_hours: Mapping[str, float] = field(default_factory=lambda: dict(DECAY_SCALE_HOURS))
    velocity_window_hours: Mapping[str, float] = field(
        default_factory=lambda: {p: w.total_seconds() / 3600 for p, w in VELOCITY_WINDOW.items()}
    )

    def velocity_window(self, period: str) -> timedelta:
        return timedelta(hours=self.velocity_window_hours[period])


@dataclass(frozen=True)
class Activity:
    """What trending needs to know of one paper at `as_of`."""

    paper_id: str
    listed_at: datetime
    upvotes: float = 0.0
    github_stars: float = 0.0
    comments: float = 0.0
    momentum: float = 1.0  # of the paper's topic: papers this week / weekly baseline (topics.momentum)
    # period -> kind -> value observed at the start of that period's velocity window
    earlier: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # period -> {"views", "clicks"}: local page views and digest clicks inside the velocity window
    attention: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class DataClock:
    as_of: datetime
    stale: bool  # True when the data is older than the clock and as_of is the newest data point


def data_clock(*, now: datetime, newest: datetime | None) -> DataClock:
    """Rank as of now, unless the newest data is older than a day: then as of that data."""
    if newest is None or now - newest <= STALE_AFTER:
        return DataClock(as_of=now, stale=False)
    return DataClock(as_of=newest, stale=True)


def engagement(activity: Activity, params: TrendParams) -> float:
    return _weighted(activity.upvotes, activity.github_stars, activity.comments, params)


def _weighted(upvotes: float, github_stars: float, comments: float, params: TrendParams) -> float:
    return (
        params.weight_upvotes * upvotes
        + params.weight_stars * github_stars
        + params.weight_comments * comments
    )


def velocity(activity: Activity, *, as_of: datetime, period: str, params: TrendParams) -> float:
    """Engagement gained per day over the period's velocity window.

    A count first seen inside the window started from 0 if the paper was listed inside it; for an
    older paper an unseen start means an unknown history, counted as no gain.
    """
    window = params.velocity_window(period)
    start = activity.earlier.get(period, {})
    listed_inside = activity.listed_at > as_of - window

    def gained(kind: str, now: float) -> float:
        return max(now - start.get(kind, 0.0 if listed_inside else now), 0.0)

    per_window = _weighted(
        gained("upvotes", activity.upvotes),
        gained("github_stars", activity.github_stars),
        gained("comments", activity.comments),
        params,
    )
    return per_window / (window.total_seconds() / 86400.0)


def components(activity: Activity, *, as_of: datetime, period: str, params: TrendParams) -> dict[str, Any]:
    """The score and every number it came from, stored so pages can say why a paper trends."""
    age_hours = max((as_of - activity.listed_at).total_seconds() / 3600.0, 0.0)
    decay = (1.0 + age_hours / params.decay_scale_hours[period]) ** -params.gravity
    per_day = velocity(activity, as_of=as_of, period=period, params=params)
    local = activity.attention.get(period, {})
    views, clicks = local.get("views", 0.0), local.get("clicks", 0.0)
    attention = params.weight_views * views + params.weight_clicks * clicks
    points = engagement(activity, params) + params.weight_velocity * per_day + attention
    # A growing topic lifts its papers; a steady or shrinking one leaves them as they are.
    boost = 1.0 + params.weight_momentum * math.log(max(activity.momentum, 1.0))
    # +1 so papers with no engagement at all still rank, newest first.
    score = (points + 1.0) * decay * boost
    return {
        "upvotes": activity.upvotes,
        "github_stars": activity.github_stars,
        "comments": activity.comments,
        "engagement": round(engagement(activity, params), 4),
        "velocity_per_day": round(per_day, 4),
        "views": views,
        "digest_clicks": clicks,
        "age_hours": round(age_hours, 2),
        "decay": round(decay, 6),
        "topic_momentum": round(activity.momentum, 3),
        "momentum_boost": round(boost, 4),
        "score": score,
    }


def in_window(activity: Activity, *, as_of: datetime, period: str) -> bool:
    return as_of - PERIODS[period] < activity.listed_at <= as_of


def rank(
    activities: Iterable[Activity], *, as_of: datetime, period: str, params: TrendParams
) -> list[tuple[str, float, dict[str, Any]]]:
    """(paper_id, score, components) for the papers listed in the period, best first; ties by id."""
    scored = []
    for activity in activities:
        if in_window(activity, as_of=as_of, period=period):
            parts = components(activity, as_of=as_of, period=period, params=params)
            scored.append((activity.paper_id, parts["score"], parts))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored
