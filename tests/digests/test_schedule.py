"""Each reader's digest is due at their local send hour, on their local date, once per local date,
also across daylight-saving changes. The clock is the test's: the scheduler's pass runs every 15
minutes of a few simulated days, as DIGEST_CRON runs it."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.digests import schedule, service
from papertide.digests.mailer import SmtpMailer
from papertide.models import DigestDelivery, Frequency, Subscriber, SubscriberStatus
from papertide.subscribers import preferences
from papertide.subscribers import repository as subscriber_repository
from papertide.worker import jobs
from tests.helpers import Inbox

TICK = timedelta(minutes=15)


def reader(
    session: Session,
    email: str,
    *,
    zone: str,
    hour: int,
    days: list[int] | None = None,
    confirmed_at: datetime | None = None,
) -> int:
    """A confirmed reader; `confirmed_at` None: subscribed long ago (a date missed just before the
    first pass is caught up), else only dates due after it are."""
    subscriber = subscriber_repository.add(session, email=email, papers_per_digest=3, interest_mix=0.5)
    subscriber.status = SubscriberStatus.CONFIRMED
    subscriber.confirmed_at = confirmed_at
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
    schedules = [
        ("utc", "UTC", 7),
        ("la", "America/Los_Angeles", 7),
        # 02:00 does not exist in LA on 8 March and 01:00 happens twice on 1 November.
        ("la2", "America/Los_Angeles", 2),
        ("la1", "America/Los_Angeles", 1),
        ("in", "Asia/Kolkata", 7),
        ("ch", "Pacific/Chatham", 7),
        ("ch0", "Pacific/Chatham", 0),
    ]
    readers = {
        reader(tx_session, f"{name}@example.org", zone=zone, hour=hour, confirmed_at=start): (zone, hour)
        for name, zone, hour in schedules
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
    since = datetime(2026, 3, 6, tzinfo=UTC)
    la = reader(tx_session, "la@example.org", zone="America/Los_Angeles", hour=7, confirmed_at=since)
    kolkata = reader(tx_session, "in@example.org", zone="Asia/Kolkata", hour=7, confirmed_at=since)
    chatham = reader(tx_session, "ch@example.org", zone="Pacific/Chatham", hour=7, confirmed_at=since)
    la_late = reader(tx_session, "la2@example.org", zone="America/Los_Angeles", hour=2, confirmed_at=since)

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
    before = datetime(2026, 11, 24, 1, 15, tzinfo=UTC)  # 06:45 in Kolkata
    reader(session, "in@example.org", zone="Asia/Kolkata", hour=7, confirmed_at=before)
    session.commit()

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
    # A day past MANAGE_TOKEN_TTL or CONFIRM_TOKEN_TTL (kept, to answer "expired"), a day past it and
    # its grace (gone), a day past UNSUBSCRIBE_TOKEN_KEEP (gone).
    ages = {"manage": (1, 31, 61), "confirm": (1, 8, 38), "unsubscribe": (1, 181)}
    for purpose in (TokenPurpose.MANAGE, TokenPurpose.CONFIRM, TokenPurpose.UNSUBSCRIBE):
        for days in ages[purpose]:
            confirm = purpose == TokenPurpose.CONFIRM  # a confirm link carries the sign-up's choices
            subscriber_service.new_token(
                tx_session,
                subscriber,
                purpose,
                interests=[] if confirm else None,
                frequency=Frequency.DAILY if confirm else None,
            )
            tx_session.execute(
                update(SubscriberToken)
                .where(SubscriberToken.id == select(func.max(SubscriberToken.id)).scalar_subquery())
                .values(created_at=now - timedelta(days=days))
            )

    assert subscriber_service.prune_tokens(tx_session, now=now) == 3

    left = tx_session.execute(select(SubscriberToken.purpose, SubscriberToken.created_at)).all()
    assert sorted((p, (now - at).days) for p, at in left) == [
        ("confirm", 1),
        ("confirm", 8),
        ("manage", 1),
        ("manage", 31),
        ("unsubscribe", 1),
    ]


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/localtime", "/UTC"])
def test_a_zone_python_cannot_load_skips_its_readers_and_nobody_else(tx_session: Session, zone: str) -> None:
    good = reader(tx_session, "utc@example.org", zone="UTC", hour=7)
    reader(tx_session, "mars@example.org", zone=zone, hour=7)  # written past the form

    added = service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    added_now = service.prepare_deliveries_now(tx_session, now=datetime(2026, 11, 25, 8, 0, tzinfo=UTC))

    assert (added, added_now) == (1, 1)
    assert tx_session.scalars(select(DigestDelivery.subscriber_id)).all() == [good, good]


def dates_of(session: Session, sid: int) -> list[date]:
    stmt = select(DigestDelivery.digest_date).where(DigestDelivery.subscriber_id == sid)
    return sorted(session.scalars(stmt))


def ticking(
    session: Session, sid: int, start: datetime, end: datetime, every: timedelta = TICK
) -> dict[date, datetime]:
    """Run the pass every `every` from `start` until `end`; when each of the reader's dates first appeared."""
    first_seen: dict[date, datetime] = {}
    now = start
    while now < end:
        service.prepare_deliveries(session, now=now)
        for day in dates_of(session, sid):
            first_seen.setdefault(day, now)
        now += every
    return first_seen


def test_a_send_hour_no_pass_saw_is_caught_up_at_the_next_pass(tx_session: Session) -> None:
    # The passes of 23:00 to 23:45 never ran (a restart, a deploy, a skipped run); 00:00 is the next.
    first_pass = datetime(2026, 11, 24, 22, 45, tzinfo=UTC)
    sid = reader(tx_session, "late@example.org", zone="UTC", hour=23, confirmed_at=first_pass)
    service.prepare_deliveries(tx_session, now=first_pass)
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 25, 0, 0, tzinfo=UTC))
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 25, 0, 15, tzinfo=UTC))

    assert dates_of(tx_session, sid) == [date(2026, 11, 24)]


