"""Delivery reports that come back by mail: bounces (RFC 3464) and complaints (RFC 5965, ARF).

A relay takes a digest with a 250 and finds out later that the address does not exist, or a
reader's provider forwards their "this is spam" click as an abuse report. Either way a message
comes back to the envelope sender, hours after the run that recorded the digest `sent`. This module
reads one such message into what it says; `feedback.py` decides what to do about it. Pure: no
database, no settings.

Everything here comes from outside (anyone can mail the bounce address), so nothing is trusted: a
report names the digest it is about only by quoting its Message-ID (or the X-Papertide-Digest
header that repeats it), whose tag only this site can make (render.digest_message_id), and that is
checked against the ledger before anything changes.
Plain-text bounces (qmail, Exim's default, OpenSMTPD, old Gmail) carry no machine-readable status and are not
read: they are reported as such, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from enum import StrEnum

# A report is one bounce or complaint: a few kilobytes, and the returned digest at most some
# hundreds (render.MAIL_HTML_LIMIT keeps its HTML under 96 KB).
MAX_REPORT_BYTES = 4 * 1024 * 1024
# A report nests a few multiparts (the report, the returned digest's alternative, a provider's
# related/alternative notice). Python's parser takes time in depth times lines, so a message built as
# hundreds of nested parts would hold a mail server's pipe for many minutes: refused unread.
MAX_MULTIPARTS = 40
_BOUNDARIES = re.compile(rb"(?i)boundary\s*=")
# The id render.digest_message_id writes, and the header that carries it too: a relay such as
# Amazon SES replaces the Message-ID with its own, and keeps the headers it does not know.
_DIGEST_ID = re.compile(r"<digest-(\d{1,18})-(\d{8})\.([a-z2-7]{16})@[\x21-\x3b=\x3f-\x7e]+>")
DIGEST_HEADER = "X-Papertide-Digest"
_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")


def address_takes_no_mail(subject: int, detail: int) -> bool:
    """Whether an enhanced status code x.SUBJECT.DETAIL (RFC 3463) says the address itself takes no
    mail: 5.1.x (a bad or unknown mailbox) or 5.2.1 (mailbox disabled). The one rule for suppressing
    an address, whether a server says it at RCPT (mailer.py) or in a bounce that comes back later."""
    return subject == 1 or (subject, detail) == (2, 1)


class ReportKind(StrEnum):
    BOUNCE = "bounce"  # multipart/report; report-type=delivery-status
    COMPLAINT = "complaint"  # multipart/report; report-type=feedback-report, Feedback-Type abuse


class NotAReport(ValueError):
    """The message is not a report papertide reads; the text says what it is instead."""


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block of a delivery-status report."""

    final: str  # Final-Recipient's address, lowercase: the one the failure is about; "" if none
    original: str  # Original-Recipient's: the address mailed, when the relay forwarded it on
    action: str  # failed, delayed, delivered, relayed, expanded (lowercase)
    status: tuple[int, int, int] | None  # 5.1.1 as (5, 1, 1); None when missing or not a code
    diagnostic: str  # Diagnostic-Code as written, one line, or ""

    @property
    def bad_address(self) -> bool:
        """Failed for good because the address itself takes no mail (5.1.x, mailbox disabled 5.2.1):
        the codes a server's reply at RCPT must carry to suppress an address (mailer._bad_address).
        A full mailbox (5.2.2), a policy or spam block (5.7.x), or a bare 5.0.0 is no reason to stop
        writing to a reader for good."""
        if self.action != "failed" or self.status is None or self.status[0] != 5:
            return False
        return address_takes_no_mail(self.status[1], self.status[2])

    def status_text(self) -> str:
        code = ".".join(map(str, self.status)) if self.status else "no status"
        return f"{code} {self.diagnostic}".strip()


@dataclass(frozen=True)
class DigestId:
    """What a digest's Message-ID says of itself; believed only once it matches the ledger."""

    message_id: str  # as quoted, angle brackets included
    delivery_id: int
    digest_date: date


@dataclass(frozen=True)
class Report:
    kind: ReportKind
    digest: DigestId | None  # None when the returned message is not one of papertide's digests
    recipients: tuple[RecipientStatus, ...]  # a bounce's blocks; a complaint's Original-Rcpt-To
    feedback_type: str = ""  # a complaint's Feedback-Type (abuse, fraud, opt-out, ...), lowercase


def read_report(raw: bytes) -> Report:
    """The report in `raw`, one whole message as a mail server delivers it; NotAReport otherwise."""
    if len(raw) > MAX_REPORT_BYTES:
        raise NotAReport(f"{len(raw):,} bytes: more than a delivery report holds ({MAX_REPORT_BYTES:,})")
    if len(_BOUNDARIES.findall(raw)) > MAX_MULTIPARTS:
        raise NotAReport(
            f"more than {MAX_MULTIPARTS} multipart boundaries: more than a delivery report nests"
        )
    try:
        return _read(raw)
    except NotAReport:
        raise
    except Exception as error:  # the email package on hostile bytes: say so, never a traceback
        raise NotAReport(
            f"a message the email parser cannot read ({type(error).__name__}: {error})"
        ) from None


