"""Send mail through SMTP when PAPERTIDE_SMTP_URL is set, else write .eml files to the outbox."""

from __future__ import annotations

import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

from papertide.config import Settings


class MailError(Exception):
    """The message could not be handed over; the text says to whom and why."""


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """`smtp://user:pass@host:587?starttls=true` or `smtps://user:pass@host:465`."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ValueError(f"PAPERTIDE_SMTP_URL must look like smtp://user:pass@host:587, got {url!r}")
        self.implicit_tls = parsed.scheme == "smtps"
        self.host = parsed.hostname
        self.port = parsed.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        options = parse_qs(parsed.query)
        self.starttls = options.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        try:
            with self._connect() as client:
                if self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            raise MailError(
                f"SMTP {self.host}:{self.port} refused mail to {message['To']}: {error}"
            ) from error

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)


class OutboxMailer:
    """Writes each message as `<time>-<recipient>.eml`; /dev/outbox lists them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        recipient = "".join(c if c.isalnum() or c in "@.-" else "_" for c in str(message["To"]))
        path = self.directory / f"{stamp}-{recipient}.eml"
        path.write_bytes(bytes(message))


def mailer_from_settings(settings: Settings) -> Mailer:
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url)
    return OutboxMailer(settings.outbox_dir)


def list_outbox(directory: Path) -> list[Path]:
    """Outbox files, newest first."""
    if not directory.exists():
        return []
    return sorted(directory.glob("*.eml"), reverse=True)