def test_a_two_hourly_cron_sends_a_23h_reader_one_digest_every_local_date(tx_session: Session) -> None:
    # DIGEST_CRON="0 */2 * * *": no pass ever runs in the 23:00 hour.
    start = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    sid = reader(tx_session, "late@example.org", zone="UTC", hour=23, confirmed_at=start)

    seen = ticking(tx_session, sid, start, datetime(2026, 11, 28, 0, 1, tzinfo=UTC), every=timedelta(hours=2))

    assert sorted(seen) == [date(2026, 11, day) for day in (23, 24, 25, 26, 27)]
    for day, at in seen.items():  # each at the first pass after its 23:00
        assert at == datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(days=1)


@pytest.mark.parametrize(
    ("hour", "every"), [(8, timedelta(days=1)), (19, timedelta(hours=6)), (20, timedelta(hours=6))]
)
def test_a_slow_cron_still_brings_one_digest_every_local_date(
    tx_session: Session, hour: int, every: timedelta
) -> None:
    # DIGEST_CRON="0 6 * * *" (or every 6 hours): each date is caught up at a pass after its hour;
    # yesterday's catch-up must not hide today's.
    start = datetime(2026, 11, 18, 6, 0, tzinfo=UTC)
    sid = reader(
        tx_session, "slow@example.org", zone="UTC", hour=hour, confirmed_at=start - timedelta(days=1)
    )

    seen = ticking(tx_session, sid, start, start + timedelta(days=6), every=every)

    days = sorted(seen)
    assert days == [days[0] + timedelta(days=n) for n in range(len(days))], "one for every date, none skipped"
    assert len(days) >= 6, days


def test_a_date_that_fell_in_a_pause_is_not_made_up_after_the_resume(tx_session: Session) -> None:
    subscriber = tx_session.get_one(
        Subscriber,
        reader(
            tx_session, "away@example.org", zone="UTC", hour=8, confirmed_at=datetime(2026, 11, 1, tzinfo=UTC)
        ),
    )
    preferences.pause(subscriber=subscriber, now=datetime(2026, 11, 24, 7, 0, tzinfo=UTC))
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 8, 0, tzinfo=UTC))  # paused: nothing
    preferences.resume(subscriber=subscriber, now=datetime(2026, 11, 25, 7, 0, tzinfo=UTC))
    tx_session.flush()

    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 25, 7, 0, tzinfo=UTC))
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 25, 8, 0, tzinfo=UTC))

    assert dates_of(tx_session, subscriber.id) == [date(2026, 11, 25)], (
        "the 24th was paused; the 25th goes at 08:00"
    )


def test_a_date_that_fell_in_a_pause_with_no_pass_running_is_not_made_up_either(tx_session: Session) -> None:
    subscriber = tx_session.get_one(
        Subscriber,
        reader(
            tx_session, "away@example.org", zone="UTC", hour=8, confirmed_at=datetime(2026, 11, 1, tzinfo=UTC)
        ),
    )
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 6, 45, tzinfo=UTC))
    preferences.pause(subscriber=subscriber, now=datetime(2026, 11, 24, 7, 0, tzinfo=UTC))
    # The scheduler is down from here until the morning after: no pass sees the 24th's 08:00.
    preferences.resume(subscriber=subscriber, now=datetime(2026, 11, 25, 6, 0, tzinfo=UTC))
    tx_session.flush()

    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 25, 7, 0, tzinfo=UTC))

    assert date(2026, 11, 24) not in dates_of(tx_session, subscriber.id), "the 24th fell in the pause"


def test_a_missed_date_is_caught_up_only_inside_the_retry_window(tx_session: Session) -> None:
    settings = Settings(digest_retry_hours=2)
    sid = reader(tx_session, "late@example.org", zone="UTC", hour=21)
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 20, 45, tzinfo=UTC), settings=settings)

    # 3 h after its 21:00: older than the window, which would fail it at once; not worth sending.
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 25, 0, 0, tzinfo=UTC), settings=settings)

    assert dates_of(tx_session, sid) == []


@pytest.mark.parametrize(
    ("late", "dates"), [(timedelta(minutes=105), [date(2026, 11, 24)]), (timedelta(minutes=150), [])]
)
def test_the_retry_window_bounds_a_catch_up_to_the_minute(
    tx_session: Session, late: timedelta, dates: list[date]
) -> None:
    settings = Settings(digest_retry_hours=2)
    sid = reader(tx_session, "late@example.org", zone="UTC", hour=23)
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 22, 45, tzinfo=UTC), settings=settings)

    # No pass saw 23:00; the next comes `late` after it: inside the 2 h window, or past it.
    next_pass = datetime(2026, 11, 24, 23, 0, tzinfo=UTC) + late
    service.prepare_deliveries(tx_session, now=next_pass, settings=settings)

    assert dates_of(tx_session, sid) == dates


def test_todays_digest_goes_however_late_the_first_pass_after_its_hour(tx_session: Session) -> None:
    # The scheduler down from 06:45 to 12:00: today's 07:00 is no catch-up, and the window of its
    # retries runs from the row, made at 12:00.
    settings = Settings(digest_retry_hours=2)
    sid = reader(tx_session, "noon@example.org", zone="UTC", hour=7)
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 6, 45, tzinfo=UTC), settings=settings)
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 12, 0, tzinfo=UTC), settings=settings)

    assert dates_of(tx_session, sid) == [date(2026, 11, 24)]


