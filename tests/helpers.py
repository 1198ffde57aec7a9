"""What several test modules share: paths, sample facts, ports, a fake clock, SMTP and form helpers,
a real server, and a wait for a race to be set up."""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from starlette.types import ASGIApp

from papertide import db
from papertide.ingest.http import Fetcher, RetryPolicy
from papertide.ingest.ratelimit import Clock
from papertide.models import Subscriber, SubscriberStatus
from tests.factories import make_paper
from tests.source_server import Reply

T = TypeVar("T")
FIXTURES = Path(__file__).parent / "fixtures"
# The bundled sample (src/papertide/data/): 55 real Hugging Face Daily Papers days.
SAMPLE_PAPERS = 1219
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def point_at_a_database_nobody_runs(monkeypatch: Any) -> None:
    """Production settings whose PostgreSQL does not answer: a port nothing listens on."""
    from papertide.config import get_settings

    url = f"postgresql://papertide:pw@127.0.0.1:{free_port()}/papertide"
    monkeypatch.setenv("PAPERTIDE_DATABASE_URL", url)
    monkeypatch.setenv("PAPERTIDE_SECRET_KEY", "k")
    monkeypatch.setenv("PAPERTIDE_BASE_URL", "https://papers.example.org")
    get_settings.cache_clear()


class FakeClock(Clock):
    """Time moves only when someone sleeps."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start
        self.sleeps: list[float] = []
        super().__init__(now=lambda: self.current, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += timedelta(seconds=seconds)


def fetcher(source: str, clock: FakeClock, attempts: int = 4, limit_key: str | None = "arxiv") -> Fetcher:
    """A Fetcher on the fake clock with seeded jitter and a short timeout."""
    return Fetcher(
        source=source,
        limit_key=limit_key,
        clock=clock,
        policy=RetryPolicy(attempts=attempts, rng=random.Random(7)),
        timeout=5,
    )


def ok(path: Path) -> Reply:
    """A 200 reply with a recorded XML body."""
    return 200, {"Content-Type": "application/xml"}, path.read_bytes()


def recorded_api(name: str) -> bytes:
    """One recorded arXiv API response body."""
    # The recordings hold arXiv's UTF-8 bytes decoded as Latin-1; encoding back restores them.
    return str(json.loads((FIXTURES / "arxiv_api" / name).read_text())["body"]).encode("latin-1")


class Inbox:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # the bytes as received, in the same order
        self.recipients: list[list[str]] = []  # each message's envelope (RCPT TO), in the same order

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        self.raw.append(raw)
        self.recipients.append(list(envelope.rcpt_tos))  # type: ignore[attr-defined]
        self.messages.append(BytesParser(policy=policy.default).parsebytes(raw))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages received for one address."""
        return [m for m in self.messages if m["To"] == address]


def csrf_from(html: str) -> str:
    """The CSRF token a page's form carries."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def link_token(message: EmailMessage, path: str) -> str:
    """The token of the first http://testserver/<path>/<token> link in an email's text part."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(rf"http://testserver/{path}/([A-Za-z0-9_\-]+)", body.get_content())
    assert match, f"the email links to /{path}/..."
    return match.group(1)


def subscribe_and_confirm(client: TestClient, inbox: Inbox, email: str) -> str:
    """The form, the confirmation email, the confirm page's POST; returns the confirmation token."""
    return confirmed_sign_up(client, inbox, email)[0]


def confirmed_sign_up(client: TestClient, inbox: Inbox, email: str) -> tuple[str, Response]:
    """As subscribe_and_confirm; also the confirmed page the POST answered with."""
    form = client.get("/subscribe")
    client.post("/subscribe", data={"email": email, "csrf": csrf_from(form.text)})
    token = link_token(inbox.messages[-1], "confirm")
    confirmed = client.post(
        f"/confirm/{token}", data={"csrf": csrf_from(client.get(f"/confirm/{token}").text)}
    )
    return token, confirmed


def subscriber_by_email(session: Session, email: str) -> Subscriber:
    """The stored subscriber, as committed now."""
    session.expire_all()
    return session.scalars(select(Subscriber).where(Subscriber.email == email)).one()


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """The app behind a real uvicorn server on a free loopback port (TestClient waits for the whole
    app call, so only a real server shows what a client sees before the app has finished)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


_LOCK_WAITERS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def lock_waiters() -> int:
    """How many sessions of the test's database wait on a lock now."""
    with db.get_engine().connect() as connection:
        return int(connection.execute(_LOCK_WAITERS).scalar_one())


