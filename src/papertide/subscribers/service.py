"""Subscribe (double opt-in), confirm, unsubscribe; tokens are random, stored as SHA-256, used once."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy as mail_policy
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.models import EVERY_DAY, Frequency, Subscriber, SubscriberStatus, SubscriberToken, TokenPurpose
from papertide.subscribers import repository

CONFIRM_TOKEN_TTL = timedelta(days=7)
# A manage link opens the preferences page any number of times until it expires; every digest
# carries a fresh one, so a reader who gets digests always has a working link.
MANAGE_TOKEN_TTL = timedelta(days=30)
# Every digest stores two tokens (unsubscribe, manage): rows past these ages are deleted by the
# digest passes. An unsubscribe link keeps working for half a year; a newer digest has a newer one.
UNSUBSCRIBE_TOKEN_KEEP = timedelta(days=180)
# An expired manage or confirm link is kept this much longer before it is deleted: until then it
# answers 410 with how to get a new one, which a reader coming back to an old email needs more
# than an unknown link's 404.
EXPIRED_TOKEN_GRACE = timedelta(days=30)
PRUNE_BATCH = 5000
MAX_PROFILES = 10  # interest profiles per reader: each is a section of the one email
FIRST_PROFILE = "My interests"  # the profile a sign-up's interests become
SIGN_UP_WINDOW = timedelta(hours=1)  # allow_sign_up counts per clock hour
# Sign-up emails (a confirm link, or a manage link to a confirmed address) one address is sent per
# clock hour, from every client together: the per-client limit alone let a page elsewhere, posting
# the form from each of its visitors' browsers, fill one inbox with confirmation emails.
SIGN_UP_EMAILS_PER_ADDRESS = 3
MAX_INTERESTS = 10
MAX_INTEREST_LENGTH = 120
# Unicode categories a reader never sees: format characters (Cf: zero-width space, bidi overrides)
# and controls (Cc: DEL, NUL; the whitespace among them is kept and folded as whitespace).
INVISIBLE = frozenset({"Cf", "Cc"})
# And the characters Unicode says to render as nothing that are not format characters
# (Default_Ignorable_Code_Point, DerivedCoreProperties.txt): the combining grapheme joiner, the
# Hangul fillers (NFKC makes U+3164 and U+FFA0 U+1160), Khmer's inherent vowels, the Mongolian
# and other variation selectors. "Trending" + U+3164 reads "Trending".
IGNORABLE = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0}
    | set(range(0x180B, 0x1810))
    | set(range(0x2060, 0x2070))  # with the unassigned U+2065, which Unicode says to draw as nothing too
    | set(range(0xFE00, 0xFE10))
    | set(range(0xFFF0, 0xFFF9))
    | set(range(0xE0000, 0xE1000))  # tags, variation selectors and the rest of the block
)
BLANK = "\u2800"  # the braille blank looks like a space, and counts as one


class SubscriptionError(ValueError):
    """Input a person can fix: the message says what was wrong."""


class LinkState(StrEnum):
    VALID = "valid"
    USED = "used"  # used once already, or retired by a newer confirmation or an unsubscribe
    EXPIRED = "expired"


@dataclass(frozen=True)
class Link:
    """The token behind an email link, whom it belongs to, and whether it could be used."""

    token: SubscriberToken
    subscriber: Subscriber
    state: LinkState


@dataclass
class SubscribeOutcome:
    subscriber: Subscriber
    confirm_token: str | None  # None when no confirmation email should go out
    # A confirmed address gets only a manage link; a new one gets it beside the confirm link (it
    # opens the preferences page once the address is confirmed).
    manage_token: str | None
    interests: list[str]  # this sign-up's choices: what the confirmation email asks to confirm
    frequency: Frequency


@dataclass(frozen=True)
class SignUpAllowance:
    allowed: bool
    retry_after_seconds: int


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(
    session: Session,
    subscriber: Subscriber,
    purpose: TokenPurpose,
    *,
    interests: list[str] | None = None,
    frequency: Frequency | None = None,
) -> str:
    """A fresh random token for a link; only its hash is stored, with the choices it confirms."""
    token = secrets.token_urlsafe(32)
    repository.add_token(
        session,
        subscriber_id=subscriber.id,
        purpose=purpose,
        token_hash=hash_token(token),
        interests=interests,
        frequency=frequency,
    )
    return token


def new_manage_token(session: Session, subscriber: Subscriber) -> str:
    """A link to the preferences page: stored hashed, works until MANAGE_TOKEN_TTL has passed."""
    return new_token(session, subscriber, TokenPurpose.MANAGE)


def prune_tokens(session: Session, *, now: datetime) -> int:
    """Delete links that can no longer be used (a bounded batch per call): manage and confirm
    links EXPIRED_TOKEN_GRACE after they expired, and unsubscribe links older than
    UNSUBSCRIBE_TOKEN_KEEP."""
    return repository.prune_tokens(
        session,
        older_than={
            TokenPurpose.MANAGE: now - MANAGE_TOKEN_TTL - EXPIRED_TOKEN_GRACE,
            TokenPurpose.CONFIRM: now - CONFIRM_TOKEN_TTL - EXPIRED_TOKEN_GRACE,
            TokenPurpose.UNSUBSCRIBE: now - UNSUBSCRIBE_TOKEN_KEEP,
        },
        batch=PRUNE_BATCH,
    )


def normalize_email(raw: str) -> str:
    try:
        address = validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise SubscriptionError(f"That email address is not valid: {error}") from None
    if not _names_itself(address):
        # `=?utf-8?q?victim?=@example.com` is a valid address, and in a To header an encoded word
        # that mail software decodes to victim@example.com (or to two addresses): the email would
        # go to, and show, an address other than the one stored and counted against its hourly limit.
        raise SubscriptionError(
            "That email address is not valid: in an email's To line it would read as another address"
            " (“=?” starts an encoded word there)."
        )
    return address


def _names_itself(address: str) -> bool:
    """Whether a To header holding `address` names exactly that one address, as mail software reads it."""
    try:
        header = mail_policy.default.header_factory("To", address)
    except ValueError:  # it decodes to a CR or LF, which no header may hold
        return False
    return [named.addr_spec for named in header.addresses] == [address]


def visible_text(raw: str) -> str:
    """Text as a reader sees it: compatibility forms folded (NFKC), invisible format characters
    (zero-width spaces, direction overrides) and control characters (DEL) dropped, runs of spaces
    made one; characters drawn as nothing (IGNORABLE) dropped and the braille blank made a space.
    Checked after this, "Trending\u200b" and "Trending\u3164" are "Trending", and text of
    invisible characters, or of combining marks alone, is empty."""
    folded = unicodedata.normalize("NFKC", raw).replace(BLANK, " ")
    kept = "".join(
        c
        for c in folded
        if c.isspace() or (unicodedata.category(c) not in INVISIBLE and ord(c) not in IGNORABLE)
    )
    if all(c.isspace() or unicodedata.category(c).startswith("M") for c in kept):
        return ""  # combining marks with nothing to sit on show as blank
    return " ".join(kept.split())


def parse_interests(raw: str) -> list[str]:
    """Free text, one phrase per line or comma; blank, invisible and repeated phrases dropped."""
    phrases: list[str] = []
    for part in raw.replace("\n", ",").split(","):
        # As it reads: a phrase of zero-width spaces would match nothing and still count as one,
        # and "speech" with a hidden character would be a second "speech" the reader cannot see.
        phrase = visible_text(part)
        if not phrase or phrase.casefold() in (p.casefold() for p in phrases):
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
    """The sign-up form's choice; chosen weekdays are picked later, on the manage page."""
    if raw not in (Frequency.DAILY, Frequency.WEEKLY):
        raise SubscriptionError("Frequency must be daily or weekly.")
    return Frequency(raw)