def test_a_digest_sent_by_hand_after_a_missed_hour_stands_in_for_it(tx_session: Session) -> None:
    since = datetime(2026, 11, 24, 22, 45, tzinfo=UTC)
    sid = reader(tx_session, "late@example.org", zone="UTC", hour=23, confirmed_at=since)
    service.prepare_deliveries(tx_session, now=since)
    # No pass at 23:00; the operator runs `papertide digest send` at 00:30, then passes resume.
    service.prepare_deliveries_now(tx_session, now=datetime(2026, 11, 25, 0, 30, tzinfo=UTC))
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 25, 1, 0, tzinfo=UTC))

    assert dates_of(tx_session, sid) == [date(2026, 11, 25)]  # one digest, not two half an hour apart


def test_send_now_picks_readers_by_their_local_weekday(tx_session: Session) -> None:
    # Sunday 20:00 UTC is Monday 01:30 in Kolkata.
    mondays = reader(tx_session, "mon@example.org", zone="Asia/Kolkata", hour=7, days=[1])
    sundays = reader(tx_session, "sun@example.org", zone="Asia/Kolkata", hour=7, days=[7])

    service.prepare_deliveries_now(tx_session, now=datetime(2026, 11, 22, 20, 0, tzinfo=UTC))

    assert dates_of(tx_session, mondays) == [date(2026, 11, 23)]
    assert dates_of(tx_session, sundays) == []


def test_a_catch_up_keeps_to_send_days_pause_and_the_subscription(tx_session: Session) -> None:
    missed = datetime(2026, 11, 24, 22, 45, tzinfo=UTC)  # a Tuesday; the 23:00 passes never ran
    tuesdays = reader(tx_session, "tue@example.org", zone="UTC", hour=23, days=[2], confirmed_at=missed)
    mondays = reader(tx_session, "mon@example.org", zone="UTC", hour=23, days=[1], confirmed_at=missed)
    paused = reader(tx_session, "paused@example.org", zone="UTC", hour=23, confirmed_at=missed)
    tx_session.get_one(Subscriber, paused).paused_at = missed
    newcomer = reader(tx_session, "new@example.org", zone="UTC", hour=23, confirmed_at=missed + 2 * TICK)
    tx_session.flush()

    service.prepare_deliveries(tx_session, now=missed)
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 25, 0, 0, tzinfo=UTC))

    assert dates_of(tx_session, tuesdays) == [date(2026, 11, 24)]
    assert dates_of(tx_session, mondays) == []
    assert dates_of(tx_session, paused) == []
    assert dates_of(tx_session, newcomer) == []  # confirmed after its 23:00 had come


def test_send_now_dates_each_reader_with_their_own_local_date(tx_session: Session) -> None:
    # `papertide digest send` (no --date) at 21:00 in Los Angeles, 05:00 UTC the next day.
    since = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    la = reader(tx_session, "la@example.org", zone="America/Los_Angeles", hour=7, confirmed_at=since)
    seen = ticking(tx_session, la, since, since + timedelta(minutes=1))
    assert list(seen) == [date(2026, 11, 26)]  # 07:00 in LA: the scheduled digest
    utc = reader(tx_session, "utc@example.org", zone="UTC", hour=7, confirmed_at=since)
    # 14:00 in Tokyo at the send: before their hour.
    tokyo = reader(tx_session, "jp@example.org", zone="Asia/Tokyo", hour=23, confirmed_at=since)

    service.prepare_deliveries_now(tx_session, now=datetime(2026, 11, 27, 5, 0, tzinfo=UTC))

    assert dates_of(tx_session, la) == [date(2026, 11, 26)]  # their date: had it already
    assert dates_of(tx_session, utc) == [date(2026, 11, 27)]
    assert dates_of(tx_session, tokyo) == [date(2026, 11, 27)]
    # The next morning in LA brings the next digest, and Tokyo's 23:00 brings no second one.
    later = ticking(
        tx_session, la, datetime(2026, 11, 27, 5, 0, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC)
    )
    assert later[date(2026, 11, 27)] == datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    assert dates_of(tx_session, tokyo) == [date(2026, 11, 27)]


def test_send_now_before_the_send_hour_is_that_local_dates_only_digest(tx_session: Session) -> None:
    early = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 05:30 in Kolkata
    sid = reader(tx_session, "in@example.org", zone="Asia/Kolkata", hour=7, confirmed_at=early)

    service.prepare_deliveries_now(tx_session, now=early)
    seen = ticking(tx_session, sid, early, datetime(2026, 11, 26, 2, 0, tzinfo=UTC))

    assert sorted(seen) == [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)]
    assert seen[date(2026, 11, 25)] == datetime(2026, 11, 25, 1, 30, tzinfo=UTC)  # 07:00 the next day


def move(session: Session, sid: int, *, zone: str | None = None, hour: int | None = None) -> None:
    subscriber = session.get_one(Subscriber, sid)
    subscriber.time_zone = zone or subscriber.time_zone
    subscriber.send_hour = subscriber.send_hour if hour is None else hour
    session.flush()


def created(session: Session, sid: int) -> list[datetime]:
    stmt = select(DigestDelivery.created_at).where(DigestDelivery.subscriber_id == sid)
    return sorted(session.scalars(stmt))


def local_days_with_a_digest(instants: list[datetime], zone: str) -> set[date]:
    return {at.astimezone(ZoneInfo(zone)).date() for at in instants}


