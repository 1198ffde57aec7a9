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
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from papertide import db
from papertide.digests.mailer import SmtpMailer
from papertide.models import DeliveryStatus, DigestDelivery, DigestItem, JobRun, JobStatus
from papertide.worker import jobs
from tests.faults.processes import cli_env, start_cli
from tests.helpers import Inbox, digest_ready, free_port, smtp_server

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
    process = start_cli(["digest", "send", "--date", day.isoformat()], env, log)
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

    processes = [start_cli(["digest", "send", "--date", DAY.isoformat()], env, log) for _ in range(2)]
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