@dataclass(frozen=True)
class DigestDefaults:
    """What a new subscriber gets until they choose otherwise (PAPERTIDE_DIGEST_PAPERS, _INTEREST_MIX)."""

    papers: int = Settings.model_fields["digest_papers"].default
    interest_mix: float = Settings.model_fields["digest_interest_mix"].default

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
    now: datetime | None = None,
) -> SubscribeOutcome:
    """Ask the address's owner to confirm these choices; nothing stored changes until they do.
    At most SIGN_UP_EMAILS_PER_ADDRESS such emails an hour go to one address (then neither token).

    A confirmed address keeps its choices and is sent a manage link, where its owner changes them
    (whoever filled in the form may not be that owner). Any other address gets a confirm link
    bound to exactly these choices: an earlier or later sign-up of the same address cannot change
    what this link confirms, and this one cannot change what theirs confirm.
    """
    address = normalize_email(email)
    phrases = parse_interests(interests)
    cadence = parse_frequency(frequency)
    chosen = defaults or DigestDefaults()
    added = repository.get_or_add(
        session, email=address, papers_per_digest=chosen.papers, interest_mix=chosen.interest_mix
    )
    # Locked, as every use of the address's links locks it (read_link): an unsubscribe that
    # commits meanwhile is seen, so a manage link is never minted for a subscription that has
    # just ended (its retire would miss a token not yet committed, and the link would open the
    # address's next subscription).
    subscriber = repository.lock(session, added.id) or added
    outcome = SubscribeOutcome(
        subscriber=subscriber, confirm_token=None, manage_token=None, interests=phrases, frequency=cadence
    )
    if not _may_email(session, address, now=now or datetime.now(UTC)):
        # Nothing is sent and nothing changes; the page says the same as ever ("check your inbox"):
        # the emails of the last hour still work.
        return outcome
    outcome.manage_token = new_manage_token(session, subscriber)
    if subscriber.status != SubscriberStatus.CONFIRMED:
        outcome.confirm_token = new_token(
            session, subscriber, TokenPurpose.CONFIRM, interests=phrases, frequency=cadence
        )
    return outcome