@pytest.mark.parametrize(
    ("old", "new", "hour"),
    [
        ("Pacific/Niue", "Pacific/Kiritimati", 8),  # 25 h east: Kiritimati's 08:00 came an hour ago
        ("America/Los_Angeles", "Asia/Tokyo", 8),  # 17 h east: the last one arrived 01:00 there
        ("Pacific/Pago_Pago", "Pacific/Kiritimati", 0),  # 25 h east, at midnight
    ],
)
def test_moving_east_across_the_date_line_brings_no_second_digest_that_local_day(
    tx_session: Session, old: str, new: str, hour: int
) -> None:
    start = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    sid = reader(tx_session, "east@example.org", zone=old, hour=hour, confirmed_at=start)
    ticking(tx_session, sid, start, datetime(2026, 11, 27, tzinfo=UTC))
    last = created(tx_session, sid)[-1]
    move(tx_session, sid, zone=new)  # right after a digest, when it matters most
    ticking(tx_session, sid, last + TICK, datetime(2026, 12, 2, tzinfo=UTC))

    instants = [at for at in created(tx_session, sid) if at >= last]
    assert min(b - a for a, b in itertools.pairwise(instants)) >= timedelta(hours=20), instants
    # Every local day in the new zone, from the one the move happened in, brings exactly one.
    tz = ZoneInfo(new)
    arrivals = [at.astimezone(tz).date() for at in instants]
    assert arrivals == [arrivals[0] + timedelta(days=n) for n in range(len(arrivals))], instants
    assert len(arrivals) >= 5
    assert all(at.astimezone(tz).hour == hour for at in instants if at > last)


def test_a_smaller_move_east_keeps_one_digest_each_local_day(tx_session: Session) -> None:
    # Berlin 08:00 is 16:00 in Tokyo: the next Tokyo 08:00 is 16 h later, on the next local day.
    start = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    sid = reader(tx_session, "east@example.org", zone="Europe/Berlin", hour=8, confirmed_at=start)
    ticking(tx_session, sid, start, datetime(2026, 11, 27, 7, 15, tzinfo=UTC))  # Berlin 27 Nov 08:15
    move(tx_session, sid, zone="Asia/Tokyo")

    ticking(tx_session, sid, datetime(2026, 11, 27, 7, 15, tzinfo=UTC), datetime(2026, 11, 29, tzinfo=UTC))

    assert created(tx_session, sid)[-4:] == [
        datetime(2026, 11, 26, 7, 0, tzinfo=UTC),
        datetime(2026, 11, 27, 7, 0, tzinfo=UTC),  # 08:00 in Berlin, 16:00 in Tokyo
        datetime(2026, 11, 27, 23, 0, tzinfo=UTC),  # 08:00 in Tokyo, 28 Nov
        datetime(2026, 11, 28, 23, 0, tzinfo=UTC),
    ]


def test_moving_west_across_the_date_line_keeps_one_digest_per_date(tx_session: Session) -> None:
    # Tokyo 08:00: the digest of 28 Nov goes at 23:00 UTC on the 27th (15:00 that day in Los
    # Angeles). The reader then moves to Los Angeles: its 28 Nov has had its digest, so the next
    # is 29 Nov 08:00 there. The ledger's key (reader, date) cannot hold a second 28 Nov.
    start = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    sid = reader(tx_session, "west@example.org", zone="Asia/Tokyo", hour=8, confirmed_at=start)
    ticking(tx_session, sid, start, datetime(2026, 11, 27, 23, 15, tzinfo=UTC))
    assert dates_of(tx_session, sid)[-1] == date(2026, 11, 28)
    move(tx_session, sid, zone="America/Los_Angeles")

    seen = ticking(
        tx_session, sid, datetime(2026, 11, 27, 23, 15, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    )

    days = dates_of(tx_session, sid)
    assert days == [days[0] + timedelta(days=n) for n in range(len(days))]  # no date skipped
    assert seen[date(2026, 11, 29)] == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # 08:00 in LA
    assert seen[date(2026, 11, 30)] == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)


def test_an_earlier_send_hour_goes_at_that_hour_the_next_day(tx_session: Session) -> None:
    start = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    sid = reader(tx_session, "utc@example.org", zone="UTC", hour=20, confirmed_at=start)
    ticking(tx_session, sid, start, datetime(2026, 11, 24, 20, 15, tzinfo=UTC))
    move(tx_session, sid, hour=7)  # after today's 20:00 digest

    ticking(tx_session, sid, datetime(2026, 11, 24, 20, 15, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))

    assert created(tx_session, sid) == [
        datetime(2026, 11, 24, 20, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 7, 0, tzinfo=UTC),
        datetime(2026, 11, 26, 7, 0, tzinfo=UTC),
    ]


def test_a_later_send_hour_after_todays_digest_adds_nothing_today(tx_session: Session) -> None:
    start = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    sid = reader(tx_session, "utc@example.org", zone="UTC", hour=7, confirmed_at=start)
    ticking(tx_session, sid, start, datetime(2026, 11, 24, 7, 15, tzinfo=UTC))
    move(tx_session, sid, hour=20)

    ticking(tx_session, sid, datetime(2026, 11, 24, 7, 15, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC))

    assert created(tx_session, sid) == [start + timedelta(hours=7), start + timedelta(hours=44)]


