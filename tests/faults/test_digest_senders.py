"""Several sender processes for one digest run (DIGEST_SENDERS, worker/senders.py): they share the
due digests through the ledger, each reader gets one digest, the run's result counts them all; a
sender that dies costs what any dead sender costs. Real database, real SMTP, real processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide import db
from papertide.config import BaseUrlError
from papertide.models import DeliveryStatus, JobRun, JobStatus
from papertide.worker import jobs
from papertide.worker import senders as senders_module
from tests.faults.processes import cli_env, start_cli
from tests.faults.test_digest_faults import (
    SENDER,
    Holding,
    assert_nothing_lost_and_only_same_message_resends,
    end_every_sender_session,
    ledger,
    smtp_mailer,
)
from tests.helpers import Inbox, digest_ready, smtp_server, wait_until

DAY = date(2026, 11, 26)


def digest_runs(session: Session) -> list[JobRun]:
    session.expire_all()
    return list(session.scalars(select(JobRun).where(JobRun.job == "digest").order_by(JobRun.id)))


class SlowInbox(Inbox):
    """Takes each message after a pause, as a mail server across a network does: a lone sender
    spends the run waiting, and the others have time to start and take their share."""

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        await asyncio.sleep(0.03)
        return await super().handle_DATA(server, session, envelope)


def test_three_senders_share_a_run_and_each_reader_gets_one_digest(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(senders_module, "DIGESTS_PER_SENDER", 40)  # 3 senders for 300 readers
    emails = [f"r{i}@example.org" for i in range(300)]
    digest_ready(emails)
    inbox = SlowInbox()
    with smtp_server(inbox) as port:
        result = jobs.send_digests(digest_date=DAY, mailer=smtp_mailer(port), encoder=None, senders=3)

    assert Counter(str(m["To"]) for m in inbox.messages) == dict.fromkeys(emails, 1)
    assert result.sent == 300, "the run's result counts the other senders' digests too"
    assert {r.status for r in ledger(session)} == {DeliveryStatus.SENT}
    runs = digest_runs(session)
    assert len(runs) == 3, "each sender process records its own run"
    assert {r.status for r in runs} == {JobStatus.OK}, "and each sent some of the digests"
    assert sorted(r.params.get("sender", 1) for r in runs) == [1, 2, 3]
    assert len({r.pid for r in runs}) == 3, "three processes"
    assert sum(r.counts["sent"] for r in runs) == 300, "no digest recorded by two senders"


def test_a_run_with_few_due_digests_starts_no_other_sender(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_DIGEST_SENDERS", "4")
    db.reset()  # settings read again (the database fixture resets them after the test)
    digest_ready([f"r{i}@example.org" for i in range(5)])
    inbox = Inbox()
    with smtp_server(inbox) as port:
        assert jobs.send_digests(digest_date=DAY, mailer=smtp_mailer(port), encoder=None).sent == 5
    assert len(digest_runs(session)) == 1
    assert senders_module.extra_senders(4, due=5) == 0
    assert senders_module.extra_senders(4, due=250) == 1
    assert senders_module.extra_senders(4, due=10_000) == 3


class KillingASender(Inbox):
    """Kills one of the other sender processes when the `nth` message arrives."""

    def __init__(self, nth: int) -> None:
        super().__init__()
        self.nth, self.killed = nth, 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        others = [
            p for p in multiprocessing.active_children() if p.name.startswith("papertide-digest-sender")
        ]
        if len(self.messages) >= self.nth and not self.killed and others:
            assert others[0].pid is not None
            os.kill(others[0].pid, signal.SIGKILL)
            self.killed = 1
        return reply


def test_a_sender_killed_mid_run_loses_nothing_and_the_others_finish(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(senders_module, "DIGESTS_PER_SENDER", 40)
    emails = [f"r{i}@example.org" for i in range(200)]
    digest_ready(emails)
    inbox = KillingASender(nth=120)
    with smtp_server(inbox) as port:
        first = jobs.send_digests(digest_date=DAY, mailer=smtp_mailer(port), encoder=None, senders=3)
        later = jobs.retry_digests(mailer=smtp_mailer(port))  # what the dead one left in hand-off

    assert inbox.killed == 1, "a sender was killed during the run"
    assert first.stopped is not None
    assert "ended with exit code -9" in first.stopped, "a run whose sender died stopped early"
    # (What the dead sender sent is in the ledger, not in the run's result: its count died with it.)
    assert first.sent + (later.sent if later else 0) <= 200
    assert_nothing_lost_and_only_same_message_resends(inbox, session, kills=1)
    assert {str(m["To"]) for m in inbox.messages} == set(emails)


def test_senders_started_early_end_when_the_run_fails_before_it_sends(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`digest send --senders 3` starts the others before it prepares; a run that fails first (here
    production links that would lead to 127.0.0.1) tells them to stop: nothing sent, no process left
    waiting."""
    digest_ready([f"r{i}@example.org" for i in range(300)])
    monkeypatch.setenv("PAPERTIDE_BASE_URL", "http://127.0.0.1:8000")  # the tests set a database URL
    db.reset()
    with pytest.raises(BaseUrlError, match="PAPERTIDE_BASE_URL"):
        jobs.send_digests(digest_date=DAY, encoder=None, senders=3)

    assert not [p for p in multiprocessing.active_children() if p.name.startswith("papertide-digest-sender")]
    [run] = digest_runs(session)
    assert run.status == JobStatus.FAILED
    assert "PAPERTIDE_BASE_URL" in (run.error or "")
    assert {r.status for r in ledger(session)} <= {DeliveryStatus.PENDING}


