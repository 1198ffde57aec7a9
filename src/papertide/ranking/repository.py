"""SQL for trending and topics: the activity the formula reads, the vectors topics are fitted on,
and what both write."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Text,
    any_,
    bindparam,
    case,
    column,
    delete,
    func,
    select,
    text,
    union,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP, distinct_on, insert
from sqlalchemy.orm import Session

from papertide.models import (
    JobRun,
    JobStatus,
    Paper,
    PaperEmbedding,
    PaperScore,
    PaperSignal,
    PaperView,
    Topic,
)
from papertide.models.paper import TopicFit
from papertide.ranking.trending import Activity, TrendParams


def listed_at() -> ColumnElement[datetime]:
    """When a paper was listed: its announcement, else its publication, else when we first saw it.

    Indexed as written (ix_paper_listed_at): the recent weeks are a range scan at any archive size.
    """
    return func.coalesce(Paper.announced_at, Paper.published_at, Paper.first_seen_at)


def load_activity(
    session: Session, *, since: datetime, as_of: datetime, params: TrendParams
) -> list[Activity]:
    """Papers listed in (since, as_of]: signal values at as_of and at each period's velocity window start."""
    window = (listed_at() > since) & (listed_at() <= as_of)
    papers = session.execute(
        select(Paper.id, listed_at().label("listed_at"), Topic.momentum)
        .outerjoin(Topic, Topic.id == Paper.topic_id)
        .where(window)
    ).all()
    if not papers:
        return []
    # The window's signals and views, selected by the server (no list of ids goes back), each in
    # one statement for every moment the formula reads.
    ids = select(Paper.id).where(window)
    starts = {period: as_of - params.velocity_window(period) for period in params.velocity_window_hours}
    signals = _values_at(session, ids, moments={NOW: as_of, **starts})
    attention = _attention(session, ids, starts=starts, until=as_of)
    none: dict[str, dict[str, float]] = {}
    return [
        Activity(
            paper_id=p.id,
            listed_at=p.listed_at,
            momentum=1.0 if p.momentum is None else float(p.momentum),
            attention=attention.get(p.id, none),
            earlier={
                moment: _known(kinds) for moment, kinds in signals.get(p.id, none).items() if moment != NOW
            },
            **_known(signals.get(p.id, none).get(NOW, {})),
        )
        for p in papers
    ]


NOW = "now"  # the moment key of the values at as_of, beside each period's window start


def _attention(
    session: Session, ids: Any, *, starts: Mapping[str, datetime], until: datetime
) -> dict[str, dict[str, dict[str, float]]]:
    """paper_id -> period -> {"views", "clicks"} counted on the days in (start of period, until]."""
    sums = []
    for start in starts.values():
        inside = PaperView.day > start.date()
        sums += [func.count().filter(inside), func.sum(PaperView.views).filter(inside)]
        sums += [func.sum(PaperView.clicks).filter(inside)]
    stmt = (
        select(PaperView.paper_id, *sums)
        .where(
            PaperView.paper_id.in_(ids),
            PaperView.day > min(starts.values()).date(),
            PaperView.day <= until.date(),
        )
        .group_by(PaperView.paper_id)
    )
    counts: dict[str, dict[str, dict[str, float]]] = {}
    for row in session.execute(stmt):
        for n, period in enumerate(starts):
            days, views, clicks = row[1 + 3 * n : 4 + 3 * n]
            if days:
                counts.setdefault(row[0], {})[period] = {"views": float(views), "clicks": float(clicks)}
    return counts


def _values_at(
    session: Session, ids: Any, *, moments: Mapping[str, datetime]
) -> dict[str, dict[str, dict[str, float]]]:
    """paper_id -> moment key -> kind -> the newest value observed at or before that moment."""
    moment = values(column("key", Text), column("at", TIMESTAMP(timezone=True)), name="moment").data(
        list(moments.items())
    )
    latest = (
        select(moment.c.key, PaperSignal.paper_id, PaperSignal.kind, PaperSignal.value)
        .select_from(PaperSignal)
        .join(moment, PaperSignal.observed_at <= moment.c.at)
        .where(PaperSignal.paper_id.in_(ids))
        .ext(distinct_on(PaperSignal.paper_id, PaperSignal.kind, moment.c.key))
        .order_by(PaperSignal.paper_id, PaperSignal.kind, moment.c.key, PaperSignal.observed_at.desc())
    )
    found: dict[str, dict[str, dict[str, float]]] = {}
    for key, paper_id, kind, value in session.execute(latest):
        found.setdefault(paper_id, {}).setdefault(key, {})[kind] = value
    return found


