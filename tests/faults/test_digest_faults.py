"""`papertide digest send` under faults, against a real SMTP server (aiosmtpd) in this process:
killed with SIGKILL at seeded points of the SMTP conversation (the accepted-but-not-recorded window
included), a server that refuses connections or never answers, and two senders at once. After one
clean rerun nothing is lost, and the only duplicate is the documented one: a delivery left in
`sending` goes again as the very same message (same Message-ID, same papers)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from papertide import db
from papertide.config import get_settings
from papertide.digests import mailer as mailer_module
from papertide.digests import repository
from papertide.digests import service as digest_service
from papertide.digests.candidates import DigestRun
from papertide.digests.mailer import MailError, MailFailure, SmtpMailer
from papertide.digests.repository import HAND_OFF_LOCK
from papertide.digests.service import DigestRunResult
from papertide.models import (
    DeliveryStatus,
    DigestDelivery,
    DigestItem,
    JobRun,
    JobStatus,
    MailSuppression,
    Subscriber,
    SubscriberStatus,
)
from papertide.web.app import create_app
from papertide.worker import jobs
from tests.faults.processes import cli_env, start_cli
from tests.helpers import Inbox, digest_ready, free_port, smtp_server, wait_until

DAY = date(2026, 11, 24)
EVENTS = ("EHLO", "MAIL", "RCPT", "DATA", "QUIT")
SENDER = "papertide-digest-send"


@dataclass(frozen=True)
class KillPoint:
    """Kill the sender at the `index`-th `event` of a run: before the server answers it, or
    `delay` seconds after (which lands in the sender's next database step, or at the latest at
    its next SMTP command, so a killed run never finishes first)."""

    event: str
    index: int
    before: bool
    delay: float = 0.0

    @classmethod
    def seeded(cls, rng: random.Random, messages: int) -> KillPoint:
        """Any event of any message but the run's last (each run sends at least `messages`). A run
        says EHLO and QUIT once (one connection for all its messages), and its QUIT is its last
        word, so a kill there comes before the reply (after it, the run might end first)."""
        event = rng.choice(EVENTS)
        index = 0 if event in ("EHLO", "QUIT") else rng.randrange(messages - 1)
        before = event == "QUIT" or rng.random() < 0.5
        delay = 0.0 if before else rng.uniform(0, 0.03)
        return cls(event, index, before, delay)


class Killer(Inbox):
    """Keeps every message it receives; kills the sender process at its KillPoint."""

    def __init__(self) -> None:
        super().__init__()
        self.arm(None)

    def arm(self, point: KillPoint | None) -> None:
        self.point: KillPoint | None = point
        self.victim: int | None = None
        self.seen: Counter[str] = Counter()
        self.pending: asyncio.TimerHandle | None = None

    def _kill(self) -> None:
        if self.victim is not None:
            os.kill(self.victim, signal.SIGKILL)
            self.victim = None

    async def _event(self, name: str) -> None:
        if self.pending is not None:  # a delayed kill not yet fired: now, before this reply
            self.pending.cancel()
            self.pending = None
            self._kill()
        point, index = self.point, self.seen[name]
        self.seen[name] += 1
        if point is None or self.victim is None or (point.event, point.index) != (name, index):
            return
        self.point = None
        if point.before:
            self._kill()
            await asyncio.sleep(0.2)  # the reply goes nowhere: the sender is dead
        else:
            self.pending = asyncio.get_running_loop().call_later(point.delay, self._kill)

    async def handle_EHLO(
        self, server: object, session: object, envelope: object, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # type: ignore[attr-defined]
        await self._event("EHLO")
        return responses

    async def handle_MAIL(
        self, server: object, session: object, envelope: object, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address  # type: ignore[attr-defined]
        await self._event("MAIL")
        return "250 OK"

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: list[str]
    ) -> str:
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        await self._event("RCPT")
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        reply = await super().handle_DATA(server, session, envelope)  # received, whatever follows
        await self._event("DATA")
        return reply

    async def handle_QUIT(self, server: object, session: object, envelope: object) -> str:
        await self._event("QUIT")
        return "221 Bye"


@pytest.fixture
def sender(database: str, tmp_path: Path) -> Iterator[tuple[Killer, dict[str, str]]]:
    """The killing SMTP server, and the environment of a `papertide` process that mails through it."""
    inbox = Killer()
    with smtp_server(inbox) as port:
        env = cli_env(database, tmp_path / "data", smtp_url=f"smtp://127.0.0.1:{port}")
        yield inbox, {**env, "PGAPPNAME": SENDER}  # libpq names the sender's sessions


def wait_for_senders_to_end(timeout: float = 30.0) -> None:
    """Until the sender's database sessions are gone: a killed one's hand-off lock goes with them."""
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
    with db.get_engine().connect() as connection:
        while connection.execute(query, {"name": SENDER}).scalar_one():
            assert datetime.now(UTC) < deadline, "a killed sender's database sessions never ended"
            connection.rollback()
            threading.Event().wait(0.05)


def send(inbox: Killer, env: dict[str, str], day: date, log: Path, point: KillPoint | None = None) -> int:
    """`papertide digest send --date DAY` to its end (or its death); returns the exit code."""
    inbox.arm(point)
    process = start_cli(["digest", "send", "--date", day.isoformat(), "--force"], env, log)
    inbox.victim = process.pid
    code = process.wait(timeout=120)
    inbox.arm(None)
    wait_for_senders_to_end()
    return code


def ledger(session: Session) -> list[DigestDelivery]:
    session.expire_all()
    return list(session.scalars(select(DigestDelivery).order_by(DigestDelivery.id)))


def content(message: EmailMessage) -> tuple[str, str, str]:
    body = message.get_body(preferencelist=("plain",))
    return str(message["Message-ID"]), str(message["To"]), body.get_content() if body else ""


def assert_nothing_lost_and_only_same_message_resends(inbox: Inbox, session: Session, kills: int) -> None:
    rows = ledger(session)
    assert {r.status for r in rows} == {DeliveryStatus.SENT}, [(r.id, r.status, r.error) for r in rows]
    received = Counter(str(m["Message-ID"]) for m in inbox.messages)
    assert set(received) == {r.message_id for r in rows}, "every digest arrived, and no other digest"
    copies: dict[str, tuple[str, str, str]] = {}
    for message in inbox.messages:
        assert copies.setdefault(str(message["Message-ID"]), content(message)) == content(message), (
            "a resend is the same message"
        )
    assert sum(received.values()) - len(received) <= kills, "at most the one in hand-off per kill"
    papers = session.execute(
        select(DigestDelivery.subscriber_id, DigestItem.paper_id).join(
            DigestDelivery, DigestDelivery.id == DigestItem.delivery_id
        )
    ).all()
    assert len(papers) == len(set(papers)), "no paper went to a subscriber in two digests"


def test_a_sender_killed_after_the_server_accepted_resends_the_same_message(
    sender: tuple[Killer, dict[str, str]], session: Session, tmp_path: Path
) -> None:
    """The issue's reproduction: the server has the message, the sender dies before its ledger commit
    (killed before the server's reply to the end of DATA reaches it)."""
    inbox, env = sender
    digest_ready(["a@example.org", "b@example.org", "c@example.org"])

    killed = send(inbox, env, DAY, tmp_path / "send.log", KillPoint("DATA", 0, before=True))
    assert killed == -signal.SIGKILL
    # Composed and committed together; only the first went to the server, which has it.
    assert [r.status for r in ledger(session)] == ["sending", "sending", "sending"]
    assert [m["To"] for m in inbox.messages] == ["a@example.org"]
    rerun = send(inbox, env, DAY, tmp_path / "send.log")

    assert rerun == 0, (tmp_path / "send.log").read_text()[-3000:]
    first, resent = inbox.to("a@example.org")
    assert resent["Message-ID"] == first["Message-ID"] == ledger(session)[0].message_id
    assert content(resent) == content(first), "the same papers, the same links"
    assert first.as_bytes() == resent.as_bytes()
    assert [len(inbox.to(a)) for a in ("b@example.org", "c@example.org")] == [1, 1]
    assert_nothing_lost_and_only_same_message_resends(inbox, session, kills=1)


@pytest.mark.parametrize("seed", range(5))
def test_kill_9_at_seeded_points_loses_nothing_and_doubles_only_the_same_message(
    sender: tuple[Killer, dict[str, str]], session: Session, tmp_path: Path, seed: int
) -> None:
    """Four killed runs (four digest dates; each run also resumes what the one before left), then
    one clean rerun: 5 seeds x 4 = 20 trials."""
    inbox, env = sender
    subscribers = [f"r{i}@example.org" for i in range(5)]
    digest_ready(subscribers, papers=20)
    rng = random.Random(seed)
    points = [KillPoint.seeded(rng, messages=len(subscribers)) for _ in range(4)]
    log = tmp_path / "send.log"

    codes = [send(inbox, env, DAY + timedelta(days=i), log, point) for i, point in enumerate(points)]
    rerun = send(inbox, env, DAY + timedelta(days=3), log)

    assert codes == [-signal.SIGKILL] * 4, f"{points}: {log.read_text()[-3000:]}"
    assert rerun == 0, log.read_text()[-3000:]
    assert len(ledger(session)) == 20
    assert_nothing_lost_and_only_same_message_resends(inbox, session, kills=4)


def test_two_sender_processes_at_once_send_each_digest_once(
    sender: tuple[Killer, dict[str, str]], session: Session, tmp_path: Path
) -> None:
    inbox, env = sender
    subscribers = [f"r{i}@example.org" for i in range(8)]
    digest_ready(subscribers)
    log = tmp_path / "send.log"

    processes = [
        start_cli(["digest", "send", "--date", DAY.isoformat(), "--force"], env, log) for _ in range(2)
    ]
    codes = [process.wait(timeout=120) for process in processes]

    assert codes == [0, 0], log.read_text()[-3000:]
    assert sorted(str(m["To"]) for m in inbox.messages) == subscribers
    assert_nothing_lost_and_only_same_message_resends(inbox, session, kills=0)


def test_a_server_refusing_connections_trips_the_breaker_and_fails_nothing_for_good(
    database: str, session: Session
) -> None:
    digest_ready([f"r{i}@example.org" for i in range(5)])
    now = datetime.now(UTC)
    down = jobs.send_digests(digest_date=DAY, mailer=smtp_mailer(free_port()), encoder=None, now=now)

    statuses = Counter(r.status for r in ledger(session))
    run = session.scalars(select(JobRun).where(JobRun.job == "digest")).one()
    assert (down.sent, down.deferred, down.failed) == (0, 3, 0), "stopped after 3, not all 5 tried"
    assert statuses == {DeliveryStatus.DEFERRED: 3, DeliveryStatus.PENDING: 2}
    assert run.status == JobStatus.FAILED
    assert "failed 3 times in a row" in (run.error or "")
    assert "Connection refused" in (run.error or "")
    # The public /status page shows the run's error, which names the last reader tried: masked.
    assert "refused mail to r2@example.org" in (run.error or "")
    page = TestClient(create_app(encoder_provider=lambda: None)).get("/status").text
    assert "refused mail to r***@example.org" in page
    assert not [f"r{i}@example.org" for i in range(5) if f"r{i}@example.org" in page]

    inbox = Inbox()
    with smtp_server(inbox) as port:
        back = jobs.retry_digests(mailer=smtp_mailer(port), now=now + timedelta(minutes=5))
    assert back is not None
    assert back.sent == 5
    assert len(inbox.messages) == 5


def test_a_server_that_never_answers_costs_the_breaker_limit_not_one_timeout_per_recipient(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest_ready([f"r{i}@example.org" for i in range(6)])
    with silent_server() as (port, connections):
        monkeypatch.setenv("PAPERTIDE_SMTP_URL", f"smtp://127.0.0.1:{port}")
        monkeypatch.setenv("PAPERTIDE_SMTP_TIMEOUT_SECONDS", "0.3")
        monkeypatch.setenv("PAPERTIDE_SMTP_BREAKER_FAILURES", "2")
        db.reset()
        result = jobs.send_digests(digest_date=DAY, encoder=None)

    assert len(connections) == 2, "two silent connections, then the run stopped"
    assert (result.sent, result.deferred, result.failed) == (0, 2, 0)
    assert result.stopped is not None
    assert "timed out" in result.stopped
    assert Counter(r.status for r in ledger(session)) == {
        DeliveryStatus.DEFERRED: 2,
        DeliveryStatus.PENDING: 4,
    }


def test_readers_with_nothing_new_between_server_failures_do_not_reset_the_breaker(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty digest asks nothing of the server, so it says nothing about whether the server is up."""
    digest_ready([])
    names = ["r0", "r1", "e2", "r3", "e4", "r5", "r6", "e7", "r8"]  # e*: nothing new for them
    with db.session_factory()() as adding:
        for name in names:
            trending = 0 if name.startswith("e") else 3
            adding.add(
                Subscriber(
                    email=f"{name}@example.org",
                    status=SubscriberStatus.CONFIRMED,
                    papers_per_digest=3,
                    trending_papers=trending,
                    interest_mix=0.5,
                )
            )
        adding.commit()
    with silent_server() as (port, connections):
        monkeypatch.setenv("PAPERTIDE_SMTP_URL", f"smtp://127.0.0.1:{port}")
        monkeypatch.setenv("PAPERTIDE_SMTP_TIMEOUT_SECONDS", "0.3")
        db.reset()
        result = jobs.send_digests(digest_date=DAY, encoder=None)

    assert len(connections) == 3, "three silent connections, then the run stopped"
    assert result.stopped is not None
    assert "failed 3 times in a row" in result.stopped
    assert (result.deferred, result.empty) == (3, 1)


def test_a_server_that_answers_a_byte_at_a_time_costs_the_breaker_limit_not_a_stalled_run(
    database: str, session: Session
) -> None:
    """A tarpit (OpenBSD spamd's "stutter"): a multi-line greeting that never ends, trickled slower
    than a byte per timeout. No single read times out; the reply as a whole must."""
    digest_ready([f"r{i}@example.org" for i in range(4)])
    with stuttering_server(every=0.05) as port:
        out: list[DigestRunResult] = []
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=0.3)
        run = threading.Thread(
            target=lambda: out.append(jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None)),
            daemon=True,
        )
        run.start()
        run.join(timeout=60)  # a bound on the wait, not on the run: it was stuck for ever
        assert not run.is_alive(), "the run is still reading the greeting"

    [result] = out
    assert result.stopped is not None
    assert "failed 3 times in a row" in result.stopped
    assert "timed out" in result.stopped
    assert Counter(r.status for r in ledger(session)) == {
        DeliveryStatus.DEFERRED: 3,
        DeliveryStatus.PENDING: 1,
    }


@contextmanager
def stuttering_server(every: float) -> Iterator[int]:
    """Greets every connection with "220-please wait" lines, one byte per `every` seconds, for ever."""
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.1)

        def talk(connection: socket.socket) -> None:
            with connection:
                while not stop.is_set():
                    for byte in b"220-please wait\r\n":
                        try:
                            connection.sendall(bytes([byte]))
                        except OSError:
                            return  # the client gave up
                        if stop.wait(every):
                            return

        def serve() -> None:
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except OSError:
                    continue
                threading.Thread(target=talk, args=(connection,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        try:
            yield int(listener.getsockname()[1])
        finally:
            stop.set()


def smtp_mailer(port: int) -> SmtpMailer:
    return SmtpMailer(f"smtp://127.0.0.1:{port}")


@contextmanager
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """Accepts TCP connections and never says a word (a hung mail server); yields the port and
    the connections it accepted."""
    accepted: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def serve() -> None:
            while True:
                try:
                    accepted.append(listener.accept()[0])  # held open, never answered
                except OSError:
                    return

        threading.Thread(target=serve, daemon=True).start()
        try:
            yield int(listener.getsockname()[1]), accepted
        finally:
            listener.shutdown(socket.SHUT_RDWR)
            for connection in accepted:
                connection.close()


class Holding(Inbox):
    """Keeps the first message at the end of DATA, unanswered, until `release` is set (the window
    in which the sender has a message with the mail server); takes the others at once."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if not self.arrived.is_set():
            self.arrived.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return await super().handle_DATA(server, session, envelope)


def end_every_sender_session() -> None:
    """What a database restart does to a `digest send` started with PGAPPNAME=SENDER: every session
    of it (each sender process's too) ends."""
    with db.get_engine().connect() as connection:
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": SENDER},
        )
        connection.commit()


def end_the_hand_off_lock_session() -> None:
    """What idle_session_timeout, a proxy's idle cut or an operator's "kill idle sessions" does to
    the one connection of a run that sits idle while the mail server has a message."""
    query = text(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = :kind"
        " AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    with db.get_engine().connect() as connection:
        assert connection.execute(query, {"kind": HAND_OFF_LOCK}).scalars().all(), (
            "a run holds hand-off locks"
        )
        connection.commit()


@contextmanager
def sending_in_background(port: int) -> Iterator[list[DigestRunResult]]:
    """`send_digests` for DAY in a thread; yields the list its result lands in, and waits for it."""
    out: list[DigestRunResult] = []
    thread = threading.Thread(
        target=lambda: out.append(jobs.send_digests(digest_date=DAY, mailer=smtp_mailer(port), encoder=None)),
        daemon=True,
    )
    thread.start()
    try:
        yield out
    finally:
        thread.join(timeout=60)
        assert not thread.is_alive(), "the first sender never finished"


def test_a_sender_that_lost_its_hand_off_locks_stops_before_its_next_message(
    database: str, session: Session
) -> None:
    """A second sender (the retry cron) takes the lost run's deliveries as a dead sender's: the
    first must not send them too. Only the message with the server when the locks went may arrive
    twice, as the same message (the documented unknown case)."""
    emails = [f"r{i}@example.org" for i in range(5)]
    digest_ready(emails)
    inbox = Holding()
    with smtp_server(inbox) as port, sending_in_background(port) as first:
        assert inbox.arrived.wait(60)
        end_the_hand_off_lock_session()
        second = jobs.retry_digests(mailer=smtp_mailer(port))
        inbox.release.set()

    copies = Counter(str(m["To"]) for m in inbox.messages)
    assert copies == {"r0@example.org": 2, **dict.fromkeys(emails[1:], 1)}
    assert len({str(m["Message-ID"]) for m in inbox.to("r0@example.org")}) == 1, "the same message twice"
    assert second is not None
    assert second.sent == 5
    assert first[0].sent == 1
    assert first[0].stopped is not None
    assert "lost the database session that held this run's hand-off locks" in first[0].stopped
    assert {r.status for r in ledger(session)} == {DeliveryStatus.SENT}
    runs = session.scalars(select(JobRun).where(JobRun.job == "digest").order_by(JobRun.id)).all()
    assert [r.status for r in runs] == [JobStatus.FAILED, JobStatus.OK]
    assert "hand-off locks" in (runs[0].error or "")


def test_a_run_that_lost_its_locks_alone_leaves_the_rest_for_the_next_run(
    database: str, session: Session
) -> None:
    emails = [f"r{i}@example.org" for i in range(4)]
    digest_ready(emails)
    inbox = Holding()
    with smtp_server(inbox) as port:
        with sending_in_background(port) as first:
            assert inbox.arrived.wait(60)
            end_the_hand_off_lock_session()
            inbox.release.set()
        # Put back as they were, not left `sending` as if a sender had died with them.
        assert [r.status for r in ledger(session)] == ["sent", "pending", "pending", "pending"]
        assert [r.attempts for r in ledger(session)] == [1, 0, 0, 0]
        later = jobs.retry_digests(mailer=smtp_mailer(port))

    assert first[0].sent == 1
    assert first[0].stopped is not None
    assert later is not None
    assert later.sent == 3
    assert sorted(str(m["To"]) for m in inbox.messages) == emails


@pytest.mark.parametrize(
    "late_failure",
    [
        MailError("timed out waiting for the server's reply", kind=MailFailure.SERVER),
        MailError(
            "550 5.1.1 no such user", kind=MailFailure.RECIPIENT, code=550, reply="550 5.1.1 no such user"
        ),
    ],
    ids=["timeout", "no-such-user"],
)
def test_a_late_failure_of_a_sender_that_lost_its_locks_leaves_the_resend_that_went_out(
    database: str, session: Session, late_failure: MailError
) -> None:
    """Sender A's lock session ends while its server still has the message; sender B (the retry
    pass) takes the delivery as a dead sender's and hands it over again; A's server then answers
    with a failure before B's 250 is recorded. The reader got B's copy: the ledger must say `sent`,
    not `deferred` (a third copy later) nor `failed` with the address suppressed."""
    digest_ready(["a@example.org"])
    jobs.score()  # what send_digests does first: a digest of nothing would be `empty`, never sent
    now = datetime.now(UTC)
    with db.unit_of_work() as work:
        digest_service.prepare_deliveries(work, now=now, digest_date=DAY)
    settings, run = get_settings(), DigestRun(encoder=lambda: None, model=None)
    engine = db.get_engine()
    with engine.connect() as a_locks, engine.connect() as b_locks:
        a_locks.execution_options(isolation_level="AUTOCOMMIT")
        b_locks.execution_options(isolation_level="AUTOCOMMIT")
        with db.unit_of_work() as work:
            (a,) = digest_service.start_batch(
                work, locks=a_locks, now=now, after=0, size=10, settings=settings, run=run
            ).hand_offs
        end_the_hand_off_lock_session()
        wait_until(lambda: not lock_holders(), timeout=30, what="A's lock session to end")
        with db.unit_of_work() as work:
            batch_b = digest_service.start_batch(
                work, locks=b_locks, now=now, after=0, size=10, settings=settings, run=run, in_hand_off=True
            )
        (b,) = batch_b.hand_offs
        assert (b.delivery_id, b.resend) == (a.delivery_id, True)

        with db.unit_of_work() as work:
            digest_service.record_outcome(work, hand_off=a, error=late_failure, now=now, settings=settings)
        recorded = digest_service.record_sent_holding_locks(b_locks, hand_off=b, now=now)
        digest_service.release(b_locks, batch_b)

    assert recorded is not None
    assert recorded.status == DeliveryStatus.SENT
    (row,) = ledger(session)
    assert (row.status, row.next_attempt_at) == (DeliveryStatus.SENT, None)
    assert not session.scalars(select(MailSuppression)).all(), "the address B just delivered to works"


def lock_holders() -> list[int]:
    """The sessions holding hand-off locks in this test's database now (others run beside it)."""
    query = text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = :kind AND objsubid = 2 AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    with db.get_engine().connect() as connection:
        return list(connection.execute(query, {"kind": HAND_OFF_LOCK}).scalars())


def test_a_run_whose_lock_session_ends_after_its_last_message_still_succeeds(
    database: str, session: Session
) -> None:
    """The locks of a finished batch went with their session: nothing to unlock, nothing failed."""
    digest_ready(["a@example.org"])
    inbox = Holding()
    with smtp_server(inbox) as port, sending_in_background(port) as first:
        assert inbox.arrived.wait(60)
        end_the_hand_off_lock_session()
        inbox.release.set()

    assert first[0].sent == 1
    assert first[0].stopped is None
    run = session.scalars(select(JobRun).where(JobRun.job == "digest")).one()
    assert run.status == JobStatus.OK, run.error
    assert [r.status for r in ledger(session)] == [DeliveryStatus.SENT]


def test_an_idle_session_timeout_shorter_than_a_hand_off_ends_none_of_the_runs_sessions(
    database: str, session: Session
) -> None:
    """A database with idle_session_timeout (PostgreSQL 14+) below the time the mail server takes:
    the run's own connections are idle that long, and a run that lost them would stop each time."""
    emails = [f"r{i}@example.org" for i in range(3)]
    digest_ready(emails)
    name = db.get_engine().url.database
    with db.get_engine().connect() as connection:
        connection.execute(text(f"ALTER DATABASE \"{name}\" SET idle_session_timeout = '300ms'"))
        connection.commit()
    db.reset()
    with smtp_server(Slow(0.5)) as port:
        result = jobs.send_digests(digest_date=DAY, mailer=smtp_mailer(port), encoder=None)

    assert result.stopped is None
    assert (result.sent, result.deferred, result.failed) == (3, 0, 0)


class Slow(Inbox):
    """Takes `delay` seconds over each message."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def test_a_server_slow_to_answer_the_end_of_a_message_gets_it_once(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server has the whole message and answers its final dot after the client's reply timeout
    (a busy relay scanning it): RFC 5321 gives that reply 10 minutes. Giving up at the timeout made
    it `deferred`, and its retry a second copy in the reader's inbox."""
    monkeypatch.setattr(mailer_module, "END_OF_DATA_TIMEOUT", 30.0)
    digest_ready(["a@example.org"])
    inbox = Slow(1.5)
    with smtp_server(inbox) as port:
        result = jobs.send_digests(
            digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=0.5), encoder=None
        )
        jobs.retry_digests(mailer=smtp_mailer(port), now=datetime.now(UTC) + timedelta(hours=3))

    assert (result.sent, result.deferred) == (1, 0)
    assert len(inbox.messages) == 1
    assert [row.status for row in ledger(session)] == [DeliveryStatus.SENT]


def test_a_retry_pass_leaves_a_paused_readers_digest_that_a_live_sender_is_handing_over(
    database: str, session: Session
) -> None:
    """The reader pauses while the server has their digest, and the retry pass runs then: the
    server accepted it, so the ledger says `sent`, not `failed` (the sender holding its hand-off
    lock decides, as with any delivery in hand-off)."""
    digest_ready(["a@example.org"])
    inbox = Holding()
    with smtp_server(inbox) as port, sending_in_background(port) as first:
        assert inbox.arrived.wait(60)
        with db.session_factory()() as pausing:  # the manage page's Pause button
            pausing.execute(update(Subscriber).values(paused_at=datetime.now(UTC)))
            pausing.commit()
        jobs.retry_digests(mailer=smtp_mailer(port))
        inbox.release.set()

    assert len(inbox.messages) == 1
    assert first[0].sent == 1
    [row] = ledger(session)
    assert (row.status, row.error) == (DeliveryStatus.SENT, None)


def test_a_second_senders_first_pass_does_not_hold_up_the_first_senders_records(
    database: str, session: Session
) -> None:
    """Two senders at once: the second's first pass goes past the first's hand-offs without
    row-locking them, so the first records each `sent` as the server answers, not only once the
    second has composed and committed its own batch."""
    digest_ready(["a@example.org", "b@example.org"])
    inbox = Holding()
    with smtp_server(inbox) as port, sending_in_background(port) as first:
        assert inbox.arrived.wait(60)  # both digests are `sending`, a@'s is with the server
        with db.session_factory()() as second:  # its batch transaction, still open
            claimed = repository.claim_batch(
                second, now=datetime.now(UTC), after=0, limit=50, in_hand_off=False
            )
            inbox.release.set()
            assert _ends_within(first, seconds=20), "the first sender's records waited on the second's claim"
            second.rollback()

    assert claimed == []
    assert first[0].sent == 2
    assert {r.status for r in ledger(session)} == {DeliveryStatus.SENT}


def _ends_within(run: list[DigestRunResult], *, seconds: float) -> bool:
    """Whether the background run (sending_in_background) has its result within `seconds`."""
    deadline = time.monotonic() + seconds
    while not run and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(run)


def test_a_delivery_another_sender_sent_while_this_one_failed_to_compose_it_stays_sent(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Composing fails (the model, once); the batch's rollback lets the row's locks go, and a second
    sender (the retry cron) claims, sends and records it before the first puts it off. The first
    must not turn that `sent` into `deferred`, or the retry sends the reader a second copy."""
    digest_ready(["a@example.org"])
    inbox = Inbox()
    compose, put_off = digest_service._compose, jobs._put_off
    failures: list[int] = []
    second: list[DigestRunResult | None] = []

    def failing_once(*args: Any, **kwargs: Any) -> bool:
        if not failures:
            failures.append(1)
            raise RuntimeError("the model failed once")
        return bool(compose(*args, **kwargs))

    def second_sender_first(failed: digest_service.ComposeFailed, *, now: datetime | None) -> Any:
        second.append(jobs.retry_digests(mailer=smtp_mailer(port)))
        return put_off(failed, now=now)

    monkeypatch.setattr(digest_service, "_compose", failing_once)
    monkeypatch.setattr(jobs, "_put_off", second_sender_first)
    with smtp_server(inbox) as port:
        first = jobs.send_digests(digest_date=DAY, mailer=smtp_mailer(port), encoder=None)
        later = jobs.retry_digests(mailer=smtp_mailer(port), now=datetime.now(UTC) + timedelta(hours=2))

    assert Counter(str(m["To"]) for m in inbox.messages) == {"a@example.org": 1}
    assert [(r.status, r.attempts) for r in ledger(session)] == [(DeliveryStatus.SENT, 1)]
    assert (first.sent, first.deferred) == (0, 0), "the second sender sent it, not this run"
    assert second[0] is not None
    assert second[0].sent == 1
    assert later is None or later.sent == 0


class HoldingNth(Inbox):
    """Keeps the `nth` message (from 0) unanswered until `release`; takes the others at once."""

    def __init__(self, nth: int) -> None:
        super().__init__()
        self.nth, self.count = nth, 0
        self.arrived, self.release = threading.Event(), threading.Event()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.count += 1
        if self.count - 1 == self.nth:
            self.arrived.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return await super().handle_DATA(server, session, envelope)


def test_a_lock_session_lost_with_a_batchs_last_message_stops_the_run_before_the_next_batch(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session ends while the server has the last message of a batch: that one is recorded
    `sent` on the outcome connection, and the run stops with its reason before it claims again
    (not on a database error from the dead connection); the next run sends the rest."""
    monkeypatch.setattr(jobs, "DIGEST_BATCH", 2)
    emails = [f"r{i}@example.org" for i in range(4)]
    digest_ready(emails)
    inbox = HoldingNth(1)
    with smtp_server(inbox) as port, sending_in_background(port) as first:
        assert inbox.arrived.wait(60)
        end_the_hand_off_lock_session()
        inbox.release.set()
    with smtp_server(inbox) as port:
        later = jobs.retry_digests(mailer=smtp_mailer(port))

    assert first[0].sent == 2
    assert first[0].stopped is not None
    assert "lost the database session that held this run's hand-off locks" in first[0].stopped
    assert later is not None
    assert later.sent == 2
    assert Counter(str(m["To"]) for m in inbox.messages) == dict.fromkeys(emails, 1)
    assert {r.status for r in ledger(session)} == {DeliveryStatus.SENT}


def test_digest_send_when_the_database_restarts_mid_run_says_so_in_one_line_and_exits_1(
    database: str, session: Session, tmp_path: Path
) -> None:
    """Every session of the sender ends while the server has its first message (what a database
    restart does); the operator reads one line, not a traceback, and a rerun sends the rest."""
    digest_ready([f"r{i}@example.org" for i in range(3)])
    inbox = Holding()
    log = tmp_path / "send.log"
    with smtp_server(inbox) as port:
        env = {
            **cli_env(database, tmp_path / "data", smtp_url=f"smtp://127.0.0.1:{port}"),
            "PGAPPNAME": SENDER,
        }
        process = start_cli(["digest", "send", "--date", DAY.isoformat(), "--force"], env, log)
        assert inbox.arrived.wait(120), log.read_text()[-3000:]
        end_every_sender_session()
        inbox.release.set()
        code = process.wait(timeout=120)
        first = log.read_text()
        rerun = start_cli(
            ["digest", "send", "--date", DAY.isoformat(), "--force"], env, tmp_path / "rerun.log"
        ).wait(120)

    assert code == 1, first[-3000:]
    assert "Traceback" not in first
    assert "error: lost the database connection during the digest run" in first
    assert rerun == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    assert {r.status for r in ledger(session)} == {DeliveryStatus.SENT}


def test_digests_the_retry_window_closes_are_counted_as_failed_on_the_runs_record(
    database: str, session: Session
) -> None:
    """The scheduler (or the mail server) was down for more than a day: the day's digests can no
    longer go. That is a failed run on /status and in the command's exit code, not a quiet
    "nothing was due"."""
    digest_ready(["a@example.org", "b@example.org"])
    digest_service.prepare_deliveries(session, now=datetime.now(UTC), digest_date=DAY)
    session.commit()

    with smtp_server(Inbox()) as port:
        result = jobs.retry_digests(mailer=smtp_mailer(port), now=datetime.now(UTC) + timedelta(hours=25))

    assert result is not None
    assert (result.sent, result.failed) == (0, 2)
    assert [row.status for row in ledger(session)] == [DeliveryStatus.FAILED] * 2
    run = session.scalars(select(JobRun).where(JobRun.job == "digest").order_by(JobRun.id.desc())).first()
    assert run is not None
    assert run.counts["failed"] == 2


def test_a_digest_run_stopped_by_sigterm_puts_the_untried_rest_of_its_batch_back(
    database: str, session: Session, tmp_path: Path
) -> None:
    """`docker stop` while the server has the first message: that one is the unknown case; the two
    the run never handed over go back to `pending`, to go with the next run, not left as a dead
    sender's hand-off (failed, past the window, as mail the server "may have taken")."""
    digest_ready([f"r{i}@example.org" for i in range(3)])
    inbox = Holding()
    log = tmp_path / "send.log"
    with smtp_server(inbox) as port:
        env = cli_env(database, tmp_path / "data", smtp_url=f"smtp://127.0.0.1:{port}")
        process = start_cli(["digest", "send", "--date", DAY.isoformat(), "--force"], env, log)
        assert inbox.arrived.wait(120), log.read_text()[-3000:]
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        inbox.release.set()

    assert code != 0
    statuses = [row.status for row in ledger(session)]
    assert statuses[1:] == [DeliveryStatus.PENDING, DeliveryStatus.PENDING], log.read_text()[-3000:]
    assert statuses[0] in (DeliveryStatus.SENDING, DeliveryStatus.SENT)
