"""What a confirmed reader changes on the manage page: interest profiles, digest size and mix,
schedule and time zone, pause; and the votes that teach a profile.

Each function takes the raw form values, checks all of them before it changes anything, and
raises a `FieldError` naming the field a person has to fix. The caller holds the subscriber's row
lock (`read_link(..., lock=True)`), so two forms sent at once apply one after the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy.orm import Session

from papertide.models import EVERY_DAY, Frequency, InterestProfile, Subscriber, SubscriberStatus
from papertide.papers import repository as paper_repository
from papertide.papers.categories import CATEGORY, is_known, spelled
from papertide.subscribers import repository
from papertide.subscribers.service import MAX_PROFILES as MAX_PROFILES  # re-exported: the page shows it
from papertide.subscribers.service import SubscriptionError, parse_interests, visible_text

MAX_PROFILE_NAME = 60
MAX_CATEGORIES = 10
MAX_SECTION_PAPERS = 50
MAX_TRENDING_PAPERS = 50
MAX_TIME_ZONE_LENGTH = 64
NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})
TRENDING_SECTION = "Trending"  # the digest's own section: no profile may take its name
DAY_NAMES = {
    1: "Monday",
    2: "Tuesday",
    3: "Wednesday",
    4: "Thursday",
    5: "Friday",
    6: "Saturday",
    7: "Sunday",
}


class FieldError(SubscriptionError):
    """Input a person can fix in one field of the manage page; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownProfile(SubscriptionError):
    """No such profile among this subscriber's (deleted, or someone else's)."""


class UnknownPaper(SubscriptionError):
    """No paper with this id."""


@dataclass(frozen=True)
class ProfileIn:
    name: str
    phrases: list[str]
    categories: list[str]


def parse_profile(*, name: str, phrases: str, categories: str) -> ProfileIn:
    """A profile's form fields, checked: a name, and at least one phrase or category."""
    clean = visible_text(name)
    if not clean:
        raise FieldError("name", "Give the profile a name, e.g. “speech” or “RL theory”.")
    if len(clean) > MAX_PROFILE_NAME:
        raise FieldError("name", f"A profile name has at most {MAX_PROFILE_NAME} characters.")
    if clean.casefold() == TRENDING_SECTION.casefold():
        raise FieldError("name", f"“{TRENDING_SECTION}” is the digest's own section: choose another name.")
    try:
        parsed_phrases = parse_interests(phrases)
    except SubscriptionError as error:
        raise FieldError("phrases", str(error)) from None
    parsed_categories = parse_categories(categories)
    if not parsed_phrases and not parsed_categories:
        raise FieldError("phrases", "Give at least one phrase or one arXiv category.")
    return ProfileIn(clean, parsed_phrases, parsed_categories)


def parse_categories(raw: str) -> list[str]:
    """arXiv categories separated by commas or spaces ("cs.CL, stat.ML"); repeats dropped."""
    found: list[str] = []
    for part in raw.replace(",", " ").split():
        name = spelled(part)  # any case: "CS.CL" is cs.CL, "Physics.Optics" physics.optics
        if not CATEGORY.fullmatch(name):
            raise FieldError(
                "categories", f"“{part[:40]}” is not an arXiv category (write them like cs.CL or stat.ML)."
            )
        if not is_known(name):
            raise FieldError(
                "categories",
                f"“{part[:40]}” is not an arXiv category: arXiv has no such name (see"
                " arxiv.org/category_taxonomy; write them like cs.CL or stat.ML).",
            )
        if name not in found:
            found.append(name)
    if len(found) > MAX_CATEGORIES:
        raise FieldError("categories", f"Give at most {MAX_CATEGORIES} categories (you gave {len(found)}).")
    return found


def add_profile(
    session: Session, *, subscriber: Subscriber, name: str, phrases: str, categories: str
) -> InterestProfile:
    """A new profile, whose section comes after the others."""
    chosen = parse_profile(name=name, phrases=phrases, categories=categories)
    others = repository.profiles(session, subscriber.id)
    if len(others) >= MAX_PROFILES:
        raise FieldError(
            "name", f"You have {MAX_PROFILES} profiles, the most there can be: delete one first."
        )
    _check_name_is_free(chosen.name, others)
    return repository.add_profile(
        session,
        subscriber_id=subscriber.id,
        name=chosen.name,
        phrases=chosen.phrases,
        categories=chosen.categories,
    )