def _known(values: dict[str, float]) -> dict[str, float]:
    return {kind: values[kind] for kind in ("upvotes", "github_stars", "comments") if kind in values}


def lock_scoring(session: Session) -> None:
    """Wait for any other scoring transaction to finish; held until the caller's transaction ends."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('papertide:score'))"))


# The scores travel as one JSON array of [paper_id, score, components]: one parameter, parsed once
# by the server, where a list per column would be quoted element by element on the way.
_INSERT_SCORES = text(
    """
    INSERT INTO paper_score (paper_id, period, score, components, as_of)
    SELECT scored ->> 0, :period, (scored ->> 1)::float8, scored -> 2, :as_of
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS scored
    """
)


def replace_scores(
    session: Session, *, period: str, as_of: datetime, scored: Sequence[tuple[str, float, dict[str, Any]]]
) -> None:
    """Swap one period's scores for a fresh set, inside the caller's transaction (one INSERT)."""
    session.execute(delete(PaperScore).where(PaperScore.period == period))
    if scored:
        rows = json.dumps([[pid, score, parts] for pid, score, parts in scored])
        session.execute(_INSERT_SCORES, {"period": period, "as_of": as_of, "rows": rows})


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


def engagement_weights(params: TrendParams) -> dict[str, float]:
    """Signal kind -> its weight in the trending formula's engagement term."""
    return {
        "upvotes": params.weight_upvotes,
        "github_stars": params.weight_stars,
        "comments": params.weight_comments,
    }


def listed_between(
    session: Session, *, start: datetime, end: datetime, params: TrendParams, limit: int, offset: int = 0
) -> list[tuple[Paper, float, dict[str, float]]]:
    """Papers listed in [start, end), most engaged first: each with its engagement (the trending
    formula's weighted upvotes, stars and comments as last observed, without the age decay) and
    the counts it came from; ties go to the newer paper.

    The span is a range on ix_paper_listed_at; each paper's newest signals come from
    ix_paper_signal_paper_kind_observed.
    """
    weights = engagement_weights(params)
    window = (listed_at() >= start) & (listed_at() < end)
    latest = (
        select(PaperSignal.paper_id, PaperSignal.kind, PaperSignal.value)
        .where(PaperSignal.paper_id.in_(select(Paper.id).where(window)), PaperSignal.kind.in_(weights))
        .ext(distinct_on(PaperSignal.paper_id, PaperSignal.kind))
        .order_by(PaperSignal.paper_id, PaperSignal.kind, PaperSignal.observed_at.desc())
        .subquery()
    )
    weight = case(weights, value=latest.c.kind, else_=0.0)
    engagement = (
        select(
            latest.c.paper_id,
            func.sum(latest.c.value * weight).label("score"),
            *(func.max(latest.c.value).filter(latest.c.kind == kind).label(kind) for kind in weights),
        )
        .group_by(latest.c.paper_id)
        .subquery()
    )
    score = func.coalesce(engagement.c.score, 0.0)
    stmt = (
        select(Paper, score, *(engagement.c[kind] for kind in weights))
        .outerjoin(engagement, engagement.c.paper_id == Paper.id)
        .where(window)
        .order_by(score.desc(), listed_at().desc(), Paper.id)
        .limit(limit)
        .offset(offset)
    )
    rows = session.execute(stmt).all()
    return [(row[0], float(row[1]), _observed(weights, row[2:])) for row in rows]


def _observed(kinds: Mapping[str, float], counts: Sequence[float | None]) -> dict[str, float]:
    return {kind: float(n) for kind, n in zip(kinds, counts, strict=True) if n is not None}


def scored_as_of(session: Session) -> datetime | None:
    """The `as_of` of the current scores, if any were computed."""
    return session.scalar(select(func.max(PaperScore.as_of)))


# worker/jobs.py records every score run (the cron's, the worker's, a digest's own rescore) as "score".
SCORE_JOB = "score"


RUNS_THAT_MAY_OVERLAP = 8  # score runs started close enough together to wait for each other's lock


