"""What papertide does with a bounce or a complaint that came back by mail (reports.py reads it).

- A bounce whose Final-Recipient is the digest's reader and whose status says the address takes
  no mail (5.1.x, 5.2.1, action `failed`) suppresses the address, as the same reply at RCPT does
  when the server says it at once (service.record_outcome). A link made after that digest went out
  lifts it again when the reader opens it (service.mail_reached), and once they have opened one, a
  bounce of an older digest is not believed. Anything else (4.x.x and `delayed`, a full mailbox, a
  spam block, a failure of an address the reader's forwards to) changes nothing: the next digest is
  tried as usual.
- A complaint (an ARF `abuse` report, the reader's "this is spam" click passed on by their
  provider, or `opt-out`) unsubscribes the reader, as the one-click unsubscribe would, unless it
  names another address as the one that complained (the reader's forward's).
- Only a report that quotes a Message-ID papertide stored for a delivery counts: the id's tag is
  made with the site's key, so a report about somebody else's address cannot be forged by someone
  who never saw the digest. A report about a digest of an earlier subscription (the address has
  confirmed again since) changes nothing either.

Each report is handled in one transaction; handling the same report twice changes nothing more.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from papertide.digests import repository
from papertide.digests.render import wire_address
from papertide.digests.reports import NotAReport, Report, ReportKind, read_report
from papertide.digests.service import made_for_earlier_subscription, mask_address
from papertide.models import DigestDelivery, Subscriber, SubscriberStatus
from papertide.subscribers import repository as subscriber_repository
from papertide.subscribers.service import stop

log = logging.getLogger(__name__)
# RFC 5965's feedback types a reader sends by hand; not-spam, auth-failure, virus and the like are
# about the message, not a wish to get no more.
_UNSUBSCRIBING_FEEDBACK = frozenset({"abuse", "opt-out"})


class Outcome(StrEnum):
    SUPPRESSED = "suppressed"
    UNSUBSCRIBED = "unsubscribed"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Handled:
    outcome: Outcome
    detail: str  # one line for the operator's log; addresses masked


def handle_report(session: Session, raw: bytes, *, now: datetime) -> Handled:
    """Read one report (a whole message as the mail server delivered it) and act on it."""
    try:
        report = read_report(raw)
    except NotAReport as error:
        return Handled(Outcome.IGNORED, f"not a report papertide reads: {error}")
    if report.digest is None:
        return Handled(Outcome.IGNORED, f"a {report.kind} about a message that is not a papertide digest")
    delivery = repository.get_delivery(session, report.digest.delivery_id)
    if delivery is None or not _quotes(delivery, report.digest.message_id):
        return Handled(
            Outcome.IGNORED,
            f"a {report.kind} quoting {report.digest.message_id}, which papertide did not send"
            " (a forged report, or one about a delivery since deleted)",
        )
    # Locked: a manage link opened at this moment (service.mail_reached) waits for this report, or
    # this report sees what it recorded; either way a suppression lifted by that link stays lifted.
    subscriber = subscriber_repository.lock(session, delivery.subscriber_id)
    if subscriber is None:
        return Handled(Outcome.IGNORED, f"a {report.kind} about digest {delivery.id}, whose reader is gone")
    if made_for_earlier_subscription(delivery, subscriber):
        return Handled(
            Outcome.IGNORED,
            f"a {report.kind} about digest {delivery.id}, sent before {mask_address(subscriber.email)}"
            " confirmed a new subscription: the address has taken mail since",
        )
    if report.kind == ReportKind.COMPLAINT:
        return _complaint(session, report, delivery, subscriber, now=now)
    return _bounce(session, report, delivery, subscriber)


def _quotes(delivery: DigestDelivery, message_id: str) -> bool:
    # `message_id` has a tag (reports.read_report reads no other), so an id stored before ids
    # carried one, a guessable number and date, is never matched. Compared as bytes: an id that is
    # not ASCII must not raise (compare_digest takes only ASCII str).
    return hmac.compare_digest((delivery.message_id or "").encode(), message_id.encode())


def _handed_over(delivery: DigestDelivery) -> datetime:
    """When the digest went to the relay (when its row was made, if no 250 was recorded): a link
    made after that, by repository.SENT_CLOCK_SKEW, reached the reader after the digest."""
    return delivery.sent_at or delivery.created_at


def _complaint(
    session: Session, report: Report, delivery: DigestDelivery, subscriber: Subscriber, *, now: datetime
) -> Handled:
    who = mask_address(subscriber.email)
    kind = report.feedback_type or "unnamed"
    ours = {subscriber.email.lower(), wire_address(subscriber.email).lower()}
    named = [r.final for r in report.recipients if r.final]
    if named and not set(named) & ours:
        # The reader's address forwarded the digest, and whoever it went on to marked it as spam:
        # not the reader's wish. (Most providers redact the recipient; then the id is the reader's.)
        return Handled(
            Outcome.IGNORED,
            f"a complaint about digest {delivery.id} from {mask_address(named[0])}, not its reader {who}",
        )
    if report.feedback_type not in _UNSUBSCRIBING_FEEDBACK:
        return Handled(
            Outcome.IGNORED, f"a complaint of type {kind!r} about digest {delivery.id}: not a wish to stop"
        )
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        return Handled(
            Outcome.IGNORED, f"a complaint about digest {delivery.id}: {who} has unsubscribed already"
        )
    stop(session, subscriber=subscriber, now=now)
    log.warning("a complaint (%s) about digest %s unsubscribed %s", kind, delivery.id, who)
    return Handled(Outcome.UNSUBSCRIBED, f"{who}: a complaint ({kind}) about digest {delivery.id}")


def _bounce(session: Session, report: Report, delivery: DigestDelivery, subscriber: Subscriber) -> Handled:
    who = mask_address(subscriber.email)
    ours = {subscriber.email.lower(), wire_address(subscriber.email).lower()}
    # Final-Recipient is the address that failed; one without a domain (a local delivery) is the
    # address mailed, named by Original-Recipient.
    theirs = [r for r in report.recipients if r.final in ours or (not r.final and r.original in ours)]
    if not theirs:
        forwarded = [r for r in report.recipients if r.original in ours]
        if forwarded:
            # The reader's address forwards (an alias, a list) and one of its targets failed: the
            # others may have had the digest, so the reader's address is not the bad one.
            return Handled(
                Outcome.IGNORED,
                f"a bounce of digest {delivery.id}: {who} forwarded it to {mask_address(forwarded[0].final)},"
                " which failed; the address itself took it",
            )
        return Handled(Outcome.IGNORED, f"a bounce of digest {delivery.id} that names no recipient of it")
    reached = subscriber.mail_reached_at
    if reached is not None and reached > _handed_over(delivery) + repository.SENT_CLOCK_SKEW:
        return Handled(
            Outcome.IGNORED,
            f"a bounce of digest {delivery.id}: {who} has opened a link mailed after it, so the address"
            " takes mail",
        )
    bad = next((r for r in theirs if r.bad_address), None)
    if bad is None:
        said = "; ".join(f"{r.action or 'no action'} {r.status_text()}" for r in theirs)
        return Handled(
            Outcome.IGNORED,
            f"a bounce of digest {delivery.id} to {who}: {said}; only a failed 5.1.x or 5.2.1 says the"
            " address takes no mail",
        )
    if repository.suppression_of(session, subscriber.email) is not None:
        return Handled(Outcome.IGNORED, f"a bounce of digest {delivery.id}: {who} is suppressed already")
    reason = f"bounced after the relay took it: {bad.status_text()}"
    repository.suppress(session, email=subscriber.email, reason=reason, delivery_id=delivery.id)
    log.warning("a bounce of digest %s suppressed %s: %s", delivery.id, who, bad.status_text())
    return Handled(Outcome.SUPPRESSED, f"{who}: {reason} (digest {delivery.id})")