def edit_profile(
    session: Session, *, subscriber: Subscriber, profile_id: int, name: str, phrases: str, categories: str
) -> InterestProfile:
    """Rename a profile or change what it looks for; its learned model is retrained if so."""
    profile = _own_profile(session, subscriber_id=subscriber.id, profile_id=profile_id)
    chosen = parse_profile(name=name, phrases=phrases, categories=categories)
    others = [p for p in repository.profiles(session, subscriber.id) if p.id != profile.id]
    _check_name_is_free(chosen.name, others)
    if (chosen.phrases, chosen.categories) != (list(profile.phrases), list(profile.categories)):
        repository.mark_model_stale(profile)
    profile.name, profile.phrases, profile.categories = chosen.name, chosen.phrases, chosen.categories
    return profile


def delete_profile(session: Session, *, subscriber: Subscriber, profile_id: int) -> None:
    """The profile, its section and its votes go; the digest keeps its Trending section."""
    repository.delete_profile(
        session, _own_profile(session, subscriber_id=subscriber.id, profile_id=profile_id)
    )


def move_profile_up(session: Session, *, subscriber: Subscriber, profile_id: int) -> None:
    """Swap the profile's section with the one before it (the first stays first)."""
    ordered = repository.profiles(session, subscriber.id)
    index = next((i for i, p in enumerate(ordered) if p.id == profile_id), None)
    if index is None:
        raise UnknownProfile("That profile is not one of yours.")
    if index > 0:
        ordered[index - 1], ordered[index] = ordered[index], ordered[index - 1]
    for position, profile in enumerate(ordered):
        profile.position = position


def _own_profile(
    session: Session, *, subscriber_id: int, profile_id: int, lock: bool = False
) -> InterestProfile:
    profile = (
        repository.lock_profile(session, profile_id) if lock else repository.get_profile(session, profile_id)
    )
    if profile is None or profile.subscriber_id != subscriber_id:
        raise UnknownProfile("That profile is not one of yours (it may have been deleted).")
    return profile


class NotSubscribed(SubscriptionError):
    """The reader has unsubscribed: there is no next digest for a vote to change."""


def _still_subscribed(session: Session, subscriber_id: int) -> None:
    subscriber = repository.get(session, subscriber_id)
    if subscriber is None or subscriber.status != SubscriberStatus.CONFIRMED:
        raise NotSubscribed("You have unsubscribed, so there is no digest for this vote to change.")


def _check_name_is_free(name: str, others: list[InterestProfile]) -> None:
    # Case-insensitive: "Speech" and "speech" would be two sections nobody can tell apart.
    if any(p.name.casefold() == name.casefold() for p in others):
        raise FieldError("name", f"You already have a profile named “{name}”: choose another name.")


def set_digest_size(
    *, subscriber: Subscriber, papers_per_section: str, trending_papers: str, interest_mix: str
) -> None:
    """Papers per profile section, the Trending section's size (0 hides it), the trend/interest mix."""
    papers = _whole_number(papers_per_section, "papers_per_section", low=1, high=MAX_SECTION_PAPERS)
    trending = _whole_number(trending_papers, "trending_papers", low=0, high=MAX_TRENDING_PAPERS)
    mix = _fraction(interest_mix, "interest_mix")
    subscriber.papers_per_digest, subscriber.trending_papers, subscriber.interest_mix = papers, trending, mix


def _whole_number(raw: str, field: str, *, low: int, high: int) -> int:
    # ASCII digits only: int() also takes "1_0", full-width and Arabic-Indic digits (U+FF15,
    # U+0665), which the page would then show back as a different number than the one typed.
    digits = raw.strip()
    if not (digits.isascii() and digits.isdigit() and low <= int(digits) <= high):
        raise FieldError(field, f"Give a whole number from {low} to {high}.")
    return int(digits)


def _fraction(raw: str, field: str) -> float:
    number = raw.strip()
    # float() also takes "0.2_5" and full-width digits; the page offers only plain decimals.
    if not number.isascii() or "_" in number:
        raise FieldError(field, "Give a number from 0 to 1.")
    try:
        value = float(number)
    except ValueError:
        raise FieldError(field, "Give a number from 0 to 1.") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise FieldError(field, "Give a number from 0 to 1.")
    return value or 0.0  # "-0" is stored and shown as 0, not -0.0


