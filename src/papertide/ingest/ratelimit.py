"""One request every N seconds per host, across every papertide process: the schedule lives in Postgres.

arXiv asks for at most one request every 3 seconds on one connection
(https://info.arxiv.org/help/api/tou.html). Each caller reserves the next free slot in the
`rate_limit` row for the host under a row lock, commits, then sleeps until its slot; two workers
on two machines therefore get slots at least `interval` apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from papertide.db import unit_of_work
from papertide.ingest import repository

ARXIV_INTERVAL = timedelta(seconds=3)


@dataclass
class Clock:
    """Wall time and sleep, injectable so tests can run the limiter on a fake clock."""

    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = field(default=time.sleep)


def reserve_slot(key: str, *, interval: timedelta, now: datetime) -> datetime:
    """Book the next slot for `key` at or after `now` and return it."""
    # A documented exception to "the edge owns the transaction": the booking must commit before
    # we sleep, or every other process would wait on our row lock instead of taking the next slot.
    with unit_of_work() as session:
        return repository.book_slot(session, key, interval=interval, now=now)


def wait_turn(key: str, *, interval: timedelta = ARXIV_INTERVAL, clock: Clock | None = None) -> datetime:
    """Block until this process may send its next request to `key`; returns the slot it got."""
    clock = clock or Clock()
    slot = reserve_slot(key, interval=interval, now=clock.now())
    delay = (slot - clock.now()).total_seconds()
    if delay > 0:
        clock.sleep(delay)
    return slot