def test_a_failed_phrase_vector_prune_does_not_hold_up_the_scheduled_pass(
    sample_database: str, session: Session, smtp: tuple[Inbox, SmtpMailer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forgetting unused phrase vectors is a chore of the digest pass: when it fails, the pass still
    prepares and sends (the next pass tries the chore again)."""
    inbox, mailer = smtp
    before = datetime(2026, 11, 24, 1, 15, tzinfo=UTC)
    reader(session, "in@example.org", zone="Asia/Kolkata", hour=7, confirmed_at=before)
    session.commit()

    def failing(session: Session) -> int:
        raise RuntimeError("statement timeout")

    monkeypatch.setattr(service, "prune_phrase_vectors", failing)
    at_seven = jobs.send_scheduled_digests(mailer=mailer, encoder=None, now=before + TICK)
    assert at_seven is not None
    assert at_seven.sent == 1
    assert [m["To"] for m in inbox.messages] == ["in@example.org"]


def test_a_backfill_of_an_old_date_by_hand_leaves_todays_digest_due(tx_session: Session) -> None:
    """`digest send --date` at 06:00 UTC for a date that went missing days ago: a reader whose send
    hour is 08:00 UTC still gets the 25th's digest (the backfilled row is not "a digest today")."""
    since = datetime(2026, 11, 1, tzinfo=UTC)
    sid = reader(tx_session, "utc@example.org", zone="UTC", hour=8, confirmed_at=since)
    ticking(tx_session, sid, datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 25, 6, 0, tzinfo=UTC))
    service.prepare_deliveries(
        tx_session, now=datetime(2026, 11, 25, 6, 0, tzinfo=UTC), digest_date=date(2026, 11, 20)
    )

    seen = ticking(
        tx_session, sid, datetime(2026, 11, 25, 6, 0, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)
    )

    assert dates_of(tx_session, sid)[-1] == date(2026, 11, 25)
    assert seen[date(2026, 11, 25)] >= datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_a_send_hour_that_fell_in_a_pause_is_not_made_up_by_a_resume_the_same_day(
    tx_session: Session,
) -> None:
    """Paused at 07:00, the 08:00 pass skips the reader; resumed at 12:00, the 12:15 pass must not
    send the 24th's digest after all (a pause drops what falls in it). The next day's goes."""
    sid = reader(
        tx_session, "away@example.org", zone="UTC", hour=8, confirmed_at=datetime(2026, 11, 1, tzinfo=UTC)
    )
    subscriber = tx_session.get_one(Subscriber, sid)
    preferences.pause(subscriber=subscriber, now=datetime(2026, 11, 24, 7, 0, tzinfo=UTC))
    tx_session.flush()
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    preferences.resume(subscriber=subscriber, now=datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    tx_session.flush()

    ticking(
        tx_session, sid, datetime(2026, 11, 24, 12, 15, tzinfo=UTC), datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    )

    assert dates_of(tx_session, sid) == [date(2026, 11, 25)]


def test_a_catch_up_in_the_small_hours_then_a_move_a_day_east_costs_no_later_date(
    tx_session: Session,
) -> None:
    """The 23rd's 08:00 in Honolulu went unseen; it is made up at 01:00 on the 24th there (dated the
    23rd, made late). The reader then moves to Kiritimati (UTC+14, 01:00 on the 25th there). The
    late digest was the 23rd's and stands in for no other date: the 25th's comes at 08:00 there,
    and every later date at its hour."""
    start = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    sid = reader(tx_session, "east@example.org", zone="Pacific/Honolulu", hour=8, confirmed_at=start)
    ticking(tx_session, sid, start, datetime(2026, 11, 23, 18, 0, tzinfo=UTC))
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 11, 0, tzinfo=UTC))
    assert date(2026, 11, 23) in dates_of(tx_session, sid)
    move(tx_session, sid, zone="Pacific/Kiritimati")

    seen = ticking(
        tx_session, sid, datetime(2026, 11, 24, 11, 15, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC)
    )

    kiritimati = ZoneInfo("Pacific/Kiritimati")
    for day in (date(2026, 11, 25), date(2026, 11, 26), date(2026, 11, 27)):
        assert seen[day].astimezone(kiritimati).replace(tzinfo=None) == datetime.combine(day, time(8)), day


@pytest.mark.parametrize(
    ("back_at", "hour"),
    [
        (datetime(2026, 11, 24, 23, 45, tzinfo=UTC), 7),  # back before midnight: as before
        (datetime(2026, 11, 25, 0, 15, tzinfo=UTC), 7),  # a quarter hour later: the 25th was lost
        (datetime(2026, 11, 25, 10, 0, tzinfo=UTC), 23),  # the 23:00 reader, back at 10:00
    ],
)
def test_an_outage_costs_no_date_after_the_ones_it_covered(
    tx_session: Session, back_at: datetime, hour: int
) -> None:
    """The scheduler is down from 06:45 on the 24th; when it is back, the 24th's digest is made up
    at once, and the 25th's still comes at the reader's hour on the 25th."""
    since = datetime(2026, 11, 1, tzinfo=UTC)
    sid = reader(tx_session, "outage@example.org", zone="UTC", hour=hour, confirmed_at=since)
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 6, 45, tzinfo=UTC))

    seen = ticking(tx_session, sid, back_at, datetime(2026, 11, 26, 6, 0, tzinfo=UTC))

    assert seen[date(2026, 11, 24)] == back_at
    assert seen[date(2026, 11, 25)] == datetime(2026, 11, 25, hour, 0, tzinfo=UTC)


