"""Each reader's digest is due at their local send hour, on their local date, once per local date,
also across daylight-saving changes. The clock is the test's: the scheduler's pass runs every 15
minutes of a few simulated days, as DIGEST_CRON runs it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.digests import service
from papertide.digests.mailer import SmtpMailer
from papertide.models import DigestDelivery, Subscriber, SubscriberStatus
from papertide.subscribers import repository as subscriber_repository
from papertide.worker import jobs
from tests.helpers import Inbox

TICK = timedelta(minutes=15)


def reader(session: Session, email: str, *, zone: str, hour: int, days: list[int] | None = None) -> int:
    subscriber = subscriber_repository.add(session, email=email, papers_per_digest=3, interest_mix=0.5)
    subscriber.status = SubscriberStatus.CONFIRMED
    subscriber.time_zone = zone
    subscriber.send_hour = hour
    subscriber.send_days = days or [1, 2, 3, 4, 5, 6, 7]
    session.flush()
    return subscriber.id


def run_clock(session: Session, start: datetime, days: int) -> dict[tuple[int, date], datetime]:
    """Run the scheduler's pass at every quarter hour (twice, as two overlapping schedulers might);
    returns when each (subscriber, local date) delivery first appeared."""
    first_seen: dict[tuple[int, date], datetime] = {}
    now = start
    while now < start + timedelta(days=days):
        service.prepare_deliveries(session, now=now)
        service.prepare_deliveries(session, now=now)
        for row in session.execute(select(DigestDelivery.subscriber_id, DigestDelivery.digest_date)):
            first_seen.setdefault((row[0], row[1]), now)
        now += TICK
    return first_seen


def expected_first_tick(start: datetime, days: int, zone: str, hour: int, local_day: date) -> datetime:
    """The first quarter hour at which the local clock shows `hour` or later on `local_day`."""
    now = start
    while now < start + timedelta(days=days):
        local = now.astimezone(ZoneInfo(zone))
        if local.date() == local_day and local.hour >= hour:
            return now
        now += TICK
    raise AssertionError("never due")


@pytest.mark.parametrize(
    ("start", "change"),
    [
        (datetime(2026, 3, 6, tzinfo=UTC), "US spring forward, 8 March"),
        (datetime(2026, 10, 30, tzinfo=UTC), "US fall back, 1 November"),
        (datetime(2026, 9, 25, tzinfo=UTC), "Chatham spring forward, 27 September"),
        (datetime(2026, 4, 3, tzinfo=UTC), "Chatham fall back, 5 April"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_each_reader_gets_one_digest_per_local_date_at_their_local_hour(
    tx_session: Session, start: datetime, change: str
) -> None:
    readers = {
        reader(tx_session, "utc@example.org", zone="UTC", hour=7): ("UTC", 7),
        reader(tx_session, "la@example.org", zone="America/Los_Angeles", hour=7): ("America/Los_Angeles", 7),
        # 02:00 does not exist in LA on 8 March and 01:00 happens twice on 1 November.
        reader(tx_session, "la2@example.org", zone="America/Los_Angeles", hour=2): ("America/Los_Angeles", 2),
        reader(tx_session, "la1@example.org", zone="America/Los_Angeles", hour=1): ("America/Los_Angeles", 1),
        reader(tx_session, "in@example.org", zone="Asia/Kolkata", hour=7): ("Asia/Kolkata", 7),
        reader(tx_session, "ch@example.org", zone="Pacific/Chatham", hour=7): ("Pacific/Chatham", 7),
        reader(tx_session, "ch0@example.org", zone="Pacific/Chatham", hour=0): ("Pacific/Chatham", 0),
    }
    days = 4
    first_seen = run_clock(tx_session, start, days)

    for sid, (zone, hour) in readers.items():
        tz = ZoneInfo(zone)
        # Local dates wholly inside the simulated days: each has exactly one digest, first due at the hour.
        local_days = sorted({(start + n * TICK).astimezone(tz).date() for n in range(days * 96)})[1:-1]
        for local_day in local_days:
            assert (sid, local_day) in first_seen, f"{zone} {hour}:00 got nothing on {local_day} ({change})"
            assert first_seen[(sid, local_day)] == expected_first_tick(start, days, zone, hour, local_day)
        # Every digest is dated with the reader's local date at the moment it became due (a UTC
        # date would give Kolkata and Chatham readers a second digest on some local days).
        for (s, day), at in first_seen.items():
            if s == sid:
                assert at.astimezone(tz).date() == day, f"{zone}: dated {day}, due at {at}"


def test_the_hours_in_utc_are_the_ones_a_reader_expects(tx_session: Session) -> None:
    """Spelled out for the zones in the issue, around the changes: the local hour is what stays put."""
    la = reader(tx_session, "la@example.org", zone="America/Los_Angeles", hour=7)
    kolkata = reader(tx_session, "in@example.org", zone="Asia/Kolkata", hour=7)
    chatham = reader(tx_session, "ch@example.org", zone="Pacific/Chatham", hour=7)
    la_late = reader(tx_session, "la2@example.org", zone="America/Los_Angeles", hour=2)

    seen = run_clock(tx_session, datetime(2026, 3, 6, tzinfo=UTC), 4)
    assert seen[(la, date(2026, 3, 7))] == datetime(2026, 3, 7, 15, 0, tzinfo=UTC)  # PST, UTC-8
    assert seen[(la, date(2026, 3, 9))] == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)  # PDT, UTC-7
    assert seen[(la_late, date(2026, 3, 8))] == datetime(
        2026, 3, 8, 10, 0, tzinfo=UTC
    )  # 03:00 PDT: 02:00 never came
    assert seen[(kolkata, date(2026, 3, 7))] == datetime(2026, 3, 7, 1, 30, tzinfo=UTC)  # UTC+5:30

    seen = run_clock(tx_session, datetime(2026, 9, 25, tzinfo=UTC), 4)
    assert seen[(chatham, date(2026, 9, 26))] == datetime(2026, 9, 25, 18, 15, tzinfo=UTC)  # UTC+12:45
    assert seen[(chatham, date(2026, 9, 28))] == datetime(2026, 9, 27, 17, 15, tzinfo=UTC)  # UTC+13:45


def test_only_on_the_chosen_local_weekdays_and_never_while_paused(tx_session: Session) -> None:
    # Monday and Thursday in Kolkata; the UTC date is still Sunday when Monday 07:00 comes there.
    weekdays = reader(tx_session, "in@example.org", zone="Asia/Kolkata", hour=7, days=[1, 4])
    paused = reader(tx_session, "paused@example.org", zone="UTC", hour=7)
    tx_session.get_one(Subscriber, paused).paused_at = datetime(2026, 11, 1, tzinfo=UTC)
    tx_session.flush()

    seen = run_clock(tx_session, datetime(2026, 11, 22, tzinfo=UTC), 7)  # Sunday 22 to Saturday 28

    assert sorted(d for s, d in seen if s == weekdays) == [date(2026, 11, 23), date(2026, 11, 26)]
    assert seen[(weekdays, date(2026, 11, 23))] == datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    assert not [d for s, d in seen if s == paused]


def test_an_explicit_date_sends_to_everyone_due_that_day_whatever_the_hour(tx_session: Session) -> None:
    early = reader(tx_session, "a@example.org", zone="Pacific/Chatham", hour=23)
    mondays = reader(tx_session, "b@example.org", zone="UTC", hour=7, days=[1])

    added = service.prepare_deliveries(
        tx_session, now=datetime(2026, 11, 24, 0, 5, tzinfo=UTC), digest_date=date(2026, 11, 24)
    )

    assert added == 1  # a Tuesday: not the Monday reader's day
    rows = tx_session.execute(select(DigestDelivery.subscriber_id, DigestDelivery.digest_date)).all()
    assert [(r[0], r[1]) for r in rows] == [(early, date(2026, 11, 24))]
    assert mondays not in [r[0] for r in rows]


def test_the_scheduled_pass_mails_a_reader_at_their_hour_once(
    sample_database: str, session: Session, smtp: tuple[Inbox, SmtpMailer]
) -> None:
    inbox, mailer = smtp
    reader(session, "in@example.org", zone="Asia/Kolkata", hour=7)
    session.commit()
    before = datetime(2026, 11, 24, 1, 15, tzinfo=UTC)  # 06:45 in Kolkata

    assert jobs.send_scheduled_digests(mailer=mailer, encoder=None, now=before) is None  # no run, no mail
    at_seven = jobs.send_scheduled_digests(mailer=mailer, encoder=None, now=before + TICK)
    later = jobs.send_scheduled_digests(mailer=mailer, encoder=None, now=before + 2 * TICK)

    assert at_seven is not None
    assert at_seven.sent == 1
    assert later is None
    assert [m["To"] for m in inbox.messages] == ["in@example.org"]
    assert "Tue 24 Nov" in str(inbox.messages[0]["Subject"])  # the reader's local date


def test_pausing_closes_a_digest_that_had_not_gone_yet(tx_session: Session) -> None:
    sid = reader(tx_session, "p@example.org", zone="UTC", hour=7)
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 7, 0, tzinfo=UTC))
    tx_session.get_one(Subscriber, sid).paused_at = datetime(2026, 11, 24, 7, 1, tzinfo=UTC)
    tx_session.flush()

    service.expire_overdue(tx_session, now=datetime(2026, 11, 24, 7, 2, tzinfo=UTC), settings=Settings())

    delivery = tx_session.scalars(select(DigestDelivery).where(DigestDelivery.subscriber_id == sid)).one()
    assert delivery.status == "failed"
    assert "paused" in (delivery.error or "")
    assert service.due_count(tx_session, now=datetime(2026, 11, 24, 7, 2, tzinfo=UTC)) == 0


def test_links_that_can_no_longer_be_used_are_deleted_and_live_ones_kept(tx_session: Session) -> None:
    from papertide.models import SubscriberToken, TokenPurpose
    from papertide.subscribers import service as subscriber_service

    sid = reader(tx_session, "t@example.org", zone="UTC", hour=7)
    subscriber = tx_session.get_one(Subscriber, sid)
    now = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    ages = {"manage": 31, "unsubscribe": 181}  # a day past MANAGE_TOKEN_TTL, UNSUBSCRIBE_TOKEN_KEEP
    for purpose in (TokenPurpose.MANAGE, TokenPurpose.UNSUBSCRIBE):
        for days in (1, ages[purpose]):
            subscriber_service.new_token(tx_session, subscriber, purpose)
            tx_session.execute(
                update(SubscriberToken)
                .where(SubscriberToken.id == select(func.max(SubscriberToken.id)).scalar_subquery())
                .values(created_at=now - timedelta(days=days))
            )

    assert subscriber_service.prune_tokens(tx_session, now=now) == 2

    left = tx_session.execute(select(SubscriberToken.purpose, SubscriberToken.created_at)).all()
    assert sorted((p, (now - at).days) for p, at in left) == [("manage", 1), ("unsubscribe", 1)]


def test_a_zone_python_cannot_load_skips_its_readers_and_nobody_else(tx_session: Session) -> None:
    good = reader(tx_session, "utc@example.org", zone="UTC", hour=7)
    reader(tx_session, "mars@example.org", zone="Mars/Olympus_Mons", hour=7)  # written past the form

    added = service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 8, 0, tzinfo=UTC))

    assert added == 1
    assert tx_session.scalars(select(DigestDelivery.subscriber_id)).all() == [good]
