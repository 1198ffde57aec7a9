"""Render a digest or a confirmation as a multipart email (HTML with inline CSS + plain text)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from papertide.models import Paper
from papertide.templating import environment


@dataclass(frozen=True)
class RenderedPaper:
    paper: Paper
    reason: str


def _message(*, sender: str, to: str, subject: str, template: str, context: dict[str, Any]) -> EmailMessage:
    env = environment()
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    domain = sender.rsplit("@", 1)[-1].strip(">") or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(env.get_template(f"email/{template}.txt").render(**context))
    message.add_alternative(env.get_template(f"email/{template}.html").render(**context), subtype="html")
    return message


def digest_message(
    *,
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
    message = _message(sender=sender, to=to, subject=subject, template="digest", context=context)
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