def last_score_run(session: Session) -> tuple[int, datetime] | None:
    """The id and end of the score run that finished ok last: what the current scores come from.

    Runs take the scoring lock one at a time, so one that started earlier but waited for the lock
    (a digest's rescore behind the cron's) finishes last and wrote last: the newest few runs by
    start (a backward scan of ix_job_run_job_started) are ordered by their end."""
    newest = (
        select(JobRun.id, JobRun.finished_at)
        .where(JobRun.job == SCORE_JOB, JobRun.status == JobStatus.OK, JobRun.finished_at.is_not(None))
        .order_by(JobRun.started_at.desc())
        .limit(RUNS_THAT_MAY_OVERLAP)
        .subquery()
    )
    row = session.execute(
        select(newest.c.id, newest.c.finished_at).order_by(newest.c.finished_at.desc()).limit(1)
    ).first()
    return (row[0], row[1]) if row and row[1] is not None else None


# --- topics --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vectors:
    """Papers' ids, current topic ids and embeddings, row i of `matrix` for `ids[i]`."""

    ids: list[str]
    topic_ids: list[int | None]
    matrix: np.ndarray[Any, Any]


def window_vectors(session: Session, *, model: str, since: datetime) -> Vectors:
    """Every paper listed after `since` with an embedding by `model`, by id."""
    return _vectors(session, model=model, since=since, only=None)


def fresh_vectors(session: Session, *, model: str, since: datetime, embedded_after: datetime) -> Vectors:
    """Papers listed after `since` with an embedding by `model` that have no topic yet or were
    embedded after `embedded_after`, by id."""
    unassigned = select(Paper.id).where(listed_at() > since, Paper.topic_id.is_(None))
    embedded = select(PaperEmbedding.paper_id).where(PaperEmbedding.embedded_at > embedded_after)
    return _vectors(session, model=model, since=since, only=union(unassigned, embedded))


def _vectors(session: Session, *, model: str, since: datetime, only: Any) -> Vectors:
    stmt = (
        select(Paper.id, Paper.topic_id, func.vector_send(PaperEmbedding.embedding, type_=LargeBinary))
        .join(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .where(PaperEmbedding.model == model, listed_at() > since)
    )
    if only is not None:
        stmt = stmt.where(Paper.id.in_(only))
    # Sorted here, not by the server: a sort of the vectors themselves would spill to disk.
    rows = sorted(session.execute(stmt).all(), key=lambda row: row[0])
    return Vectors(
        ids=[r[0] for r in rows], topic_ids=[r[1] for r in rows], matrix=_unpack([r[2] for r in rows])
    )


def count_unassigned(session: Session, *, model: str, since: datetime) -> int:
    """Papers listed after `since` with an embedding by `model` and no topic yet."""
    stmt = (
        select(func.count())
        .select_from(Paper)
        .join(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .where(PaperEmbedding.model == model, listed_at() > since, Paper.topic_id.is_(None))
    )
    return session.scalar(stmt) or 0


def _unpack(blobs: Sequence[bytes]) -> np.ndarray[Any, Any]:
    """pgvector's binary form (int16 dim, int16 unused, dim big-endian float4s) of equal-length
    vectors, as one float32 matrix: the 4-byte header reads as one extra column, dropped."""
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    packed = np.frombuffer(b"".join(blobs), dtype=">f4").reshape(len(blobs), -1)
    return packed[:, 1:].astype(np.float32)


def paper_texts(session: Session, ids: Sequence[str]) -> dict[str, str]:
    """paper_id -> title and abstract, for labelling topics."""
    stmt = select(Paper.id, Paper.title, Paper.abstract).where(
        Paper.id == any_(bindparam("ids", list(ids), type_=ARRAY(Text)))
    )
    return {r[0]: f"{r[1]} {r[2]}" for r in session.execute(stmt)}


def topic_assignment(session: Session) -> dict[str, int]:
    """paper_id -> topic_id of every paper that has a topic."""
    stmt = select(Paper.id, Paper.topic_id).where(Paper.topic_id.is_not(None))
    return {pid: topic_id for pid, topic_id in session.execute(stmt) if topic_id is not None}


def expire_topics(session: Session, *, since: datetime) -> int:
    """Take the topic from papers listed at or before `since` (out of the window topics describe)."""
    stmt = (
        update(Paper)
        .where(Paper.topic_id.is_not(None), listed_at() <= since)
        .values(topic_id=None)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount  # type: ignore[attr-defined,no-any-return]


_SET_TOPICS = text(
    """
    UPDATE paper SET topic_id = changed.topic_id
    FROM unnest(CAST(:ids AS text[]), CAST(:topic_ids AS int[])) AS changed (id, topic_id)
    WHERE paper.id = changed.id AND paper.topic_id IS DISTINCT FROM changed.topic_id
    """
)


def set_topics(session: Session, changes: Mapping[str, int | None]) -> int:
    """Write each paper's new topic (None: none), in one statement; rows already right are left alone."""
    if not changes:
        return 0
    params = {"ids": list(changes), "topic_ids": list(changes.values())}
    return session.execute(_SET_TOPICS, params).rowcount  # type: ignore[attr-defined,no-any-return]


def centroids(session: Session) -> tuple[list[int], np.ndarray[Any, Any]]:
    """(topic ids, their centroids as the rows of one matrix), by id."""
    stmt = (
        select(Topic.id, func.vector_send(Topic.centroid, type_=LargeBinary))
        .where(Topic.centroid.is_not(None))
        .order_by(Topic.id)
    )
    rows = session.execute(stmt).all()
    return [r[0] for r in rows], _unpack([r[1] for r in rows])


def topic_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Topic.id).order_by(Topic.id)))


