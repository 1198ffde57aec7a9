"""The trending formula: pure properties, the data clock, and the stored ranking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from papertide.ranking import repository as ranking_repository
from papertide.ranking import service as ranking_service
from papertide.ranking.trending import Activity, TrendParams, components, data_clock, rank
from tests.factories import add_signal, make_paper

AS_OF = datetime(2026, 8, 21, 12, tzinfo=UTC)
PARAMS = TrendParams()
counts = st.floats(min_value=0, max_value=1e5, allow_nan=False)
ages = st.floats(min_value=0, max_value=29 * 24, allow_nan=False)
periods = st.sampled_from(["day", "week", "month"])


def score(upvotes: float, age_hours: float, period: str, stars: float = 0.0, comments: float = 0.0) -> float:
    activity = Activity("p", AS_OF - timedelta(hours=age_hours), upvotes, stars, comments)
    return float(components(activity, as_of=AS_OF, period=period, params=PARAMS)["score"])


@given(upvotes=counts, extra=counts, age=ages, period=periods)
def test_more_upvotes_never_lower_the_score(upvotes: float, extra: float, age: float, period: str) -> None:
    assert score(upvotes + extra, age, period) >= score(upvotes, age, period)


@given(upvotes=counts, age=ages, older=st.floats(min_value=0, max_value=500), period=periods)
def test_older_never_raises_the_score(upvotes: float, age: float, older: float, period: str) -> None:
    assert score(upvotes, age + older, period) <= score(upvotes, age, period)


def test_without_any_engagement_newer_papers_rank_first() -> None:
    activities = [Activity(f"p{h}", AS_OF - timedelta(hours=h)) for h in (30, 2, 10)]
    ranked = rank(activities, as_of=AS_OF, period="week", params=PARAMS)
    assert [pid for pid, _, _ in ranked] == ["p2", "p10", "p30"]


def test_periods_only_rank_papers_listed_inside_them() -> None:
    activities = [
        Activity("today", AS_OF - timedelta(hours=3)),
        Activity("last-week", AS_OF - timedelta(days=5)),
    ]
    assert [pid for pid, _, _ in rank(activities, as_of=AS_OF, period="day", params=PARAMS)] == ["today"]
    assert len(rank(activities, as_of=AS_OF, period="week", params=PARAMS)) == 2


def test_the_data_clock_follows_old_data_and_says_so() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    assert data_clock(now=now, newest=AS_OF).as_of == AS_OF
    assert data_clock(now=now, newest=AS_OF).stale
    fresh = data_clock(now=now, newest=now - timedelta(hours=3))
    assert (fresh.as_of, fresh.stale) == (now, False)


def test_scores_are_stored_with_their_components(session: Session) -> None:
    listed = AS_OF - timedelta(hours=6)
    popular = make_paper(session, announced_at=listed)
    quiet = make_paper(session, announced_at=listed)
    add_signal(session, popular, "upvotes", 50, AS_OF)
    add_signal(session, popular, "upvotes", 10, AS_OF - timedelta(hours=5))
    add_signal(session, quiet, "upvotes", 3, AS_OF)
    add_signal(session, popular, "upvotes", 999, AS_OF + timedelta(days=1))  # after as_of: ignored
    session.commit()

    ranking_service.compute_scores(session, now=AS_OF, params=PARAMS)

    rows = ranking_repository.trending(session, period="day", limit=10)
    assert [p.id for p, _ in rows] == [popular.id, quiet.id]
    assert rows[0][1].components["upvotes"] == 50
    assert rows[0][1].components["age_hours"] == 6.0


@given(upvotes=counts, extra=counts, before=counts, age=ages, period=periods)
def test_more_upvotes_never_lower_the_score_whatever_came_before(
    upvotes: float, extra: float, before: float, age: float, period: str
) -> None:
    def with_history(now: float) -> float:
        activity = Activity(
            "p", AS_OF - timedelta(hours=age), upvotes=now, earlier={period: {"upvotes": before}}
        )
        return float(components(activity, as_of=AS_OF, period=period, params=PARAMS)["score"])

    assert with_history(upvotes + extra) >= with_history(upvotes)


def test_a_paper_gaining_upvotes_now_outranks_one_that_got_them_earlier() -> None:
    listed = AS_OF - timedelta(days=3)
    rising = Activity("rising", listed, upvotes=40, earlier={"week": {"upvotes": 0}})
    settled = Activity("settled", listed, upvotes=40, earlier={"week": {"upvotes": 40}})

    ranked = rank([settled, rising], as_of=AS_OF, period="week", params=PARAMS)

    assert [pid for pid, _, _ in ranked] == ["rising", "settled"]
    assert ranked[0][2]["velocity_per_day"] == pytest.approx(40 / 3, abs=1e-3)
    assert ranked[1][2]["velocity_per_day"] == 0


def test_velocity_and_topic_momentum_come_from_the_database(session: Session) -> None:
    from papertide.models import Topic

    session.add(Topic(id=1, label="growing", size=2, momentum=3.0, weekly=[], terms=[]))
    session.flush()
    rising = make_paper(session, announced_at=AS_OF - timedelta(days=5), topic_id=1)
    flat = make_paper(session, announced_at=AS_OF - timedelta(days=5))
    for paper, before in ((rising, 5), (flat, 30)):
        add_signal(session, paper, "upvotes", before, AS_OF - timedelta(days=4))  # before the 3-day window
        add_signal(session, paper, "upvotes", 30, AS_OF - timedelta(hours=1))
    session.commit()

    ranking_service.compute_scores(session, now=AS_OF, params=PARAMS)

    rows = {p.id: s.components for p, s in ranking_repository.trending(session, period="week", limit=10)}
    assert rows[rising.id]["topic_momentum"] == 3.0
    assert rows[rising.id]["velocity_per_day"] == pytest.approx(25 / 3, abs=1e-3)
    assert rows[flat.id]["velocity_per_day"] == 0
    assert rows[flat.id]["topic_momentum"] == 1.0


@given(views=counts, more=counts, clicks=counts, period=periods)
def test_more_local_attention_never_lowers_the_score(
    views: float, more: float, clicks: float, period: str
) -> None:
    def with_attention(v: float) -> float:
        activity = Activity(
            "p", AS_OF - timedelta(hours=2), attention={period: {"views": v, "clicks": clicks}}
        )
        return float(components(activity, as_of=AS_OF, period=period, params=PARAMS)["score"])

    assert with_attention(views + more) >= with_attention(views)


def test_page_views_and_digest_clicks_count_towards_trending(database: str, session: Session) -> None:
    from fastapi.testclient import TestClient

    from papertide.web.app import create_app

    now = datetime.now(UTC)
    watched = make_paper(session, announced_at=now - timedelta(hours=3))
    ignored = make_paper(session, announced_at=now - timedelta(hours=3))
    session.commit()
    client = TestClient(create_app(encoder_provider=lambda: None))
    # Three readers behind one address (a view counts once per visitor and day, and an address
    # counts at most three visitors: web.view_counting), one of them from a digest.
    for reader in range(2):
        client.get(f"/papers/{watched.id}", headers={"User-Agent": f"Mozilla/5.0 reader {reader}"})
    client.get(f"/papers/{watched.id}?via=digest", headers={"User-Agent": "Mozilla/5.0 reader 2"})

    ranking_service.compute_scores(session, now=now, params=PARAMS)

    rows = {p.id: s.components for p, s in ranking_repository.trending(session, period="day", limit=10)}
    assert (rows[watched.id]["views"], rows[watched.id]["digest_clicks"]) == (3, 1)
    assert (rows[ignored.id]["views"], rows[ignored.id]["digest_clicks"]) == (0, 0)
    top, _ = ranking_repository.trending(session, period="day", limit=1)[0]
    assert top.id == watched.id


def test_every_trending_parameter_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from papertide.config import Settings

    monkeypatch.setenv("PAPERTIDE_TREND_DECAY_SCALE_HOURS", '{"day": 6, "week": 24, "month": 96}')
    params = ranking_service.params_from(Settings())
    assert params.decay_scale_hours["day"] == 6
    slower = ranking_service.params_from(
        Settings(trend_decay_scale_hours={"day": 48, "week": 48, "month": 168})
    )
    activity = Activity("p", AS_OF - timedelta(hours=20), upvotes=10)
    assert (
        components(activity, as_of=AS_OF, period="day", params=slower)["score"]
        > components(activity, as_of=AS_OF, period="day", params=params)["score"]
    )
    with pytest.raises(ValidationError, match="exactly day, week and month"):
        Settings(trend_velocity_window_hours={"day": 24})
