"""Two schedulers on one database: one leads; a leader whose lock is cut steps down before another
takes over, and the remaining one leads when the other stops (issue 8, item 9)."""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Iterator

import psycopg
import pytest

from papertide.config import Settings
from papertide.worker.scheduler import LEADER_LOCK_KEY, run_as_leader
from tests.faults.processes import libpq_url
from tests.helpers import wait_until

# No cron fires during the test: what is observed is who leads, not what the jobs do.
QUIET = Settings(score_cron="", digest_cron="", digest_retry_cron="", secret_key="k")
CHECK_SECONDS = 0.1


class Timeline(logging.Handler):
    """Every 'is the leader' and 'stepped down' line, in order, with the scheduler thread that logged it."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("scheduler is the leader"):
            self.events.append((record.threadName or "", "lead"))
        elif message.startswith("scheduler stepped down"):
            self.events.append((record.threadName or "", "down"))

    def leader(self) -> str | None:
        """The scheduler leading now, by the log."""
        leading: set[str] = set()
        for thread, event in self.events:
            if event == "lead":
                assert not leading, f"{thread} began to lead while {leading} still led: {self.events}"
                leading.add(thread)
            else:
                leading.discard(thread)
        return next(iter(leading), None)

    def replaced(self, old: str, *, since: int) -> bool:
        """The old leader stepped down after event `since`, and a leader leads now."""
        leader = self.leader()
        return leader is not None and (old, "down") in self.events[since:]


@pytest.fixture
def timeline() -> Iterator[Timeline]:
    handler = Timeline()
    logger = logging.getLogger("papertide.worker.scheduler")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _start(name: str) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_as_leader,
        args=(QUIET,),
        kwargs={"stop": stop, "retry_seconds": CHECK_SECONDS / 2, "check_seconds": CHECK_SECONDS},
        name=name,
        daemon=True,
    )
    thread.start()
    return thread, stop


def _cut_the_leaders_connection(url: str) -> int:
    """What a database restart does to the leader: its session, and so its lock, is gone."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid::bigint = %s AND granted",
            (LEADER_LOCK_KEY,),
        ).fetchone()
        assert row is not None, "someone holds the leader lock"
        conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        return int(row[0])


def test_a_leader_that_loses_its_lock_steps_down_and_two_never_lead(
    database: str, timeline: Timeline
) -> None:
    rng = random.Random(9)
    schedulers = {"a": _start("scheduler-a"), "b": _start("scheduler-b")}
    try:
        for _ in range(4):
            before = wait_until(timeline.leader, timeout=30, what="a leader")
            seen = len(timeline.events)
            threading.Event().wait(rng.uniform(0, 3 * CHECK_SECONDS))  # seeded: anywhere in a check
            _cut_the_leaders_connection(database)
            wait_until(
                functools.partial(timeline.replaced, before, since=seen),
                timeout=30,
                what="the old leader to step down and a leader again",
            )

        leader = wait_until(timeline.leader, timeout=30, what="a leader")
        thread, stop = schedulers[leader[-1]]
        stop.set()
        thread.join(timeout=30)
        other = "scheduler-b" if leader == "scheduler-a" else "scheduler-a"
        assert wait_until(timeline.leader, timeout=30, what="the other to take over") == other
    finally:
        for thread, stop in schedulers.values():
            stop.set()
            thread.join(timeout=30)

    timeline.leader()  # the whole run: never two leaders at once
    assert not any(thread.is_alive() for thread, _ in schedulers.values())
    assert timeline.events[-1][1] == "down", "the last leader shut its scheduler down on stop"
