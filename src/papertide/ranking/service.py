"""Compute and store trending scores for every period."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.papers import repository as paper_repository
from papertide.ranking import repository, topics
from papertide.ranking.trending import PERIODS, DataClock, TrendParams, data_clock, rank


def params_from(settings: Settings) -> TrendParams:
    return TrendParams(
        gravity=settings.trend_gravity,
        weight_upvotes=settings.trend_weight_upvotes,
        weight_stars=settings.trend_weight_stars,
        weight_comments=settings.trend_weight_comments,
        weight_momentum=settings.trend_weight_momentum,
        weight_velocity=settings.trend_weight_velocity,
        weight_views=settings.trend_weight_views,
        weight_clicks=settings.trend_weight_clicks,
        decay_scale_hours=settings.trend_decay_scale_hours,
        velocity_window_hours=settings.trend_velocity_window_hours,
    )


def current_clock(session: Session, *, now: datetime) -> DataClock:
    """The moment trending is computed for: now, or the newest data when the data is old."""
    return data_clock(now=now, newest=paper_repository.newest_activity_at(session))


def rescore(session: Session, *, now: datetime, settings: Settings) -> dict[str, int]:
    """Topics, then every period's trend scores, as one step; returns how many each period ranks."""
    # Two score runs at once (the 15-minute cron and a digest run's own rescore) would both delete
    # and insert the same paper_score keys: the second waits for the first, then recomputes.
    repository.lock_scoring(session)
    # Topics first: their momentum is part of each paper's trend score.
    found = compute_topics(
        session, now=now, model=settings.embedding_model, baseline_weeks=settings.topic_baseline_weeks
    )
    counts = compute_scores(session, now=now, params=params_from(settings))
    return {**counts, "topics": found["topics"]}


def compute_scores(session: Session, *, now: datetime, params: TrendParams) -> dict[str, int]:
    """Rescore every period as of the data clock; returns how many papers each period ranks."""
    clock = current_clock(session, now=now)
    longest = max(PERIODS.values())
    activity = repository.load_activity(
        session, since=clock.as_of - longest, as_of=clock.as_of, params=params
    )
    counts = {}
    for period in PERIODS:
        scored = rank(activity, as_of=clock.as_of, period=period, params=params)
        repository.replace_scores(session, period=period, as_of=clock.as_of, scored=scored)
        counts[period] = len(scored)
    return counts


def compute_topics(session: Session, *, now: datetime, model: str, baseline_weeks: int = 4) -> dict[str, int]:
    """Cluster the embedded papers, keep ids of topics that mostly keep their papers, label and size them."""
    clock = current_clock(session, now=now)
    # Topics describe the recent literature: clustering only the weeks the charts show keeps the
    # 15-minute score job bounded however large the archive grows.
    papers = repository.embedded_papers(session, model=model, since=clock.as_of - topics.WINDOW)
    if len(papers) < 4:
        return {"topics": 0, "papers": len(papers)}
    vectors = np.stack([np.asarray(p[3], dtype=np.float32) for p in papers])
    labels = topics.spherical_kmeans(vectors, topics.cluster_count(len(papers)))
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    previous = {p[0]: p[4] for p in papers if p[4] is not None}
    next_id = max(previous.values(), default=0) + 1
    clusters = topics.assign_ids(
        [[papers[i][0] for i in g] for g in groups.values()], previous, next_id=next_id
    )
    frequencies = topics.document_frequencies([p[2] for p in papers])
    by_id = {p[0]: p for p in papers}
    rows = []
    for cluster in clusters:
        members = [by_id[pid] for pid in cluster.paper_ids]
        listed = [m[1] for m in members]
        terms = topics.label_terms([m[2] for m in members], frequencies, len(papers))
        rows.append(
            {
                "id": cluster.topic_id,
                "label": " · ".join(terms) or f"topic {cluster.topic_id}",
                "terms": terms,
                "size": len(members),
                "momentum": topics.momentum(listed, as_of=clock.as_of, baseline_weeks=baseline_weeks),
                "weekly": topics.weekly_sizes(listed, as_of=clock.as_of),
            }
        )
    assignment = {pid: c.topic_id for c in clusters for pid in c.paper_ids}
    repository.save_topics(session, rows, assignment)
    return {"topics": len(rows), "papers": len(papers)}
