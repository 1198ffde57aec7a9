"""Render a digest or a confirmation as a multipart email (HTML with inline CSS + plain text)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid, parseaddr
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from papertide.templating import environment

# Headers that carry <URL>s (RFC 2369, RFC 8058). Mail providers read them raw, so they must go
# as written: the default policy folds a line it cannot break at whitespace (a long URL) as an
# RFC 2047 encoded word, `=?utf-8?q?=3Chttps...`, and Gmail and Yahoo then offer no unsubscribe.
_VERBATIM_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post", "list-help", "list-archive"})


if TYPE_CHECKING:
    _EmailPolicy = EmailPolicy[EmailMessage]  # parsed messages are EmailMessage, as with policy.default
else:
    _EmailPolicy = EmailPolicy


class MailPolicy(_EmailPolicy):
    """policy.default, except that the URL headers above are folded only at whitespace, never encoded."""

    def fold(self, name: str, value: str) -> str:
        verbatim = self._verbatim(name, value)
        return verbatim if verbatim is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        verbatim = self._verbatim(name, value)
        return verbatim.encode("ascii") if verbatim is not None else super().fold_binary(name, value)

    def _verbatim(self, name: str, value: str) -> str | None:
        if name.lower() not in _VERBATIM_HEADERS:
            return None
        if not hasattr(value, "name"):
            # A value parsed back from a stored message: decoded, so one stored encoded by an
            # older release goes out readable too.
            value = str(self.header_factory(name, "".join(value.splitlines())))
        words = str(value).split()
        if not all(word.isascii() for word in words):
            return None  # non-ASCII text folds and encodes as usual
        limit = self.max_line_length or None
        lines = [f"{name}:"]
        for n, word in enumerate(words):
            if n and limit and len(lines[-1]) + 1 + len(word) > limit:
                lines.append("")  # the fold: CRLF before the space that starts the next line
            lines[-1] += f" {word}"
        return self.linesep.join(lines) + self.linesep


# Every message is built, stored and parsed back for a resend with this policy, so a resend goes
# on the wire exactly like the first send.
MAIL_POLICY = MailPolicy()


class ShownPaper(Protocol):
    """What an email shows of a paper (a Paper row, or the run's DigestPaper)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def authors(self) -> list[str]: ...
    @property
    def abstract(self) -> str: ...


@dataclass(frozen=True)
class RenderedPaper:
    paper: ShownPaper
    reason: str
    more_url: str | None = None  # the reader's signed "more like this" link (none in a browser view)
    less_url: str | None = None


@dataclass(frozen=True)
class RenderedSection:
    title: str  # a profile's name, or "Trending"
    papers: list[RenderedPaper]


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
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
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
    sections: list[RenderedSection],
    base_url: str,
    unsubscribe_url: str,
    manage_url: str | None = None,
    view_url: str | None = None,
) -> EmailMessage:
    """The digest; List-Unsubscribe + List-Unsubscribe-Post make one-click unsubscribe work (RFC 8058)."""
    count = sum(len(s.papers) for s in sections)
    subject = f"papertide: {count} papers for {digest_date:%a %d %b}"
    context = _digest_context(digest_date=digest_date, as_of=as_of, sections=sections, base_url=base_url) | {
        "unsubscribe_url": unsubscribe_url,
        "manage_url": manage_url,
        "view_url": view_url,
    }
    message = _message(
        sender=sender, to=to, subject=subject, template="digest", context=context, message_id=message_id
    )
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message


def digest_html(
    *, digest_date: date, as_of: date | None, sections: list[RenderedSection], base_url: str
) -> str:
    """The digest's HTML part as a web page (view in browser), without the reader's own links."""
    context = _digest_context(digest_date=digest_date, as_of=as_of, sections=sections, base_url=base_url)
    return environment().get_template("email/digest.html").render(**context)


def _digest_context(
    *, digest_date: date, as_of: date | None, sections: list[RenderedSection], base_url: str
) -> dict[str, Any]:
    return {
        "sections": sections,
        "digest_date": digest_date,
        "as_of": as_of,
        "base_url": base_url,
        "unsubscribe_url": None,
        "manage_url": None,
        "view_url": None,
    }


def confirmation_message(
    *, sender: str, to: str, confirm_url: str, manage_url: str, interests: list[str], frequency: str
) -> EmailMessage:
    """The only email an unconfirmed address ever gets; its manage link works once it is confirmed."""
    context = {
        "confirm_url": confirm_url,
        "manage_url": manage_url,
        "interests": interests,
        "frequency": frequency,
    }
    return _message(
        sender=sender, to=to, subject="Confirm your papertide digest", template="confirm", context=context
    )


def manage_link_message(*, sender: str, to: str, manage_url: str, days: int) -> EmailMessage:
    """A link to the preferences page, for an address already confirmed that filled in the form again."""
    context = {"manage_url": manage_url, "days": days}
    return _message(
        sender=sender, to=to, subject="Manage your papertide digest", template="manage", context=context
    )
