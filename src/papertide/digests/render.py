"""Render a digest or a confirmation as a multipart email (HTML with inline CSS + plain text)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from typing import Any
from urllib.parse import urlparse

from papertide.models import Paper
from papertide.templating import environment


@dataclass(frozen=True)
class RenderedPaper:
    paper: Paper
    reason: str


def _message(
    *,
    sender: str,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    message_id: str | None = None,
) -> EmailMessage:
    env = environment()
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain=mail_domain(sender))
    message.set_content(env.get_template(f"email/{template}.txt").render(**context))
    message.add_alternative(env.get_template(f"email/{template}.html").render(**context), subtype="html")
    return message


def mail_domain(sender: str, fallback: str = "localhost") -> str:
    """The domain of the From address (`papertide <digest@example.org>` -> example.org)."""
    _, address = parseaddr(sender)
    _, at, domain = address.rpartition("@")
    return domain.strip() if at and domain.strip() else fallback


def digest_message_id(*, delivery_id: int, digest_date: date, sender: str, base_url: str) -> str:
    """Derived from the delivery, never random: a resend of the same delivery carries the same id,
    so a receiving server that already has it can drop the copy (RFC 5322 §3.6.4)."""
    domain = mail_domain(sender, fallback=urlparse(base_url).hostname or "localhost")
    return f"<digest-{delivery_id}-{digest_date:%Y%m%d}@{domain}>"


def digest_message(
    *,
    message_id: str | None,
    sender: str,
    to: str,
    digest_date: date,
    as_of: date | None,
    papers: list[RenderedPaper],
    base_url: str,
    unsubscribe_url: str,
) -> EmailMessage:
    """The digest; List-Unsubscribe + List-Unsubscribe-Post make one-click unsubscribe work (RFC 8058)."""
    subject = f"papertide: {len(papers)} trending papers for {digest_date:%a %d %b}"
    context = {
        "papers": papers,
        "digest_date": digest_date,
        "as_of": as_of,
        "base_url": base_url,
        "unsubscribe_url": unsubscribe_url,
    }
    message = _message(
        sender=sender, to=to, subject=subject, template="digest", context=context, message_id=message_id
    )
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message


def confirmation_message(
    *, sender: str, to: str, confirm_url: str, interests: list[str], frequency: str
) -> EmailMessage:
    """The only email an unconfirmed address ever gets."""
    context = {"confirm_url": confirm_url, "interests": interests, "frequency": frequency}
    return _message(
        sender=sender, to=to, subject="Confirm your papertide digest", template="confirm", context=context
    )