def set_schedule(
    *,
    subscriber: Subscriber,
    frequency: str,
    days: list[str],
    weekly_day: str,
    send_hour: str,
    time_zone: str,
) -> None:
    """When the digest goes: every day, on chosen weekdays, or weekly on one day; at a local hour."""
    cadence, send_days = _send_days(frequency, days, weekly_day)
    hour = _whole_number(send_hour, "send_hour", low=0, high=23)
    zone = parse_time_zone(time_zone)
    subscriber.frequency, subscriber.send_days = cadence, send_days
    subscriber.send_hour, subscriber.time_zone = hour, zone


def _send_days(frequency: str, days: list[str], weekly_day: str) -> tuple[Frequency, list[int]]:
    try:
        cadence = Frequency(frequency)
    except ValueError:
        raise FieldError("frequency", "Choose every day, chosen weekdays, or once a week.") from None
    if cadence == Frequency.DAILY:
        return cadence, list(EVERY_DAY)
    if cadence == Frequency.WEEKLY:
        return cadence, [_day(weekly_day, "weekly_day")]
    chosen = sorted({_day(day, "days") for day in days})
    if not chosen:
        raise FieldError("days", "Choose at least one day of the week.")
    return cadence, chosen


def _day(raw: str, field: str) -> int:
    day = raw.strip()
    # One digit: int() refuses a string of more than 4,300 digits with a ValueError of its own.
    if not (len(day) == 1 and day.isascii() and day.isdigit() and int(day) in DAY_NAMES):
        raise FieldError(field, "Choose a day of the week.")
    return int(day)


def parse_time_zone(raw: str) -> str:
    """An IANA zone name from the list the page offers (e.g. Asia/Kolkata). The scheduler works out
    each reader's local hour with the same Python zone database (digests/schedule.local_time)."""
    name = raw.strip()
    if not name:
        raise FieldError("time_zone", "Choose a time zone, e.g. Europe/Berlin or UTC.")
    # In any case ("europe/berlin" is Europe/Berlin): no two names differ in case alone.
    known = _zones_by_folded_name().get(name.casefold()) if len(name) <= MAX_TIME_ZONE_LENGTH else None
    if known is None:
        raise FieldError(
            "time_zone",
            f"“{name[:MAX_TIME_ZONE_LENGTH]}” is not a time zone name we know: choose one from the list, "
            "e.g. Europe/Berlin or America/Los_Angeles.",
        )
    return known


@lru_cache(maxsize=1)
def _zones_by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in time_zone_names()}


