"""Topics kept current by the 15-minute score job without rewriting the paper table (issue 10):
a run writes only the papers whose topic changes, new papers join the nearest topic, ids stay."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.embeddings import repository as embedding_repository
from papertide.models import Paper, PaperScore, Topic
from papertide.models.paper import TopicFit
from papertide.ranking import service as ranking_service
from papertide.ranking import topics
from papertide.worker import jobs
from tests.factories import make_paper

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
WORDS = [
    "graph message passing molecules",
    "diffusion denoising image synthesis",
    "reinforcement reward policy agents",
    "speech audio acoustic recognition",
    "protein folding structure biology",
]
DIRECTIONS = np.eye(len(WORDS), 384, dtype=np.float32)
_rng = np.random.default_rng(7)


def add_papers(
    session: Session, cluster: int, count: int, *, listed: datetime = NOW - timedelta(hours=2)
) -> list[Paper]:
    """`count` embedded papers about cluster `cluster`'s subject, listed at `listed`, committed."""
    papers = [
        make_paper(session, title=WORDS[cluster], abstract=f"{WORDS[cluster]} {n}", announced_at=listed)
        for n in range(count)
    ]
    embed(session, papers, [cluster] * count, model=get_settings().embedding_model)
    return papers


def embed(session: Session, papers: Sequence[Paper], clusters: Sequence[int], *, model: str) -> None:
    noise = 0.05 * _rng.standard_normal((len(papers), 384)).astype(np.float32)
    vectors = DIRECTIONS[list(clusters)] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embedding_repository.write_embeddings(session, papers, vectors, model=model)
    session.commit()


def versions(session: Session) -> dict[str, str]:
    """Each paper's row version (xmin): it changes whenever the row is written."""
    session.commit()
    return {row.id: row.xmin for row in session.execute(text("SELECT id, xmin::text AS xmin FROM paper"))}


def assignment(session: Session) -> dict[str, int | None]:
    session.commit()
    return {row.id: row.topic_id for row in session.execute(select(Paper.id, Paper.topic_id))}


def fit(session: Session) -> TopicFit:
    session.commit()
    found = session.get(TopicFit, 1, populate_existing=True)
    assert found is not None
    return found


def four_topics(session: Session) -> dict[int, list[Paper]]:
    """Ten papers in each of four clear subjects, scored once."""
    groups = {cluster: add_papers(session, cluster, 10) for cluster in range(4)}
    jobs.score(now=NOW)
    return groups


def topic_of(session: Session, papers: Sequence[Paper]) -> set[int | None]:
    current = assignment(session)
    return {current[p.id] for p in papers}


def test_a_score_with_nothing_new_writes_no_paper_row(session: Session) -> None:
    groups = four_topics(session)
    before, first = versions(session), assignment(session)

    jobs.score(now=NOW + timedelta(minutes=15))

    assert versions(session) == before, "no paper row rewritten: no dead rows for VACUUM"
    assert assignment(session) == first
    assert all(len(topic_of(session, papers)) == 1 for papers in groups.values())
    assert len(set(first.values())) == 4


def test_new_papers_join_the_nearest_topic_and_no_other_paper_moves(session: Session) -> None:
    groups = four_topics(session)
    before, fitted = versions(session), fit(session).fitted_at
    (speech,) = topic_of(session, groups[3])

    newcomers = add_papers(session, 3, 3)
    jobs.score(now=NOW + timedelta(minutes=15))

    assert topic_of(session, newcomers) == {speech}
    after = versions(session)
    assert {pid for pid in before if after[pid] != before[pid]} == set(), "the old papers stay as written"
    topic = session.get(Topic, speech, populate_existing=True)
    assert topic is not None
    assert topic.size == 13
    assert fit(session).fitted_at == fitted, "three papers in forty: no refit"


