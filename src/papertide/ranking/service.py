"""Compute and store topics and trending scores: the score job's one step (rescore)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.models.paper import TopicFit
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
    """Topics, then every period's trend scores, as one step; returns how many each period ranks.

    One step in the caller's transaction: a run that fails or is killed midway leaves the previous
    topics and scores as they were.
    """
    # Two score runs at once (the 15-minute cron and a digest run's own rescore) would both delete
    # and insert the same paper_score keys: the second waits for the first, then recomputes.
    repository.lock_scoring(session)
    clock = current_clock(session, now=now)  # read once: it scans the papers' dates
    # Topics first: their momentum is part of each paper's trend score.
    found = compute_topics(
        session,
        now=now,
        model=settings.embedding_model,
        baseline_weeks=settings.topic_baseline_weeks,
        clock=clock,
    )
    counts = compute_scores(session, now=now, params=params_from(settings), clock=clock)
    return {**counts, "topics": found["topics"]}


def compute_scores(
    session: Session, *, now: datetime, params: TrendParams, clock: DataClock | None = None
) -> dict[str, int]:
    """Rescore every period as of the data clock (read here unless given); returns how many papers
    each period ranks."""
    clock = clock or current_clock(session, now=now)
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


# Embeddings written up to this long before the last run are checked again: embedded_at is when
# their transaction began, and it may have committed after that run read the table.
REASSIGN_OVERLAP = timedelta(hours=1)


def compute_topics(
    session: Session,
    *,
    now: datetime,
    model: str,
    baseline_weeks: int = 4,
    clock: DataClock | None = None,
) -> dict[str, int]:
    """Keep the window's topics current, writing only the papers whose topic changes.

    Papers that left the window lose their topic; papers embedded since the last run join the topic
    of the nearest centroid; once the window has changed enough since the last fit (or the model
    has), the topics are fitted again, keeping the ids of topics that keep most of their papers.
    Sizes, weekly counts and momentum are counted in SQL.
    """
    clock = clock or current_clock(session, now=now)
    # Topics describe the recent literature: the weeks the charts show, however large the archive.
    since = clock.as_of - topics.WINDOW
    expired = repository.expire_topics(session, since=since)
    fit = repository.get_fit(session)
    topic_ids, centres = repository.centroids(session)
    if fit is None or _refit_due(
        session, fit, expired=expired, topic_ids=topic_ids, model=model, since=since
    ):
        refit(session, model=model, since=since, now=now)
    else:
        after = fit.assigned_at - REASSIGN_OVERLAP
        fresh = repository.fresh_vectors(session, model=model, since=since, embedded_after=after)
        moved = assign_nearest(session, fresh, topic_ids=topic_ids, centres=centres)
        repository.record_assignment(session, changed=expired + moved)
    return count_topics(session, as_of=clock.as_of, baseline_weeks=baseline_weeks, now=now)


def _refit_due(
    session: Session, fit: TopicFit, *, expired: int, topic_ids: list[int], model: str, since: datetime
) -> bool:
    """Whether the papers changed since the fit (expired ones included) and the new ones waiting
    call for a refit (topics.needs_refit)."""
    state = topics.FitState(fit.model, fit.papers, fit.changed + expired, has_centroids=bool(topic_ids))
    new = repository.count_unassigned(session, model=model, since=since)
    return topics.needs_refit(state, model=model, pending=state.changed + new)


def assign_nearest(
    session: Session, papers: repository.Vectors, *, topic_ids: list[int], centres: np.ndarray[Any, Any]
) -> int:
    """Give each paper the topic of its nearest centroid; returns how many papers changed topic."""
    if not papers.ids:
        return 0
    nearest = topics.nearest(papers.matrix, centres)
    changes = {
        pid: topic_ids[label]
        for pid, old, label in zip(papers.ids, papers.topic_ids, nearest, strict=True)
        if old != topic_ids[label]
    }
    return repository.set_topics(session, changes)


def refit(session: Session, *, model: str, since: datetime, now: datetime) -> int:
    """Cluster the window's papers afresh, keep the ids of topics that keep most of their papers,
    label them; write the topics, and the papers whose topic changed. Returns how many did."""
    window = repository.window_vectors(session, model=model, since=since)
    previous = repository.topic_assignment(session)
    existing = repository.topic_ids(session)
    clusters, rows = _cluster(session, window, previous, next_id=max(existing, default=0) + 1)
    repository.save_fitted_topics(session, rows)
    assignment = {pid: c.topic_id for c in clusters for pid in c.paper_ids}
    changes: dict[str, int | None] = {pid: None for pid in previous if pid not in assignment}
    changes.update({pid: tid for pid, tid in assignment.items() if previous.get(pid) != tid})
    moved = repository.set_topics(session, changes)
    repository.delete_topics(session, sorted(set(existing) - {c.topic_id for c in clusters}))
    repository.save_fit(session, model=model, papers=len(window.ids), fitted_at=now)
    return moved


def _cluster(
    session: Session, window: repository.Vectors, previous: dict[str, int], *, next_id: int
) -> tuple[list[topics.Cluster], list[dict[str, Any]]]:
    """Clusters with their topic ids, and the topic rows (id, label, terms, centroid) to save."""
    n = len(window.ids)
    if n < 4:
        return [], []
    # Centroids and labels are learnt from samples (a fit at a million papers stays seconds); every
    # paper then joins its nearest centroid, which is also the rule for the papers that come later.
    sample = topics.fit_sample(n)
    centres = topics.fit_centroids(window.matrix[sample], topics.cluster_count(n))
    labels = topics.nearest(window.matrix, centres)
    groups: dict[int, list[str]] = {}
    for pid, label in zip(window.ids, labels, strict=True):
        groups.setdefault(int(label), []).append(pid)
    label_of = {group[0]: label for label, group in groups.items()}
    clusters = topics.assign_ids(list(groups.values()), previous, next_id=next_id)
    chosen = {c.topic_id: topics.label_sample(c.paper_ids) for c in clusters}
    texts = repository.paper_texts(session, [pid for ids in chosen.values() for pid in ids])
    terms = topics.group_labels({tid: [texts[pid] for pid in ids] for tid, ids in chosen.items()})
    rows = [
        {
            "id": c.topic_id,
            "label": " · ".join(terms[c.topic_id]) or f"topic {c.topic_id}",
            "terms": terms[c.topic_id],
            "centroid": centres[label_of[c.paper_ids[0]]],
        }
        for c in clusters
    ]
    return clusters, rows


def count_topics(session: Session, *, as_of: datetime, baseline_weeks: int, now: datetime) -> dict[str, int]:
    """Each topic's size, weekly counts and momentum as of `as_of`, counted in SQL; topics left
    with no papers go."""
    counts = repository.topic_counts(session, as_of=as_of, baseline_weeks=baseline_weeks)
    repository.delete_topics(session, [t for t in repository.topic_ids(session) if t not in counts])
    rows = [
        {
            "id": topic_id,
            "size": c.size,
            "momentum": topics.momentum_from_counts(c.this_week, c.before, baseline_weeks=baseline_weeks),
            "weekly": topics.weekly_from_counts(c.weekly, as_of=as_of),
        }
        for topic_id, c in counts.items()
    ]
    repository.update_topic_stats(session, rows, at=now)
    return {"topics": len(rows), "papers": sum(c.size for c in counts.values())}
