"""When a reader's digest is due: their local date and send hour, from Python's zone database.

Pure time arithmetic for the scheduler's pass (service.prepare_deliveries): which local date is due
for a (zone, send hour) now, a missed one caught up inside the retry window, and the clock in a
zone. Python, not Postgres, does it: Postgres reads names such as CET as fixed abbreviations with
no summer time, and its zone rules are those of its build (docs/operations.md#when-digests-go-out).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from papertide.digests import repository

log = logging.getLogger(__name__)


# A digest created this long before another is due, on that one's local day, stands in for it
# (below); further apart, both go: a 23-hour DST day and a catch-up pass up to 3 hours late fit.
MIN_SPACING = timedelta(hours=20)


def due_slot(
    zone: str, hour: int, *, now: datetime, window: timedelta, seen_until: datetime | None = None
) -> repository.DueSlot | None:
    """The digest due now for readers of `zone` at send `hour`: today's once its hour has come,
    before that yesterday's if its hour went by with no pass to see it (after `seen_until`, the
    last pass; None: unknown) and inside the retry `window` (a row that is there already makes it
    a no-op); None when neither, or for a zone Python cannot load."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("subscribers with the unknown time zone %r get no digest until it is corrected", zone)
        return None
    today = now.astimezone(tz).date()
    catch_up = _instant(today, hour, tz) > now
    day = today - timedelta(days=1) if catch_up else today
    due_at = _instant(day, hour, tz)
    if due_at > now or (catch_up and due_at <= now - window):
        return None
    if catch_up and seen_until is not None and due_at <= seen_until:
        # A pass saw this hour and added what was due then: a reader it skipped (paused, or a
        # digest that day already after a move east) is not made up for now.
        return None
    if catch_up:
        # A missed date goes now, unless a digest came after its hour (that one was its digest).
        # Yesterday's own catch-up came before this date's hour, so a daily DIGEST_CRON still
        # brings one digest every date.
        taken_since = due_at
    else:
        # Skipped for a reader whose last digest was created on this local day (in the zone they
        # have now) less than MIN_SPACING before it was due: after a move east across the date
        # line, or a catch-up in the small hours, the digest they had this day stands in for it.
        day_start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        taken_since = max(day_start, due_at - MIN_SPACING)
    return repository.DueSlot(
        zone=zone,
        hour=hour,
        day=day,
        isodow=day.isoweekday(),
        catch_up=catch_up,
        due_at=due_at,
        taken_since=taken_since,
    )


# The earliest and the latest clocks on Earth: UTC-12 (Baker Island) and UTC+14 (Kiribati's Line Islands).
_WESTMOST = timedelta(hours=-12)
_EASTMOST = timedelta(hours=14)


def dates_a_reader_can_be_due(*, now: datetime, window: timedelta) -> tuple[date, date]:
    """The first and last digest dates a run could have made for some reader somewhere: from the
    local date in the westmost zone as the retry `window` opened to the date in the eastmost zone
    now. `papertide digest send --date` outside them is a typo (a year off sends every reader an
    extra digest today) or a day not begun anywhere, and is refused without --force."""
    return (now - window + _WESTMOST).date(), (now + _EASTMOST).date()


def next_due(
    zone: str,
    hour: int,
    send_days: list[int],
    *,
    now: datetime,
    made: Collection[date],
    last_made: tuple[datetime, date] | None = None,
    resumed_at: datetime | None = None,
    pause_began_at: datetime | None = None,
) -> datetime | None:
    """When a reader's next digest is due, in their zone: today's at the first pass after its hour
    (`now` once the hour has come and today's row is not made yet), else the first send day's hour
    to come, at the instant the scheduler uses (a DST gap's jump). None for a zone Python cannot load.

    A day the scheduler will skip is skipped here too, by its rules (due_slot, and the pass's
    query in repository.add_due_deliveries): a date whose digest is `made` already (today's, or a
    later one made in a zone further east before a move west), one whose hour fell in a pause,
    and one on which the reader's newest digest made on time (`last_made`: when it was created,
    its date) stands in, after a move east."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    today = now.astimezone(tz).date()
    for ahead in range(8):
        day = today + timedelta(days=ahead)
        if day.isoweekday() not in send_days or day in made:
            continue
        due_at = _instant(day, hour, tz)
        paused_then = (
            resumed_at is not None
            and resumed_at > due_at
            and (pause_began_at is None or pause_began_at <= due_at)
        )
        if paused_then or _stood_in_for(day, due_at, tz, last_made):
            continue
        return max(due_at, now).astimezone(tz)
    return None


def _stood_in_for(day: date, due_at: datetime, tz: ZoneInfo, last_made: tuple[datetime, date] | None) -> bool:
    """Whether the digest made at `last_made` stands in for `day`'s (due_slot's `taken_since`)."""
    if last_made is None:
        return False
    made_at, made_date = last_made
    day_start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    return made_at >= max(day_start, due_at - MIN_SPACING) and made_date >= day - timedelta(days=2)


def local_time(zone: str, now: datetime) -> repository.LocalTime | None:
    """The clock in `zone` at `now`, from Python's zone database: the one the manage page checks
    names against, so what a reader chose is what decides (Postgres's own zone rules can lag, and
    it reads names such as CET as fixed abbreviations with no summer time)."""
    try:
        local = now.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        log.error("subscribers with the unknown time zone %r get no digest until it is corrected", zone)
        return None
    return repository.LocalTime(zone=zone, day=local.date(), hour=local.hour, isodow=local.isoweekday())


def _instant(day: date, hour: int, tz: ZoneInfo) -> datetime:
    """When `hour` o'clock comes on `day` in `tz`: an hour that happens twice (the autumn change)
    its first time (fold=0), and an hour that does not exist (the spring change) the instant the
    clock jumps past it."""
    wall = datetime.combine(day, time(hour), tzinfo=tz)
    first = wall.astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return first
    # In a gap, fold=0 reads the hour with the offset before the jump, which is the jump itself
    # only for a gap of one hour that starts on the hour: Antarctica/Troll jumps 01:00 -> 03:00
    # (02:00 would come at 04:00), Pacific/Chatham 02:45 -> 03:45 (03:00 at 04:00). The jump lies
    # between the two readings; find the first instant the clock shows `hour` or later.
    early, late = wall.replace(fold=1).astimezone(UTC), first
    if early > late:
        early, late = late, early
    while late - early > timedelta(seconds=1):
        middle = early + (late - early) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= wall.replace(tzinfo=None):
            late = middle
        else:
            early = middle
    return late.replace(microsecond=0)