def save_fitted_topics(session: Session, topics: Sequence[Mapping[str, Any]]) -> None:
    """Insert or update each topic's id, label, terms and centroid (sizes follow: update_topic_stats)."""
    if not topics:
        return
    stmt = insert(Topic).values([{**t, "size": 0, "momentum": 1.0} for t in topics])
    stmt = stmt.on_conflict_do_update(
        index_elements=[Topic.id],
        set_={
            "label": stmt.excluded.label,
            "terms": stmt.excluded.terms,
            "centroid": stmt.excluded.centroid,
            "updated_at": func.now(),
        },
    )
    session.execute(stmt)


def delete_topics(session: Session, ids: Sequence[int]) -> None:
    """Delete topics no paper belongs to any more."""
    if ids:
        session.execute(delete(Topic).where(Topic.id.in_(ids)))


@dataclass
class TopicCounts:
    """Per topic, from SQL: its papers, those of the last 7 days and of the baseline weeks before,
    and papers per week (week start -> count)."""

    size: int = 0
    this_week: int = 0
    before: int = 0
    weekly: dict[date, int] = field(default_factory=dict)


def topic_counts(session: Session, *, as_of: datetime, baseline_weeks: int) -> dict[int, TopicCounts]:
    """Count every topic's papers, in the database: no paper row comes to Python."""
    week = timedelta(days=7)
    starts = func.date_trunc("week", func.timezone("UTC", listed_at()))
    this_week = (listed_at() > as_of - week) & (listed_at() <= as_of)
    before = (listed_at() > as_of - week * (1 + baseline_weeks)) & (listed_at() <= as_of - week)
    stmt = (
        select(
            Paper.topic_id,
            starts.label("week"),
            func.count(),
            func.count().filter(this_week),
            func.count().filter(before),
            func.count().filter(listed_at() <= as_of),
        )
        .where(Paper.topic_id.is_not(None))
        .group_by(Paper.topic_id, starts)
    )
    counts: dict[int, TopicCounts] = {}
    for topic_id, week_start, size, recent, earlier, shown in session.execute(stmt):
        entry = counts.setdefault(topic_id, TopicCounts())
        entry.size += size
        entry.this_week += recent
        entry.before += earlier
        if shown:
            entry.weekly[week_start.date()] = shown
    return counts


def update_topic_stats(session: Session, rows: Sequence[Mapping[str, Any]], *, at: datetime) -> None:
    """Each topic's size, momentum and weekly counts ({"id", "size", "momentum", "weekly"} per row)."""
    if rows:
        session.execute(update(Topic), [{**row, "updated_at": at} for row in rows])


def get_fit(session: Session) -> TopicFit | None:
    return session.get(TopicFit, 1)


def save_fit(session: Session, *, model: str, papers: int, fitted_at: datetime) -> None:
    """Record a fresh fit: its model and size, nothing changed since, assigned as of now."""
    values = {"model": model, "papers": papers, "changed": 0, "fitted_at": fitted_at}
    stmt = insert(TopicFit).values(id=1, assigned_at=func.now(), **values)
    session.execute(
        stmt.on_conflict_do_update(index_elements=[TopicFit.id], set_={**values, "assigned_at": func.now()})
    )


def record_assignment(session: Session, *, changed: int) -> None:
    """Count papers that changed topic since the fit; the next run reassigns embeddings newer than now."""
    session.execute(
        update(TopicFit)
        .where(TopicFit.id == 1)
        .values(changed=TopicFit.changed + changed, assigned_at=func.now())
    )


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