def test_a_backfill_of_yesterday_by_hand_leaves_todays_digest_due(tx_session: Session) -> None:
    """`digest send --date 2026-11-24` at 06:00 on the 25th (the 24th went missing): the 08:00
    reader's own 25th still comes at 08:00."""
    since = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    sid = reader(tx_session, "utc@example.org", zone="UTC", hour=8, confirmed_at=since)
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 6, 0, tzinfo=UTC))
    service.prepare_deliveries(
        tx_session, now=datetime(2026, 11, 25, 6, 0, tzinfo=UTC), digest_date=date(2026, 11, 24)
    )

    seen = ticking(
        tx_session, sid, datetime(2026, 11, 25, 6, 15, tzinfo=UTC), datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    )

    assert dates_of(tx_session, sid) == [date(2026, 11, 24), date(2026, 11, 25)]
    assert seen[date(2026, 11, 25)] == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_an_explicit_date_not_yet_begun_for_a_reader_is_not_theirs_yet(tx_session: Session) -> None:
    """`digest send --date 2026-11-25` at 20:00 UTC on the 24th (an operator in New Zealand, where
    the 25th has begun): Kiritimati's reader (10:00 on the 25th) gets it; the UTC and Los Angeles
    readers, still on the 24th, do not get the 25th's digest tonight, and get it on the 25th."""
    since = datetime(2026, 11, 1, tzinfo=UTC)
    readers = {
        zone: reader(
            tx_session, f"{zone.split('/')[-1].lower()}@example.org", zone=zone, hour=7, confirmed_at=since
        )
        for zone in ("UTC", "America/Los_Angeles", "Pacific/Kiritimati")
    }
    added = service.prepare_deliveries(
        tx_session, now=datetime(2026, 11, 24, 20, 0, tzinfo=UTC), digest_date=date(2026, 11, 25)
    )

    assert added == 1
    assert dates_of(tx_session, readers["Pacific/Kiritimati"]) == [date(2026, 11, 25)]
    assert dates_of(tx_session, readers["UTC"]) == []
    seen = ticking(
        tx_session,
        readers["UTC"],
        datetime(2026, 11, 24, 20, 15, tzinfo=UTC),
        datetime(2026, 11, 25, 8, 0, tzinfo=UTC),
    )
    assert seen[date(2026, 11, 25)] == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "day", "hour", "jump"),
    [
        # Troll jumps two hours, 01:00 -> 03:00 (UTC+0 -> UTC+2): 02:00 comes with the jump.
        ("Antarctica/Troll", date(2026, 3, 29), 2, datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        # Chatham jumps at 02:45 -> 03:45 (UTC+12:45 -> +13:45): 03:00 comes with the jump.
        ("Pacific/Chatham", date(2026, 9, 27), 3, datetime(2026, 9, 26, 14, 0, tzinfo=UTC)),
        ("America/Los_Angeles", date(2026, 3, 8), 2, datetime(2026, 3, 8, 10, 0, tzinfo=UTC)),
    ],
)
def test_a_send_hour_in_a_daylight_saving_gap_comes_when_the_clock_jumps_past_it(
    zone: str, day: date, hour: int, jump: datetime
) -> None:
    slot = schedule.due_slot(zone, hour, now=jump + timedelta(hours=6), window=timedelta(hours=24))

    assert slot is not None
    assert (slot.day, slot.due_at) == (day, jump)
    before = schedule.due_slot(zone, hour, now=jump - timedelta(seconds=1), window=timedelta(hours=1))
    assert before is None or before.day != day, "not due a second before the jump"


def test_a_second_short_pause_does_not_bring_back_a_date_the_first_dropped(tx_session: Session) -> None:
    """Paused 06:00-08:00 over the 07:00 hour (dropped, as it should be), then paused 09:00-09:05:
    the next passes still leave the 24th without a digest."""
    sid = reader(
        tx_session,
        "twice@example.org",
        zone="UTC",
        hour=7,
        confirmed_at=datetime(2026, 11, 24, 5, 0, tzinfo=UTC),
    )
    subscriber = tx_session.get_one(Subscriber, sid)
    at = datetime(2026, 11, 24, 5, 45, tzinfo=UTC)
    pauses = {
        datetime(2026, 11, 24, 6, 0, tzinfo=UTC): preferences.pause,
        datetime(2026, 11, 24, 8, 0, tzinfo=UTC): preferences.resume,
        datetime(2026, 11, 24, 9, 0, tzinfo=UTC): preferences.pause,
        datetime(2026, 11, 24, 9, 5, tzinfo=UTC): preferences.resume,
    }
    while at < datetime(2026, 11, 24, 12, 0, tzinfo=UTC):
        for when, change in pauses.items():
            if at - TICK < when <= at:
                change(subscriber=subscriber, now=when)
        tx_session.flush()
        service.prepare_deliveries(tx_session, now=at)
        at += TICK

    assert dates_of(tx_session, sid) == []


def test_a_pause_that_began_after_the_send_hour_does_not_drop_that_date(tx_session: Session) -> None:
    """No pass between 07:00 and 07:45; the reader pauses at 07:20 and resumes at 07:40: the 07:00
    digest was due before the pause, and the 07:45 pass makes it."""
    sid = reader(
        tx_session,
        "brief@example.org",
        zone="UTC",
        hour=7,
        confirmed_at=datetime(2026, 11, 24, 6, 0, tzinfo=UTC),
    )
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 6, 45, tzinfo=UTC))
    subscriber = tx_session.get_one(Subscriber, sid)
    preferences.pause(subscriber=subscriber, now=datetime(2026, 11, 24, 7, 20, tzinfo=UTC))
    preferences.resume(subscriber=subscriber, now=datetime(2026, 11, 24, 7, 40, tzinfo=UTC))
    tx_session.flush()

    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 7, 45, tzinfo=UTC))

    assert dates_of(tx_session, sid) == [date(2026, 11, 24)]