def test_an_interrupted_run_ends_its_other_senders_too(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted while it rescores (SIGINT to it alone, SystemExit), before it has told the other
    senders anything: they end with it, nothing waits for a word that never comes."""
    digest_ready([f"r{i}@example.org" for i in range(300)])

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "score", interrupted)
    with pytest.raises(KeyboardInterrupt), smtp_server(Inbox()) as port:
        jobs.send_digests(digest_date=DAY, mailer=smtp_mailer(port), encoder=None, senders=3)
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("papertide-digest-sender")]


def report_environment(orders: senders_module.Orders, number: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """A stand-in sender: says which database its settings name (in the field for a reason)."""
    from papertide.config import get_settings

    if orders.wait():
        results.put(senders_module.Outcome({}, stopped=get_settings().database_url))


def test_a_sender_started_for_a_later_run_reads_that_runs_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork server outlives a run (the scheduler sends every day), started with the first run's
    environment; each sender must still read the settings of the run it is started for."""
    seen = []
    for database in ("postgresql+psycopg://u@/first", "postgresql+psycopg://u@/second"):
        monkeypatch.setenv("PAPERTIDE_DATABASE_URL", database)
        senders = senders_module.Senders()
        senders.start(1, report_environment, args=())
        senders.release(1)
        [outcome] = senders.finish()
        seen.append(outcome.stopped)

    assert seen == ["postgresql+psycopg://u@/first", "postgresql+psycopg://u@/second"]


def test_where_there_is_no_fork_server_senders_are_spawned_and_read_their_runs_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    monkeypatch.setenv("PAPERTIDE_DATABASE_URL", "postgresql+psycopg://u@/spawned")
    assert senders_module._context().get_start_method() == "spawn"
    senders = senders_module.Senders()
    senders.start(1, report_environment, args=())
    senders.release(1)
    [outcome] = senders.finish()

    assert outcome.stopped == "postgresql+psycopg://u@/spawned"


def test_a_sender_that_cannot_start_is_logged_and_the_run_goes_on_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    senders = senders_module.Senders()
    senders.start(2, report_environment, args=(lambda: None,))  # a lambda cannot go to another process
    senders.release(2)

    assert senders.finish() == []
    assert "could not start digest sender 2; the run goes on with 1" in caplog.text


class InterruptingTheRun(SlowInbox):
    """Sends SIGINT when the `nth` message arrives, while every sender has a batch in hand-off: to
    the run's own process (`kill -INT`, or `docker stop` through the command's handler), or to the
    other senders first as well (Ctrl-C in a terminal reaches every process of its group)."""

    def __init__(self, nth: int, *, whole_group: bool) -> None:
        super().__init__()
        self.nth, self.whole_group = nth, whole_group

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == self.nth:
            if self.whole_group:
                for sender in multiprocessing.active_children():
                    if sender.name.startswith("papertide-digest-sender") and sender.pid is not None:
                        os.kill(sender.pid, signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return reply


@pytest.mark.parametrize("whole_group", [False, True], ids=["the-run", "every-process"])
def test_an_interrupted_run_has_each_of_its_senders_put_its_untried_batch_back(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch, whole_group: bool
) -> None:
    """The run's process ends the others with SIGTERM. Each puts back what it has not tried, as the
    run's own process does, and a second signal (Ctrl-C reached it already) does not cut that
    short: at most the one message each was handing over is left `sending` (the unknown case), not
    a whole batch apiece, which the next run would resend as mail the server might have and, past
    the retry window, fail as such."""
    monkeypatch.setattr(senders_module, "DIGESTS_PER_SENDER", 40)
    digest_ready([f"r{i}@example.org" for i in range(300)])
    inbox = InterruptingTheRun(nth=60, whole_group=whole_group)
    with smtp_server(inbox) as port, pytest.raises(KeyboardInterrupt):
        jobs.send_digests(digest_date=DAY, mailer=smtp_mailer(port), encoder=None, senders=3)

    assert not [p for p in multiprocessing.active_children() if p.name.startswith("papertide-digest-sender")]
    statuses = Counter(r.status for r in ledger(session))
    assert statuses[DeliveryStatus.SENDING] <= 3, statuses
    assert statuses[DeliveryStatus.PENDING] > 0, "the untried rest went back"
    assert statuses[DeliveryStatus.SENT] + statuses[DeliveryStatus.SENDING] >= 60, "as the server took them"


class HoldingFirstSlowly(Holding):
    """Holds the first message (Holding) and takes each of the others after a pause, so every
    sender still has digests to send when the database goes away."""

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        await asyncio.sleep(0.03)
        return await super().handle_DATA(server, session, envelope)


def test_three_senders_that_lose_the_database_say_so_in_a_line_each_and_a_rerun_sends_the_rest(
    database: str, session: Session, tmp_path: Path
) -> None:
    """A database restart under `digest send --senders 3`: the operator reads lines, not a
    traceback from each sender process."""
    digest_ready([f"r{i}@example.org" for i in range(300)])
    inbox = HoldingFirstSlowly()
    log = tmp_path / "send.log"
    args = ["digest", "send", "--date", DAY.isoformat(), "--force", "--senders", "3"]
    with smtp_server(inbox) as port:
        env = {
            **cli_env(database, tmp_path / "data", smtp_url=f"smtp://127.0.0.1:{port}"),
            "PGAPPNAME": SENDER,
        }
        process = start_cli(args, env, log)
        assert inbox.arrived.wait(120), log.read_text()[-3000:]
        wait_until(lambda: len(inbox.messages) >= 20, timeout=60, what="the other senders sending")
        end_every_sender_session()
        inbox.release.set()
        code = process.wait(timeout=120)
        first = log.read_text()
        rerun = start_cli(args, env, tmp_path / "rerun.log").wait(120)

    assert code == 1, first[-3000:]
    assert "Traceback" not in first, first[-3000:]
    assert "error: lost the database connection during the digest run" in first
    assert rerun == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    assert {r.status for r in ledger(session)} == {DeliveryStatus.SENT}


def stuck_putting_back(orders: senders_module.Orders, number: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """A stand-in sender whose put-back never ends (its database out of reach) once interrupted."""
    if orders.wait():
        results.put(senders_module.Outcome({}, stopped="sending"))
        try:
            time.sleep(120)
        except KeyboardInterrupt:
            time.sleep(120)  # the put-back; the second SIGTERM is ignored meanwhile


def test_an_interrupted_run_kills_a_sender_that_does_not_end_within_its_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An interrupted run always ends: a sender still putting back after STOP_GRACE_SECONDS is
    killed (what it had claimed waits as a dead sender's hand-off)."""
    monkeypatch.setattr(senders_module, "STOP_GRACE_SECONDS", 1)
    senders = senders_module.Senders()
    senders.start(1, stuck_putting_back, args=())
    senders.release(1)
    assert senders.results.get(timeout=60).stopped == "sending"
    [process] = senders.processes

    senders.stop()

    assert process.exitcode == -signal.SIGKILL
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("papertide-digest-sender")]
