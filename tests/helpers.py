"""What several test modules share: paths, sample facts, ports, a fake clock, SMTP and form helpers."""

from __future__ import annotations

import json
import random
import re
import socket
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.ingest.http import Fetcher, RetryPolicy
from papertide.ingest.ratelimit import Clock
from papertide.models import Subscriber
from tests.source_server import Reply

FIXTURES = Path(__file__).parent / "fixtures"
# The bundled sample (src/papertide/data/): 55 real Hugging Face Daily Papers days.
SAMPLE_PAPERS = 1219
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        self.messages.append(BytesParser(policy=policy.default).parsebytes(raw))
        return "250 Message accepted for delivery"


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
    form = client.get("/subscribe")
    client.post("/subscribe", data={"email": email, "csrf": csrf_from(form.text)})
    token = link_token(inbox.messages[-1], "confirm")
    client.post(f"/confirm/{token}", data={"csrf": csrf_from(client.get(f"/confirm/{token}").text)})
    return token


def subscriber_by_email(session: Session, email: str) -> Subscriber:
    """The stored subscriber, as committed now."""
    session.expire_all()
    return session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