@lru_cache(maxsize=1)
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone name Python knows, sorted, less the files that are not places (the server's
    own `localtime`, `posixrules`, `Factory`): the list the manage page offers."""
    return tuple(sorted(zoneinfo.available_timezones() - NOT_PLACES))


# Longer than any send hour a scheduler pass still looks at: today's, and a missed one caught up
# inside DIGEST_RETRY_HOURS (at most 168).
PAUSE_MEMORY = timedelta(days=8)


def zone_clock(zone: str, now: datetime) -> str | None:
    """What the clock shows in `zone` now and its offset from UTC ("Sat 09:05, UTC-05:00", written
    with a true minus sign), for the manage page: "Etc/GMT+5" is five hours *behind* UTC (POSIX's
    sign), which the name does not say."""
    try:
        local = now.astimezone(zoneinfo.ZoneInfo(zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "\u2212"
    return f"{local:%a %H:%M}, UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def pause(*, subscriber: Subscriber, now: datetime) -> None:
    """No digest goes until the reader resumes; pausing twice keeps the first time."""
    if subscriber.paused_at is None:
        subscriber.paused_at = now
        # Kept after the resume: which send hours the pause held. Only the last pause's start is
        # kept, so one that follows a pause ended less than PAUSE_MEMORY ago counts from that
        # one's start: a second short pause must not bring back a date the first one dropped.
        recent = subscriber.resumed_at is not None and now - subscriber.resumed_at < PAUSE_MEMORY
        if subscriber.pause_began_at is None or not recent:
            subscriber.pause_began_at = now


def resume(*, subscriber: Subscriber, now: datetime) -> None:
    if subscriber.paused_at is not None:
        subscriber.paused_at = None
        # A date due during the pause is not made up later (digests/repository.add_due_deliveries).
        subscriber.resumed_at = now


def vote_targets(session: Session, *, subscriber_id: int, profile_id: int | None) -> list[InterestProfile]:
    """The profiles a vote may land in: the one named, or, for a Trending paper, every profile."""
    _still_subscribed(session, subscriber_id)
    if profile_id is not None:
        return [_own_profile(session, subscriber_id=subscriber_id, profile_id=profile_id)]
    return repository.profiles(session, subscriber_id)


def subscription_stamp(subscriber: Subscriber) -> int:
    """When this subscription was confirmed, in microseconds (as stored; a leave and a return can
    fall in one second): what the reader cookie is tied to."""
    return stamp_of(subscriber.confirmed_at)


def stamp_of(confirmed_at: datetime | None) -> int:
    """subscription_stamp of a subscriber confirmed at `confirmed_at` (0: never confirmed)."""
    return 0 if confirmed_at is None else round(confirmed_at.timestamp() * 1_000_000)


def reader_key(subscriber_id: int, subscribed: int) -> str:
    """A short fingerprint of one subscription (subscription_stamp) of one subscriber. A digest's
    vote links sign it beside the delivery, so they vote for nobody once the delivery's id names
    another reader's digest (a database restored from a backup, the secret key kept) or its reader
    has left and subscribed again; 12 characters where the two numbers take 20 or more."""
    digest = hashlib.blake2b(f"{subscriber_id}:{subscribed}".encode(), digest_size=9).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def reader_key_of(subscriber: Subscriber) -> str:
    """reader_key of the subscriber's present subscription."""
    return reader_key(subscriber.id, subscription_stamp(subscriber))


def same_reader(signed: str, present: str) -> bool:
    """Whether the reader key a link signed (`signed`) is the `present` one of whom it names now: a
    digest's vote and view links and a profile's feed answer only then. Compared in constant time."""
    return hmac.compare_digest(signed.encode(), present.encode())


def current_reader(session: Session, *, subscriber_id: int, subscribed: int) -> int | None:
    """The subscriber a reader cookie names, if it was written for their present subscription; None
    after an unsubscribe, and still None after they subscribe again (the cookie is the old one's)."""
    subscriber = repository.get(session, subscriber_id)
    if subscriber is None or subscriber.status != SubscriberStatus.CONFIRMED:
        return None
    return subscriber_id if subscription_stamp(subscriber) == subscribed else None


def from_an_earlier_subscription(session: Session, *, subscriber_id: int, subscribed: int) -> bool:
    """Whether a link stamped `subscribed` (subscription_stamp) came with mail of a subscription the
    confirmed subscriber has since ended and begun again; False for one not confirmed now, whose
    votes _still_subscribed refuses with its own reason."""
    subscriber = repository.get(session, subscriber_id)
    if subscriber is None or subscriber.status != SubscriberStatus.CONFIRMED:
        return False
    return subscription_stamp(subscriber) != subscribed


def reader_profiles(session: Session, *, subscriber_id: int) -> list[InterestProfile]:
    """The profiles a paper page offers to teach: a confirmed subscriber's, else none."""
    subscriber = repository.get(session, subscriber_id)
    if subscriber is None or subscriber.status != SubscriberStatus.CONFIRMED:
        return []
    return repository.profiles(session, subscriber_id)


def record_vote(session: Session, *, subscriber_id: int, profile_id: int, paper_id: str, vote: int) -> None:
    """A vote for one profile, +1 "more like this" or -1 "less like this"; the latest vote stands,
    and the profile's model is retrained before its next digest."""
    if vote not in (1, -1):
        raise SubscriptionError("A vote is +1 (more like this) or -1 (less like this).")
    _still_subscribed(session, subscriber_id)
    # Its row share-locked: a delete of the profile (the manage page, another tab) waits for this
    # vote, or has been and is reported as such, never a foreign-key error on the insert below.
    profile = _own_profile(session, subscriber_id=subscriber_id, profile_id=profile_id, lock=True)
    if paper_repository.get_paper(session, paper_id) is None:
        raise UnknownPaper(f"No paper with id {paper_id!r}.")
    repository.upsert_vote(session, profile_id=profile.id, paper_id=paper_id, vote=vote)
    repository.mark_model_stale(profile)