@pytest.mark.parametrize(
    ("now", "first", "last"),
    [
        # 00:30 UTC: the retry window opened at 00:30 the day before, when UTC-12 was still on the
        # 26th; Kiribati (UTC+14) is on the 28th, as UTC is.
        (datetime(2026, 11, 28, 0, 30, tzinfo=UTC), date(2026, 11, 26), date(2026, 11, 28)),
        # 10:30 UTC: Kiribati's 29th began half an hour ago (UTC+13 would still be on the 28th).
        (datetime(2026, 11, 28, 10, 30, tzinfo=UTC), date(2026, 11, 26), date(2026, 11, 29)),
        # 11:30 UTC: the window opened at 23:30 on the 26th in UTC-12 (UTC-11 was on the 27th).
        (datetime(2026, 11, 28, 11, 30, tzinfo=UTC), date(2026, 11, 26), date(2026, 11, 29)),
        # 14:00 UTC: the window opened when UTC-12's 27th had begun; Kiribati is on the 29th.
        (datetime(2026, 11, 28, 14, 0, tzinfo=UTC), date(2026, 11, 27), date(2026, 11, 29)),
    ],
)
def test_the_dates_a_reader_can_be_due_on_run_from_the_westmost_clock_to_the_eastmost(
    now: datetime, first: date, last: date
) -> None:
    assert schedule.dates_a_reader_can_be_due(now=now, window=timedelta(hours=24)) == (first, last)


def test_a_move_thirteen_hours_east_brings_no_second_digest_that_local_day(tx_session: Session) -> None:
    # London's 12:00 digest comes at 01:00 on the 25th in Auckland; Auckland's 12:00 that day is
    # 11 hours later: the digest of the same local day stands in for it.
    since = datetime(2026, 11, 24, 11, 45, tzinfo=UTC)
    sid = reader(tx_session, "move@example.org", zone="Europe/London", hour=12, confirmed_at=since)
    ticking(
        tx_session,
        sid,
        datetime(2026, 11, 24, 11, 45, tzinfo=UTC),
        datetime(2026, 11, 24, 12, 15, tzinfo=UTC),
    )
    move(tx_session, sid, zone="Pacific/Auckland")

    seen = ticking(
        tx_session, sid, datetime(2026, 11, 24, 12, 15, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)
    )

    assert sorted(seen) == [date(2026, 11, 24), date(2026, 11, 26)]
    assert seen[date(2026, 11, 26)] == datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # 12:00 NZDT


@pytest.mark.parametrize(
    ("zone", "hour", "days", "now", "shown"),
    [
        # Saturday 28th, 12:00 UTC: 07:00 UTC has gone and today's is made: Sunday's.
        ("UTC", 7, [1, 2, 3, 4, 5, 6, 7], datetime(2026, 11, 28, 12, 0, tzinfo=UTC), "Sun 29 Nov, 07:00"),
        # 18:00 in Kolkata is still to come (17:30 there): today's.
        (
            "Asia/Kolkata",
            18,
            [1, 2, 3, 4, 5, 6, 7],
            datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
            "Sat 28 Nov, 18:00",
        ),
        # Mondays only, on a Saturday.
        ("Europe/Berlin", 9, [1], datetime(2026, 11, 28, 12, 0, tzinfo=UTC), "Mon 30 Nov, 09:00"),
        # 02:00 does not exist in Los Angeles on 8 March: the scheduler sends at the jump, 03:00.
        ("America/Los_Angeles", 2, [7], datetime(2026, 3, 7, 20, 0, tzinfo=UTC), "Sun 08 Mar, 03:00"),
    ],
)
def test_the_next_digest_is_the_first_send_day_whose_hour_is_to_come(
    tx_session: Session, zone: str, hour: int, days: list[int], now: datetime, shown: str
) -> None:
    sid = reader(tx_session, "next@example.org", zone=zone, hour=hour, days=days)
    subscriber = tx_session.get_one(Subscriber, sid)
    service.prepare_deliveries(tx_session, now=now)  # today's row, where its hour has come

    assert service.next_digest(tx_session, subscriber, now=now) == shown
    preferences.pause(subscriber=subscriber, now=now)
    assert service.next_digest(tx_session, subscriber, now=now) is None, "none while paused"


def moved_east_after_todays_digest(session: Session, sid: int) -> datetime:
    """Saturday's digest made at 16:00 UTC; at 17:00 the reader moves to Tokyo, 08:00 (Sunday 02:00
    there): Sunday's 08:00 is Saturday 23:00 UTC, seven hours after a digest they already had that
    Tokyo day, which stands in for it."""
    service.prepare_deliveries(session, now=datetime(2026, 11, 28, 16, 0, tzinfo=UTC))
    move(session, sid, zone="Asia/Tokyo", hour=8)
    return datetime(2026, 11, 28, 17, 0, tzinfo=UTC)


def moved_west_after_tomorrows_digest(session: Session, sid: int) -> datetime:
    """In Kolkata at 07:00, Thursday's digest is made at 01:30 UTC; at 03:30 the reader moves to
    Honolulu, 11:00 (Wednesday 17:30 there): Thursday's is made already, so Friday's is next."""
    move(session, sid, zone="Asia/Kolkata", hour=7)
    service.prepare_deliveries(session, now=datetime(2026, 3, 12, 1, 30, tzinfo=UTC))
    move(session, sid, zone="Pacific/Honolulu", hour=11)
    return datetime(2026, 3, 12, 3, 30, tzinfo=UTC)