def test_a_new_subject_gets_a_topic_once_the_window_grew_past_the_refit_share(session: Session) -> None:
    groups = four_topics(session)
    old_ids, before = assignment(session), versions(session)

    first_wave = add_papers(session, 4, 3)  # 3 of 40 papers: not yet a tenth of the window
    jobs.score(now=NOW + timedelta(minutes=15))
    assert topic_of(session, first_wave) <= set(old_ids.values()), "until a refit, the nearest topic"
    assert len(session.scalars(select(Topic.id)).all()) == 4

    second_wave = add_papers(session, 4, 5)  # 8 of 40: past REFIT_SHARE
    jobs.score(now=NOW + timedelta(minutes=30))

    (protein,) = topic_of(session, first_wave + second_wave)
    assert protein not in set(old_ids.values()), "the new subject is a topic of its own"
    assert fit(session).papers == 48
    current, after = assignment(session), versions(session)
    old_papers = [p for papers in groups.values() for p in papers]
    assert all(current[p.id] == old_ids[p.id] for p in old_papers), "topic ids follow their papers"
    assert all(after[p.id] == before[p.id] for p in old_papers), "a refit writes only papers that moved"


def test_a_new_embedding_model_refits_the_topics(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    groups = four_topics(session)
    old_ids = set(assignment(session).values())
    # The new model groups the papers otherwise: the i-th paper of subject g goes with (g + i) % 4.
    papers = [p for cluster in range(4) for p in groups[cluster]]
    regrouped = [(cluster + i) % 4 for cluster in range(4) for i in range(10)]
    embed(session, papers, regrouped, model="other-model")
    monkeypatch.setenv("PAPERTIDE_EMBEDDING_MODEL", "other-model")
    get_settings.cache_clear()
    try:
        jobs.score(now=NOW + timedelta(minutes=15))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()

    assert fit(session).model == "other-model"
    current = assignment(session)
    by_new_group: dict[int, set[int | None]] = {}
    for paper, group in zip(papers, regrouped, strict=True):
        by_new_group.setdefault(group, set()).add(current[paper.id])
    assert all(len(ids) == 1 for ids in by_new_group.values()), "topics follow the new model's groups"
    new_ids = {next(iter(ids)) for ids in by_new_group.values()}
    assert len(new_ids) == 4
    assert not new_ids & old_ids, "no new topic mostly holds one old topic's papers: fresh ids"


def test_topic_sizes_weeks_and_momentum_count_the_papers_as_listed(session: Session) -> None:
    days_ago = [0.1, 0.2, 0.3, 1, 2, 3, 9, 16, 23, 30, 44, 60]
    dated = [add_papers(session, 0, 1, listed=NOW - timedelta(days=age))[0] for age in days_ago]
    for cluster in (1, 2, 3):
        add_papers(session, cluster, 9)

    jobs.score(now=NOW)

    (topic_id,) = topic_of(session, dated)
    topic = session.get(Topic, topic_id, populate_existing=True)
    assert topic is not None
    listed = [NOW - timedelta(days=age) for age in days_ago]
    baseline = get_settings().topic_baseline_weeks
    assert topic.size == len(days_ago)
    assert topic.momentum == pytest.approx(topics.momentum(listed, as_of=NOW, baseline_weeks=baseline))
    assert topic.weekly == topics.weekly_sizes(listed, as_of=NOW)
    assert topic.momentum > 1.5, "six of twelve papers came this week"


def test_papers_that_leave_the_window_lose_their_topic(session: Session) -> None:
    groups = four_topics(session)
    later = NOW + topics.WINDOW + timedelta(days=7)
    recent = add_papers(session, 0, 6, listed=later - timedelta(hours=2))
    recent += add_papers(session, 1, 6, listed=later - timedelta(hours=2))

    jobs.score(now=later)

    assert topic_of(session, [p for papers in groups.values() for p in papers]) == {None}
    assert None not in topic_of(session, recent)
    sizes = session.scalars(select(Topic.size)).all()
    assert sorted(sizes) == [6, 6], "topics left without papers are gone"


def test_a_score_that_fails_midway_leaves_the_previous_topics_and_scores(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    four_topics(session)
    before, scores = assignment(session), _scores(session)
    newcomers = add_papers(session, 2, 3)

    def broken(*_: Any, **__: Any) -> dict[str, int]:
        raise RuntimeError("killed while scoring")

    monkeypatch.setattr(ranking_service, "compute_scores", broken)
    with pytest.raises(RuntimeError):
        jobs.score(now=NOW + timedelta(minutes=15))

    assert topic_of(session, newcomers) == {None}, "the topics written before the failure went with it"
    assert {pid: tid for pid, tid in assignment(session).items() if pid in before} == before
    assert _scores(session) == scores


def _scores(session: Session) -> dict[tuple[str, str], float]:
    session.commit()
    return {(s.paper_id, s.period): s.score for s in session.scalars(select(PaperScore))}
