"""Topics: stable clustering, labels, momentum, and the pages that show them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.models import Paper, Topic
from papertide.ranking import topics
from papertide.ranking.trending import Activity, TrendParams, components
from papertide.web.app import create_app
from papertide.worker import jobs

AS_OF = datetime(2026, 8, 21, 12, tzinfo=UTC)


@given(momentum=st.floats(min_value=0, max_value=50), extra=st.floats(min_value=0, max_value=50))
def test_momentum_never_lowers_a_score_and_a_growing_topic_raises_it(momentum: float, extra: float) -> None:
    def score(m: float) -> float:
        activity = Activity("p", AS_OF - timedelta(hours=5), upvotes=3, momentum=m)
        return float(components(activity, as_of=AS_OF, period="week", params=TrendParams())["score"])

    assert score(momentum + extra) >= score(momentum)
    assert score(2.0) > score(1.0)


def test_momentum_compares_this_week_with_the_weeks_before() -> None:
    steady = [AS_OF - timedelta(days=d) for d in range(0, 35, 7)]  # one a week
    growing = steady + [AS_OF - timedelta(days=1)] * 4
    assert topics.momentum(steady, as_of=AS_OF) == 1.0
    assert topics.momentum(growing, as_of=AS_OF) == 3.0


def test_ids_follow_the_papers_across_runs() -> None:
    previous = {"a": 7, "b": 7, "c": 7, "d": 9, "e": 9}
    clusters = topics.assign_ids([["d", "e", "f"], ["a", "b", "c", "x"]], previous, next_id=10)
    assert {c.topic_id: sorted(c.paper_ids) for c in clusters} == {
        7: ["a", "b", "c", "x"],
        9: ["d", "e", "f"],
    }
    fresh = topics.assign_ids([["x", "y", "a"]], previous, next_id=10)
    assert fresh[0].topic_id == 10, "a cluster that is mostly new papers gets a new id"


def test_kmeans_separates_clear_groups_deterministically() -> None:
    rng = np.random.default_rng(1)
    centers = np.eye(4, 16)
    points = np.concatenate([c + 0.05 * rng.standard_normal((10, 16)) for c in centers])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    labels = topics.spherical_kmeans(points, 4)
    assert len(set(labels)) == 4
    assert all(len(set(labels[i * 10 : (i + 1) * 10])) == 1 for i in range(4))
    assert np.array_equal(labels, topics.spherical_kmeans(points, 4))


def test_a_refit_waits_until_a_tenth_of_the_window_has_changed_or_the_model_does() -> None:
    fit = topics.FitState(model="m", papers=1000, changed=40, has_centroids=True)
    assert not topics.needs_refit(fit, model="m", pending=100)
    assert topics.needs_refit(fit, model="m", pending=101)
    assert topics.needs_refit(fit, model="another model", pending=0)
    assert topics.needs_refit(None, model="m", pending=0), "never fitted"
    assert topics.needs_refit(replace(fit, has_centroids=False), model="m", pending=0)


def test_every_paper_joins_its_nearest_centroid_and_a_fit_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    points = rng.standard_normal((500, 16)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    centres = topics.fit_centroids(points, 6)
    labels = topics.nearest(points, centres)
    assert np.array_equal(labels, np.argmax(points @ centres.T, axis=1))
    assert np.array_equal(centres, topics.fit_centroids(points, 6))
    assert np.allclose(np.linalg.norm(centres, axis=1), 1.0)


def test_score_clusters_the_sample_keeps_ids_and_shows_topics(sample_database: str, session: Session) -> None:
    jobs.score()
    session.expire_all()
    first = {p.id: p.topic_id for p in session.scalars(select(Paper).where(Paper.topic_id.is_not(None)))}
    jobs.score()
    session.expire_all()
    second = {p.id: p.topic_id for p in session.scalars(select(Paper).where(Paper.topic_id.is_not(None)))}
    topic = session.scalars(select(Topic).order_by(Topic.size.desc())).first()

    assert len(first) == 64, "every embedded paper gets a topic"
    assert second == first, "the same data gives the same topics, ids included"
    assert topic is not None
    assert topic.label
    assert len(topic.weekly) == 12

    client = TestClient(create_app(encoder_provider=lambda: None))
    listing = client.get("/topics")
    page = client.get(f"/topics/{topic.id}")
    member = next(pid for pid, tid in first.items() if tid == topic.id)
    paper_page = client.get(f"/papers/{member}")
    api = client.get("/api/v1/topics").json()

    assert topic.label in listing.text
    assert page.status_code == 200
    assert page.text.count('class="paper"') == topic.size
    assert f'href="/topics/{topic.id}"' in paper_page.text
    assert {row["id"] for row in api["results"]} == set(first.values())
    assert client.get("/topics/99999").status_code == 404