def _read(raw: bytes) -> Report:
    message = message_from_bytes(raw, policy=compat32)  # the lenient parser: reports are often sloppy
    if message.get_content_type() != "multipart/report":
        raise NotAReport(
            f"a {message.get_content_type()} message, not a delivery status report (multipart/report):"
            " plain-text bounces carry no status a program can read"
        )
    report_type = str(message.get_param("report-type", "", header="content-type") or "").lower()
    if report_type == "delivery-status":
        return Report(ReportKind.BOUNCE, _returned_digest(message), _recipients(message))
    if report_type == "feedback-report":
        blocks = _blocks(message, ("message/feedback-report",))
        fields = blocks[0] if blocks else {}
        recipient = _address(fields.get("original-rcpt-to", ""))
        return Report(
            ReportKind.COMPLAINT,
            _returned_digest(message),
            (RecipientStatus(recipient, recipient, "complained", None, ""),) if recipient else (),
            feedback_type=fields.get("feedback-type", "").strip().lower(),
        )
    raise NotAReport(f"a multipart/report of type {report_type or 'none'!r}, not a bounce or a complaint")


def _recipients(message: Message) -> tuple[RecipientStatus, ...]:
    blocks = _blocks(message, ("message/delivery-status", "message/global-delivery-status"))
    if not blocks:
        raise NotAReport("a delivery status report without its message/delivery-status part")
    recipients = []
    for fields in blocks[1:]:  # the first block is about the message, the rest one per recipient
        status = _STATUS.match(fields.get("status", "").strip())
        recipients.append(
            RecipientStatus(
                final=_address(fields.get("final-recipient", "")),
                original=_address(fields.get("original-recipient", "")),
                action=fields.get("action", "").strip().lower(),
                status=(int(status[1]), int(status[2]), int(status[3])) if status else None,
                diagnostic=" ".join(fields.get("diagnostic-code", "").split())[:500],
            )
        )
    return tuple(r for r in recipients if r.final or r.original)


def _blocks(message: Message, types: tuple[str, ...]) -> list[dict[str, str]]:
    """The blocks of fields (RFC 3464 §2.1, RFC 5965 §3) of the first part of one of `types`, each
    a dict by lowercase name. Python splits message/delivery-status into its blocks; the RFC 6533
    (SMTPUTF8) and feedback forms it reads as one message whose body holds the rest: both are
    written back out as text here and split at the blank lines."""
    for part in message.walk():
        if part.get_content_type() not in types:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            text = "\n\n".join(block.as_string() for block in payload if isinstance(block, Message))
        else:
            text = _text(part)
        blocks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
        return [_fields(HeaderParser(policy=compat32).parsestr(block)) for block in blocks if block.strip()]
    return []


def _text(part: Message) -> str:
    """A part that is not split into messages, decoded from its transfer encoding, as text."""
    data = part.get_payload(decode=True)
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else ""


def _fields(block: Message) -> dict[str, str]:
    """A block's fields by lowercase name (the first of each), each unfolded to one line."""
    fields: dict[str, str] = {}
    for name, value in block.items():
        fields.setdefault(name.lower(), " ".join(str(value).split()))
    return fields


def _returned_digest(message: Message) -> DigestId | None:
    """The papertide digest the report returns, by the X-Papertide-Digest header or else the
    Message-ID of the message or headers it attaches: a message/rfc822 or text/rfc822-headers part
    (or their RFC 6532 forms) anywhere, or whatever the report's third part is (RFC 6522 §3: the returned message or its headers; Oracle's
    Messaging Server sends them as text/plain). None when it returns another message."""
    parts = message.get_payload()
    third = parts[2:3] if isinstance(parts, list) else []
    for part in message.walk():  # the third part among them
        kind = part.get_content_type()
        payload = part.get_payload()
        if kind in ("message/rfc822", "message/global", "message/global-headers") and isinstance(
            payload, list
        ):
            headers = payload[0] if payload else None
        elif kind in ("text/rfc822-headers", "message/global-headers") or part in third:
            headers = HeaderParser(policy=compat32).parsestr(_text(part))
        else:
            continue
        if not isinstance(headers, Message):
            continue
        for name in (DIGEST_HEADER, "Message-ID"):
            found = _DIGEST_ID.fullmatch(" ".join(str(headers.get(name, "")).split()))
            if found:
                return _digest_id(found)
    return None


def _digest_id(found: re.Match[str]) -> DigestId | None:
    try:
        day = date(int(found[2][:4]), int(found[2][4:6]), int(found[2][6:]))
    except ValueError:  # 20261399: not a date, so not an id papertide wrote
        return None
    return DigestId(message_id=found[0], delivery_id=int(found[1]), digest_date=day)


def _address(field: str) -> str:
    """`rfc822; Reader@Example.org` -> reader@example.org: the address of a recipient field, with
    its address type and any angle brackets taken off; "" when the field names none."""
    _, semicolon, rest = field.partition(";")
    address = (rest if semicolon else field).strip().strip("<>").strip()
    return address.lower() if "@" in address else ""