def read_link(
    session: Session, token: str, purpose: TokenPurpose, *, now: datetime | None = None, lock: bool = False
) -> Link | None:
    """The link behind a token and its state, without changing anything; None for an unknown token.

    With `lock`, the subscriber's row is locked first and the token read again: every use of one
    subscriber's links runs one after another (a double click uses a link once), always taking
    the locks in the same order, so two of them never deadlock.
    """
    row = repository.get_token(session, token_hash=hash_token(token), purpose=purpose)
    if row is None:
        return None
    if lock:
        subscriber = repository.lock(session, row.subscriber_id)
        row = repository.get_token(session, token_hash=row.token_hash, purpose=purpose, fresh=True)
    else:
        subscriber = repository.get(session, row.subscriber_id)
    if subscriber is None or row is None:
        return None
    return Link(token=row, subscriber=subscriber, state=_state(row, subscriber, now or datetime.now(UTC)))


def _state(row: SubscriberToken, subscriber: Subscriber, now: datetime) -> LinkState:
    if row.used_at is not None:
        return LinkState.USED
    if row.purpose == TokenPurpose.CONFIRM and subscriber.status == SubscriberStatus.CONFIRMED:
        # A confirmed address is never sent a confirm link (subscribe() mails it a manage link), so
        # this one is from before: another sign-up of the address, perhaps a stranger's, that would
        # put back choices its owner has since made on the manage page. Spent, like a used one.
        return LinkState.USED
    if row.purpose == TokenPurpose.CONFIRM and now - row.created_at > CONFIRM_TOKEN_TTL:
        return LinkState.EXPIRED
    if row.purpose == TokenPurpose.MANAGE and now - row.created_at > MANAGE_TOKEN_TTL:
        return LinkState.EXPIRED
    return LinkState.VALID


def confirm(session: Session, token: str, *, now: datetime | None = None) -> Link | None:
    """Apply the choices of the sign-up this token was made for, and confirm the address.

    Only a VALID link changes anything (the link returned keeps the state it was found in); a
    used or expired one is returned as it is, and None means the token is unknown.
    """
    now = now or datetime.now(UTC)
    link = read_link(session, token, TokenPurpose.CONFIRM, now=now, lock=True)
    if link is None or link.state != LinkState.VALID:
        return link
    subscriber, row = link.subscriber, link.token
    if row.interests:
        _sign_up_interests(session, subscriber, list(row.interests))
    subscriber.frequency = row.frequency or Frequency.DAILY
    subscriber.send_days = list(EVERY_DAY) if subscriber.frequency == Frequency.DAILY else [1]
    if subscriber.status != SubscriberStatus.CONFIRMED:
        subscriber.status = SubscriberStatus.CONFIRMED
        subscriber.confirmed_at = now
        # A new subscription starts sending: a pause from before an unsubscribe is not this
        # subscription's, and nothing on the confirmed page says the digest is paused.
        subscriber.paused_at = None
    repository.mark_used(row, at=now)
    # No other link still in the mailbox may switch to choices of its own, older or newer (anyone
    # can sign an address up): what the owner changes from now on, they change on the manage page.
    repository.retire_confirm_tokens(session, subscriber_id=subscriber.id, at=now)
    return link


