"""Digest steps: fill the ledger for a date; claim, compose, send and record one delivery."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage

from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.digests import repository
from papertide.digests.compose import Candidate, compose
from papertide.digests.mailer import Mailer, MailError
from papertide.digests.render import RenderedPaper, digest_message
from papertide.embeddings.encoder import Encoder
from papertide.models import DeliveryStatus, Frequency, Subscriber, TokenPurpose
from papertide.ranking import repository as ranking_repository
from papertide.subscribers import repository as subscriber_repository
from papertide.subscribers import service as subscriber_service

log = logging.getLogger(__name__)
CANDIDATE_POOL = 200
PERIOD_FOR = {Frequency.DAILY: "week", Frequency.WEEKLY: "month"}


@dataclass
class DigestRunResult:
    sent: int = 0
    empty: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, delivered: Delivered) -> None:
        if delivered.status == DeliveryStatus.SENT:
            self.sent += 1
        elif delivered.status == DeliveryStatus.EMPTY:
            self.empty += 1
        else:
            self.failed += 1
            self.errors.append(delivered.error or "")


@dataclass
class Delivered:
    """How one claimed delivery ended."""

    delivery_id: int
    status: DeliveryStatus
    error: str | None = None


def frequencies_due(digest_date: date) -> list[str]:
    """Daily subscribers every day; weekly ones on Mondays."""
    return [Frequency.DAILY, Frequency.WEEKLY] if digest_date.weekday() == 0 else [Frequency.DAILY]


def prepare_deliveries(session: Session, *, digest_date: date) -> int:
    """One ledger row for every subscriber due on `digest_date`; returns how many are due."""
    due = subscriber_repository.confirmed(session, frequencies=frequencies_due(digest_date))
    repository.ensure_deliveries(session, subscriber_ids=[s.id for s in due], digest_date=digest_date)
    return len(due)


def deliver_next(
    session: Session,
    *,
    digest_date: date,
    exclude: Sequence[int],
    settings: Settings,
    mailer: Mailer,
    encoder: Encoder | None,
) -> Delivered | None:
    """Claim the next unsent delivery and send it; None when none is left.

    The claimed row stays locked until the caller commits, so two runs never send the same digest.
    The caller commits once per delivery (worker.jobs.send_digests): a crash loses at most the
    delivery in flight, never the ledger of the ones before it.
    """
    claimed = repository.claim_next(session, digest_date=digest_date, exclude=exclude)
    if claimed is None:
        return None
    delivery, subscriber = claimed
    built = build_digest(
        session, subscriber=subscriber, digest_date=delivery.digest_date, settings=settings, encoder=encoder
    )
    if built is None:
        delivery.status = DeliveryStatus.EMPTY
        return Delivered(delivery_id=delivery.id, status=DeliveryStatus.EMPTY)
    message, items, as_of = built
    try:
        mailer.send(message)
    except MailError as error:
        delivery.status = DeliveryStatus.FAILED
        delivery.error = str(error)
        log.error("digest for subscriber %s failed: %s", subscriber.id, error)
        return Delivered(delivery_id=delivery.id, status=DeliveryStatus.FAILED, error=str(error))
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = datetime.now(UTC)
    delivery.message_id = str(message["Message-ID"])
    delivery.as_of_date = as_of
    delivery.error = None
    repository.add_items(session, delivery_id=delivery.id, items=items)
    return Delivered(delivery_id=delivery.id, status=DeliveryStatus.SENT)


def build_digest(
    session: Session,
    *,
    subscriber: Subscriber,
    digest_date: date,
    settings: Settings,
    encoder: Encoder | None,
) -> tuple[EmailMessage, list[tuple[str, str]], date | None] | None:
    """The message and its (paper_id, reason) items, or None when there is nothing new to send."""
    period = PERIOD_FOR.get(Frequency(subscriber.frequency), "week")
    ranked = ranking_repository.trending(session, period=period, limit=CANDIDATE_POOL)
    if not ranked:
        return None
    similarity = _similarities(session, [p.id for p, _ in ranked], subscriber.interests, encoder)
    candidates = [
        Candidate(
            paper_id=p.id, trend_score=s.score, components=s.components, similarity=similarity.get(p.id, {})
        )
        for p, s in ranked
    ]
    entries = compose(
        candidates,
        already_sent=repository.sent_paper_ids(session, subscriber_id=subscriber.id),
        interests=subscriber.interests,
        mix=subscriber.interest_mix,
        limit=subscriber.papers_per_digest,
    )
    if not entries:
        return None
    papers = {p.id: p for p, _ in ranked}
    as_of = ranked[0][1].as_of.date()
    token = subscriber_service.new_token(session, subscriber, TokenPurpose.UNSUBSCRIBE)
    message = digest_message(
        sender=settings.mail_from,
        to=subscriber.email,
        digest_date=digest_date,
        as_of=as_of if as_of < digest_date else None,
        papers=[RenderedPaper(paper=papers[e.paper_id], reason=e.reason) for e in entries],
        base_url=settings.base_url,
        unsubscribe_url=f"{settings.base_url}/unsubscribe/{token}",
    )
    return message, [(e.paper_id, e.reason) for e in entries], as_of


def _similarities(
    session: Session, paper_ids: list[str], interests: list[str], encoder: Encoder | None
) -> dict[str, dict[str, float]]:
    """Cosine similarity of each candidate to each interest phrase (vectors are unit length)."""
    if not interests or encoder is None:
        return {}
    vectors = repository.embeddings_for(session, paper_ids, model=encoder.name)
    if not vectors:
        return {}
    phrases = encoder.encode(interests)
    return {
        pid: {phrase: float(vec @ phrases[i]) for i, phrase in enumerate(interests)}
        for pid, vec in vectors.items()
    }
