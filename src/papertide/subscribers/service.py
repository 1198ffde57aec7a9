"""Subscribe (double opt-in), confirm, unsubscribe; tokens are random and stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.models import Frequency, Subscriber, SubscriberStatus, TokenPurpose
from papertide.subscribers import repository

CONFIRM_TOKEN_TTL = timedelta(days=7)
MAX_INTERESTS = 10
MAX_INTEREST_LENGTH = 120


class SubscriptionError(ValueError):
    """Input a person can fix: the message says what was wrong."""


@dataclass
class SubscribeOutcome:
    subscriber: Subscriber
    confirm_token: str | None  # None when no confirmation email should go out


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(session: Session, subscriber: Subscriber, purpose: TokenPurpose) -> str:
    """A fresh random token for a link; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    repository.add_token(session, subscriber_id=subscriber.id, purpose=purpose, token_hash=hash_token(token))
    return token


def normalize_email(raw: str) -> str:
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise SubscriptionError(f"That email address is not valid: {error}") from None


def parse_interests(raw: str) -> list[str]:
    """Free text, one phrase per line or comma; blank and repeated phrases dropped."""
    phrases: list[str] = []
    for part in raw.replace("\n", ",").split(","):
        phrase = " ".join(part.split())
        if not phrase or phrase.lower() in (p.lower() for p in phrases):
            continue
        if len(phrase) > MAX_INTEREST_LENGTH:
            raise SubscriptionError(
                f"An interest is longer than {MAX_INTEREST_LENGTH} characters: {phrase[:40]}..."
            )
        phrases.append(phrase)
    if len(phrases) > MAX_INTERESTS:
        raise SubscriptionError(f"Please give at most {MAX_INTERESTS} interests (you gave {len(phrases)}).")
    return phrases


def parse_frequency(raw: str) -> Frequency:
    try:
        return Frequency(raw)
    except ValueError:
        raise SubscriptionError("Frequency must be daily or weekly.") from None


@dataclass(frozen=True)
class DigestDefaults:
    """What a new subscriber gets until they choose otherwise (PAPERTIDE_DIGEST_PAPERS, _INTEREST_MIX)."""

    papers: int = 8
    interest_mix: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> DigestDefaults:
        return cls(papers=settings.digest_papers, interest_mix=settings.digest_interest_mix)


def subscribe(
    session: Session,
    *,
    email: str,
    interests: str,
    frequency: str,
    defaults: DigestDefaults | None = None,
) -> SubscribeOutcome:
    """Create or refresh a pending subscription. A confirmed address is left alone and gets no email."""
    address = normalize_email(email)
    phrases = parse_interests(interests)
    cadence = parse_frequency(frequency)
    subscriber = repository.get_by_email(session, address)
    if subscriber is not None and subscriber.status == SubscriberStatus.CONFIRMED:
        return SubscribeOutcome(subscriber=subscriber, confirm_token=None)
    if subscriber is None:
        chosen = defaults or DigestDefaults()
        subscriber = repository.add(
            session, email=address, papers_per_digest=chosen.papers, interest_mix=chosen.interest_mix
        )
    subscriber.interests = phrases
    subscriber.frequency = cadence
    subscriber.status = SubscriberStatus.PENDING
    session.flush()
    return SubscribeOutcome(
        subscriber=subscriber, confirm_token=new_token(session, subscriber, TokenPurpose.CONFIRM)
    )


def find_by_token(session: Session, token: str, purpose: TokenPurpose) -> Subscriber | None:
    """The subscriber a link belongs to, without changing anything (for GET pages)."""
    row = repository.get_token(session, token_hash=hash_token(token), purpose=purpose)
    return repository.get(session, row.subscriber_id) if row else None


def confirm(session: Session, token: str, *, now: datetime | None = None) -> Subscriber | None:
    """Confirm the address behind a confirmation token; None for an unknown or expired token."""
    now = now or datetime.now(UTC)
    row = repository.get_token(session, token_hash=hash_token(token), purpose=TokenPurpose.CONFIRM)
    if row is None or now - row.created_at > CONFIRM_TOKEN_TTL:
        return None
    subscriber = repository.get(session, row.subscriber_id)
    if subscriber is None:
        return None
    if subscriber.status == SubscriberStatus.PENDING:
        subscriber.status = SubscriberStatus.CONFIRMED
        subscriber.confirmed_at = now
    repository.mark_used(row, at=now)
    return subscriber


def unsubscribe(session: Session, token: str, *, now: datetime | None = None) -> Subscriber | None:
    """Stop all mail to the subscriber behind an unsubscribe token; None for an unknown token."""
    now = now or datetime.now(UTC)
    row = repository.get_token(session, token_hash=hash_token(token), purpose=TokenPurpose.UNSUBSCRIBE)
    if row is None:
        return None
    subscriber = repository.get(session, row.subscriber_id)
    if subscriber is None:
        return None
    if subscriber.status != SubscriberStatus.UNSUBSCRIBED:
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        subscriber.unsubscribed_at = now
    repository.mark_used(row, at=now)
    return subscriber