def _sign_up_interests(session: Session, subscriber: Subscriber, phrases: list[str]) -> None:
    """The sign-up's interests become the "My interests" profile (its phrases replaced when the
    reader has one, whatever its case), never an eleventh profile: a reader who already has
    MAX_PROFILES keeps them, and chooses on the manage page."""
    profiles = repository.profiles(session, subscriber.id)
    same = [p for p in profiles if p.name.casefold() == FIRST_PROFILE.casefold()]
    if same:
        same[0].phrases = phrases
        repository.mark_model_stale(same[0])
    elif len(profiles) < MAX_PROFILES:
        repository.add_profile(
            session, subscriber_id=subscriber.id, name=FIRST_PROFILE, phrases=phrases, categories=[]
        )


def unsubscribe(session: Session, token: str, *, now: datetime | None = None) -> Link | None:
    """Stop all mail to the subscriber behind an unsubscribe token (once); None for an unknown token."""
    now = now or datetime.now(UTC)
    link = read_link(session, token, TokenPurpose.UNSUBSCRIBE, now=now, lock=True)
    if link is None or link.state != LinkState.VALID:
        return link
    stop(session, subscriber=link.subscriber, now=now)
    repository.mark_used(link.token, at=now)
    return link


def stop(session: Session, *, subscriber: Subscriber, now: datetime) -> None:
    """Unsubscribe: no more mail of any kind to this address, until it signs up and confirms again."""
    if subscriber.status != SubscriberStatus.UNSUBSCRIBED:
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        subscriber.unsubscribed_at = now
    # A confirmation still waiting in the mailbox must not quietly start the digest again.
    repository.retire_confirm_tokens(session, subscriber_id=subscriber.id, at=now)
    # Nor may a manage link from before the unsubscribe open the page of a later subscription:
    # whoever holds an old digest (a forward, a shared inbox) is not vouched for by a new confirm.
    # Nor may the unsubscribe link of any old digest end it (each digest carries its own).
    repository.retire_manage_tokens(session, subscriber_id=subscriber.id, at=now)
    repository.retire_unsubscribe_tokens(session, subscriber_id=subscriber.id, at=now)


def awaits_confirmation(session: Session, *, subscriber: Subscriber, now: datetime | None = None) -> bool:
    """Whether the address has a confirm link it could still press (signed up, not yet confirmed)."""
    now = now or datetime.now(UTC)
    return repository.has_unused_token(
        session,
        subscriber_id=subscriber.id,
        purpose=TokenPurpose.CONFIRM,
        created_after=now - CONFIRM_TOKEN_TTL,
    )


def _may_email(session: Session, address: str, *, now: datetime) -> bool:
    """Count one sign-up email to `address`'s inbox in this clock hour; False once over the limit."""
    window_start, key = _email_count(address, now)
    return repository.count_request(session, key=key, window_start=window_start) <= SIGN_UP_EMAILS_PER_ADDRESS


def email_not_sent(session: Session, *, email: str, now: datetime) -> None:
    """Give back the count of a sign-up email the mail server did not take (the page asks to try
    again, and the next try must not find the hour's allowance used up by failures)."""
    window_start, key = _email_count(normalize_email(email), now)
    repository.uncount_request(session, key=key, window_start=window_start)


def _email_count(address: str, now: datetime) -> tuple[datetime, str]:
    """The window and key an address's sign-up emails are counted under: one per inbox, so the
    subaddresses of one (reader+1@, reader+2@) share it; a short hash for a key."""
    local, _, domain = address.rpartition("@")
    inbox = f"{local.split('+', 1)[0]}@{domain}".casefold()
    window_start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return window_start, "email:" + hashlib.blake2b(inbox.encode("utf-8"), digest_size=16).hexdigest()


def allow_sign_up(session: Session, *, client: str, limit: int, now: datetime) -> SignUpAllowance:
    """Count a sign-up from `client` in this clock hour; refused once it is over `limit`.

    The count lives in Postgres, so every web process shares it; the first sign-up of a new hour
    also deletes a few counts of past hours, so the table stays small without a job.
    """
    window_start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    count = repository.count_request(session, key=f"subscribe:{client}", window_start=window_start)
    if count == 1:
        repository.prune_request_limits(session, before=window_start)
    retry_after = window_start + SIGN_UP_WINDOW - now
    return SignUpAllowance(
        allowed=count <= limit, retry_after_seconds=max(1, int(retry_after.total_seconds()))
    )