def wait_for_lock_waiters(count: int = 1, timeout: float = 30.0) -> None:
    """Block until `count` sessions of the test's database wait on a row lock (a race is set up)."""
    deadline = time.monotonic() + timeout
    while lock_waiters() < count:
        assert time.monotonic() < deadline, f"{count} session(s) never waited on a lock"
        time.sleep(0.02)


@contextmanager
def smtp_server(handler: object, *, smtputf8: bool = True) -> Iterator[int]:
    """A real SMTP server (aiosmtpd) answering with `handler` on a free loopback port; `smtputf8`
    False: one that does not offer SMTPUTF8, as many relays do not."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def digest_ready(emails: list[str], *, papers: int = 12, per_digest: int = 3) -> None:
    """Committed: papers to rank, and a confirmed daily subscriber without interests per address
    (so no run needs the embedding model); the digest job scores them itself."""
    with db.session_factory()() as session:
        for _ in range(papers):
            make_paper(session, announced_at=T0 - timedelta(days=1))
        for email in emails:
            session.add(
                Subscriber(
                    email=email,
                    status=SubscriberStatus.CONFIRMED,
                    papers_per_digest=per_digest,
                    trending_papers=per_digest,
                    interest_mix=0.5,
                )
            )
        session.commit()


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    alive: Callable[[], bool] = lambda: True,
    diagnose: Callable[[], str] = lambda: "",
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds
    or as soon as `alive()` says the process being waited on has died, with what `diagnose()` finds
    then (where the process is stuck, what the database is doing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        assert alive(), f"the process died while waiting for {what}\n{diagnose()}".rstrip()
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{diagnose()}".rstrip())


def keyword_index_now() -> Any:
    """The test database's keyword index, fed with everything queued so far (what the worker does)."""
    from papertide.config import get_settings
    from papertide.search import keyword_index
    from papertide.worker import jobs

    jobs.index_keywords()
    return keyword_index.shared(get_settings())


# The search tests' corpus (tests/web/test_search_*.py): paper n of 45 is published on day n of
# 2026 and listed 10 days later; its category cycles cs.CL / eess.AS+cs.SD / cs.LG; every 4th links
# its code; every 5th is by Ada Lovelace. One more paper shares no word with "speech".
SPEECH_PAPERS = 45


def make_search_corpus(session: Session) -> None:
    """The papers above, committed (the keyword index and embeddings are the caller's to build)."""
    categories = (["cs.CL"], ["eess.AS", "cs.SD"], ["cs.LG"])
    for n in range(SPEECH_PAPERS):
        published = datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=n)
        make_paper(
            session,
            id=f"2601.{70000 + n}",
            title=f"Speech synthesis study {n}",
            abstract=f"Diffusion models for speech synthesis, part {n}.",
            authors=["Ada Lovelace", "B. Author"] if n % 5 == 0 else ["C. Author"],
            categories=categories[n % 3],
            published_at=published,
            announced_at=published + timedelta(days=10),
            code_url=f"https://github.com/example/speech-{n}" if n % 4 == 0 else None,
        )
    make_paper(
        session,
        id="2601.79999",
        title="Graph networks for molecules",
        abstract="Message passing over molecular graphs predicts chemical properties.",
        published_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    session.commit()


class RecordingProvider:
    """An app's encoder provider that counts its calls (the real one loads the model on its first)."""

    def __init__(self, encoder: Any) -> None:
        self.calls = 0
        self.encoder = encoder

    def __call__(self) -> Any:
        self.calls += 1
        return self.encoder


def embedded_search_corpus(session: Any, encoder: Any) -> None:
    """make_search_corpus, embedded by `encoder` and fed to the keyword index: what search tests need."""
    from papertide.worker import jobs

    make_search_corpus(session)
    jobs.embed(encoder=encoder)
    keyword_index_now()


def embedded_default(monkeypatch: Any, data_dir: Path) -> Path:
    """papertide as a fresh clone runs it: no PAPERTIDE_DATABASE_URL or PAPERTIDE_BASE_URL, data in
    `data_dir` (settings read again: the base URL then comes from DATA_DIR/site_url)."""
    from papertide.config import get_settings

    for name in ("PAPERTIDE_BASE_URL", "PAPERTIDE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PAPERTIDE_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    return data_dir
