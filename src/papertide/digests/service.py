"""The digest run: fill the ledger for a date, then claim, compose, send and record each delivery."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage

from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.db import unit_of_work
from papertide.digests import repository
from papertide.digests.compose import Candidate, compose
from papertide.digests.mailer import Mailer, MailError
from papertide.digests.render import RenderedPaper, digest_message
from papertide.embeddings.encoder import Encoder
from papertide.models import DeliveryStatus, DigestDelivery, Frequency, Subscriber, TokenPurpose
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


def frequencies_due(digest_date: date) -> list[str]:
    """Daily subscribers every day; weekly ones on Mondays."""
    return [Frequency.DAILY, Frequency.WEEKLY] if digest_date.weekday() == 0 else [Frequency.DAILY]


def run_digest(
    *, digest_date: date, settings: Settings, mailer: Mailer, encoder: Encoder | None
) -> DigestRunResult:
    """Send every digest due on `digest_date` exactly once; a rerun sends only what is still unsent."""
    with unit_of_work() as session:
        due = subscriber_repository.confirmed(session, frequencies=frequencies_due(digest_date))
        repository.ensure_deliveries(session, subscriber_ids=[s.id for s in due], digest_date=digest_date)
    result = DigestRunResult()
    attempted: list[int] = []
    while True:
        with unit_of_work() as session:
            claimed = repository.claim_next(session, digest_date=digest_date, exclude=attempted)
            if claimed is None:
                break
            delivery, subscriber = claimed
            attempted.append(delivery.id)
            _deliver(
                session,
                delivery=delivery,
                subscriber=subscriber,
                settings=settings,
                mailer=mailer,
                encoder=encoder,
                result=result,
            )
    return result


def _deliver(
    session: Session,
    *,
    delivery: DigestDelivery,
    subscriber: Subscriber,
    settings: Settings,
    mailer: Mailer,
    encoder: Encoder | None,
    result: DigestRunResult,
) -> None:
    # The row stays locked until this transaction commits, so two runs never send the same digest.
    built = build_digest(
        session, subscriber=subscriber, digest_date=delivery.digest_date, settings=settings, encoder=encoder
    )
    if built is None:
        delivery.status = DeliveryStatus.EMPTY
        result.empty += 1
        return
    message, items, as_of = built
    try:
        mailer.send(message)
    except MailError as error:
        delivery.status = DeliveryStatus.FAILED
        delivery.error = str(error)
        result.failed += 1
        result.errors.append(str(error))
        log.error("digest for subscriber %s failed: %s", subscriber.id, error)
        return
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = datetime.now(UTC)
    delivery.message_id = str(message["Message-ID"])
    delivery.as_of_date = as_of
    delivery.error = None
    repository.add_items(session, delivery_id=delivery.id, items=items)
    result.sent += 1


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