def paused_over_the_hour(session: Session, sid: int) -> datetime:
    """Paused at 15:40, resumed at 16:05: the 16:00 digest fell in the pause and is not made up."""
    subscriber = session.get_one(Subscriber, sid)
    service.prepare_deliveries(session, now=datetime(2026, 11, 28, 15, 30, tzinfo=UTC))
    preferences.pause(subscriber=subscriber, now=datetime(2026, 11, 28, 15, 40, tzinfo=UTC))
    service.prepare_deliveries(session, now=datetime(2026, 11, 28, 16, 0, tzinfo=UTC))
    preferences.resume(subscriber=subscriber, now=datetime(2026, 11, 28, 16, 5, tzinfo=UTC))
    session.flush()
    return datetime(2026, 11, 28, 16, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("story", "promised"),
    [
        (moved_east_after_todays_digest, "Mon 30 Nov, 08:00"),
        (moved_west_after_tomorrows_digest, "Fri 13 Mar, 11:00"),
        (paused_over_the_hour, "Sun 29 Nov, 16:00"),
    ],
)
def test_the_next_digest_the_page_names_is_the_one_the_scheduler_makes(
    tx_session: Session, story: Callable[[Session, int], datetime], promised: str
) -> None:
    sid = reader(tx_session, "told@example.org", zone="UTC", hour=16)
    now = story(tx_session, sid)
    before = created(tx_session, sid)

    said = service.next_digest(tx_session, tx_session.get_one(Subscriber, sid), now=now)
    quarter = now.replace(second=0, microsecond=0) + timedelta(minutes=-now.minute % 15)  # DIGEST_CRON's
    ticking(tx_session, sid, quarter, now + timedelta(days=3))

    zone = ZoneInfo(tx_session.get_one(Subscriber, sid).time_zone)
    first = min(at for at in created(tx_session, sid) if at not in before).astimezone(zone)
    assert said == promised
    assert said == f"{first:%a %d %b}, {first:%H:%M}", "the scheduler makes it when the page says"


STORY_ZONES = [
    "UTC",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Pacific/Honolulu",
    "Asia/Tokyo",
    "Europe/Berlin",
    "Pacific/Kiritimati",
    "Pacific/Niue",
    "America/Nuuk",
]
# A few days before a daylight-saving change: US spring and autumn, Chatham's two, and none.
STORY_STARTS = [
    datetime(2026, 3, 5, tzinfo=UTC),
    datetime(2026, 10, 28, tzinfo=UTC),
    datetime(2026, 9, 24, tzinfo=UTC),
    datetime(2026, 4, 2, tzinfo=UTC),
    datetime(2026, 11, 20, tzinfo=UTC),
]


def on_the_quarter(at: datetime) -> datetime:
    """The first pass of DIGEST_CRON's (every 15 minutes) at or after `at`."""
    return at.replace(second=0, microsecond=0) + timedelta(minutes=-at.minute % 15)


# Seeds 0-3 are any history. The others are those of the first 300 whose story reaches a rule of the
# scheduler's that the page must follow, each caught by it when next_due ignored the rule: a pause
# over the send hour (18, 56), a move west (64, 138), a move east (72, 73). The first 200 all agree.
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 18, 56, 64, 72, 73, 138])
def test_the_next_digest_named_after_a_random_history_is_the_one_the_scheduler_makes(
    tx_session: Session, seed: int
) -> None:
    """A reader in a random zone, hour and send days gets digests for up to two days; then moves
    (zone and hour, or hour), pauses for up to 30 hours, or does nothing. What the page names
    next must be what the scheduler's pass, run every 15 minutes, makes next."""
    rng = random.Random(seed)
    zone, hour = rng.choice(STORY_ZONES), rng.randrange(24)
    days = sorted(rng.sample(range(1, 8), rng.choice([1, 3, 5, 7])))
    sid = reader(tx_session, "story@example.org", zone=zone, hour=hour, days=days)
    subscriber = tx_session.get_one(Subscriber, sid)
    start = rng.choice(STORY_STARTS) + timedelta(minutes=15 * rng.randrange(96))
    now = start + timedelta(minutes=15 * rng.randrange(1, 4 * 48))
    ticking(tx_session, sid, start, now)
    action = rng.choice(["none", "move", "pause", "new hour"])
    if action == "move":
        move(tx_session, sid, zone=rng.choice(STORY_ZONES), hour=rng.randrange(24))
    elif action == "new hour":
        move(tx_session, sid, hour=rng.randrange(24))
    elif action == "pause":
        preferences.pause(subscriber=subscriber, now=now)
        resumed = now + timedelta(minutes=rng.randrange(5, 60 * 30))
        ticking(tx_session, sid, on_the_quarter(now), resumed)
        preferences.resume(subscriber=subscriber, now=resumed)
        tx_session.flush()
        now = resumed
    now += timedelta(minutes=rng.randrange(14))
    before = set(created(tx_session, sid))

    said = service.next_digest(tx_session, subscriber, now=now)
    ticking(tx_session, sid, on_the_quarter(now), now + timedelta(days=8, hours=2))

    story = f"{zone} {hour}:00 {days}, {action} -> {subscriber.time_zone} {subscriber.send_hour}:00, at {now}"
    first = min(at for at in created(tx_session, sid) if at not in before)
    if said == "at the next scheduler pass, within minutes":
        assert first <= on_the_quarter(now) + TICK, story
    else:
        first = first.astimezone(ZoneInfo(subscriber.time_zone))
        assert said == f"{first:%a %d %b}, {first:%H:%M}", story


def test_a_reader_confirmed_after_todays_hour_gets_todays_digest_at_the_next_pass(
    tx_session: Session,
) -> None:
    """Confirmed at 10:05 with the default 07:00: the next pass makes today's (its hour has come), and
    the page says so rather than naming tomorrow."""
    now = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)
    sid = reader(tx_session, "late@example.org", zone="UTC", hour=7, confirmed_at=now)
    subscriber = tx_session.get_one(Subscriber, sid)

    said = service.next_digest(tx_session, subscriber, now=now)
    service.prepare_deliveries(tx_session, now=datetime(2026, 11, 24, 10, 15, tzinfo=UTC))

    assert said == "at the next scheduler pass, within minutes"
    assert dates_of(tx_session, sid) == [date(2026, 11, 24)]
    assert service.next_digest(tx_session, subscriber, now=datetime(2026, 11, 24, 10, 15, tzinfo=UTC)) == (
        "Wed 25 Nov, 07:00"
    )
