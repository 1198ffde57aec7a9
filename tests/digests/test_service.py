"""The digest steps: fill the ledger, then claim, send and record one delivery at a time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.digests import service
from papertide.digests.mailer import Mailer, MailError, OutboxMailer
from papertide.models import DeliveryStatus, DigestDelivery, SubscriberStatus
from papertide.ranking import service as ranking_service
from papertide.ranking.trending import TrendParams
from papertide.subscribers import repository as subscriber_repository
from tests.factories import make_paper

DAY = date(2026, 11, 24)  # a Monday: daily and weekly subscribers are both due


class Refusing:
    """A mail server that answers every message with a temporary failure."""

    def send(self, message: EmailMessage) -> None:
        raise MailError("451 try again later")


def confirmed_subscriber(session: Session, email: str) -> int:
    subscriber = subscriber_repository.add(session, email=email, papers_per_digest=3, interest_mix=0.5)
    subscriber.status = SubscriberStatus.CONFIRMED
    session.flush()
    return subscriber.id


def test_each_step_sends_one_delivery_and_records_how_it_ended(tx_session: Session, tmp_path: Path) -> None:
    for _ in range(4):
        make_paper(tx_session, announced_at=datetime(2026, 11, 23, tzinfo=UTC))
    ranking_service.compute_scores(tx_session, now=datetime(2026, 11, 24, tzinfo=UTC), params=TrendParams())
    first, second = (
        confirmed_subscriber(tx_session, "a@example.org"),
        confirmed_subscriber(tx_session, "b@example.org"),
    )
    settings = Settings(base_url="http://testserver", secret_key="k")

    def step(mailer: Mailer, exclude: list[int]) -> service.Delivered | None:
        return service.deliver_next(
            tx_session, digest_date=DAY, exclude=exclude, settings=settings, mailer=mailer, encoder=None
        )

    assert service.prepare_deliveries(tx_session, digest_date=DAY) == 2
    failed = step(Refusing(), [])
    assert failed is not None
    sent = step(OutboxMailer(tmp_path), [failed.delivery_id])
    assert sent is not None
    assert step(OutboxMailer(tmp_path), [failed.delivery_id, sent.delivery_id]) is None

    assert (failed.status, failed.error) == (DeliveryStatus.FAILED, "451 try again later")
    assert sent.status == DeliveryStatus.SENT
    rows = {d.subscriber_id: d for d in tx_session.query(DigestDelivery)}
    assert rows[first].status == DeliveryStatus.FAILED
    assert rows[second].status == DeliveryStatus.SENT
    assert rows[second].message_id
    assert len(list(tmp_path.glob("*.eml"))) == 1
