"""Build one reader's digest: how each candidate fits each of their profiles (calibrated phrase
matches, categories, or the profile's model once it has votes), the sections, the links, the
message; and the same digest again as a web page (view in browser)."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from email.message import EmailMessage
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from papertide import signing
from papertide.config import Settings
from papertide.digests import learning, matching, repository
from papertide.digests.candidates import CandidatePool, DigestPaper, DigestRun
from papertide.digests.compose import ProfileFit, Section, compose_sections
from papertide.digests.readers import Reader, load_readers
from papertide.digests.render import (
    RenderedPaper,
    RenderedSection,
    digest_html,
    digest_message,
    paper_parts,
)
from papertide.embeddings.encoder import Encoder
from papertide.models import Frequency, InterestProfile, Paper, Subscriber, SubscriberStatus
from papertide.papers import categories
from papertide.papers import repository as paper_repository
from papertide.subscribers import preferences
from papertide.subscribers import repository as subscriber_repository
from papertide.templating import shortened

log = logging.getLogger(__name__)
# The liked paper a reason line names ("like '...'"), cut to a glance: a reader knows a paper they
# liked by its first words, and a title of hundreds of characters would bury the reason.
LIKED_TITLE_SHOWN = 70
# A weekly reader's digest covers the month's trending, a more frequent one the week's.
PERIOD_FOR = {Frequency.DAILY: "week", Frequency.WEEKDAYS: "week", Frequency.WEEKLY: "month"}
LIKE_SHARE = 0.02  # a taught profile takes papers its model ranks in the top 2% of the corpus


@dataclass(frozen=True)
class BuiltDigest:
    message: EmailMessage
    items: list[tuple[str, str, str, int | None]]  # (paper_id, reason, section, profile_id)
    as_of: date


def period_for(subscriber: Subscriber) -> str:
    try:
        return PERIOD_FOR[Frequency(subscriber.frequency)]
    except ValueError:
        return "week"


def build_digest(
    session: Session,
    *,
    subscriber: Subscriber,
    digest_date: date,
    settings: Settings,
    run: DigestRun,
    delivery_id: int | None = None,
    message_id: str | None = None,
    reader: Reader | None = None,
) -> BuiltDigest | None:
    """The message and its items, or None when there is nothing new to send.

    `delivery_id` and `message_id` are the delivery's; a preview, which is never sent, has neither
    (and so no view-in-browser link). `reader`: loaded with the rest of a batch (readers.py), else
    loaded here.
    """
    period = period_for(subscriber)
    pool = run.pool(session, period)
    if pool is None:
        return None
    reader = reader or load_readers(session, [subscriber])[subscriber.id]
    sections = compose_sections(
        pool.papers,
        [profile_fit(session, run=run, pool=pool, profile=p) for p in reader.profiles],
        already_seen=reader.already_seen,
        mix=subscriber.interest_mix,
        per_section=subscriber.papers_per_digest,
        trending=subscriber.trending_papers,
        period=period,
    )
    if not sections:
        return None
    secret = settings.resolved_secret_key()
    base = settings.base_url
    unsubscribe, manage = reader.unsubscribe_token, reader.manage_token
    view = (
        view_url(settings, subscriber=subscriber, delivery_id=delivery_id)
        if delivery_id is not None
        else None
    )
    rendered = _rendered(
        sections,
        pool,
        votes=_VoteLinks(
            base_url=base,
            secret=secret,
            subscriber_id=subscriber.id,
            subscription=preferences.subscription_stamp(subscriber),
            delivery_id=delivery_id,
        ),
    )
    message = digest_message(
        message_id=message_id,
        sender=settings.mail_from,
        to=subscriber.email,
        digest_date=digest_date,
        as_of=pool.as_of if pool.as_of < digest_date else None,
        sections=rendered,
        base_url=base,
        unsubscribe_url=f"{base}/unsubscribe/{unsubscribe}",
        manage_url=f"{base}/manage/{manage}",
        view_url=view,
    )
    items = [(e.paper_id, e.reason, s.title, s.profile_id) for s in sections for e in s.entries]
    return BuiltDigest(message=message, items=items, as_of=pool.as_of)


def view_url(settings: Settings, *, subscriber: Subscriber, delivery_id: int) -> str:
    """A sent digest's "view in browser" link. It signs whose subscription the digest went to ("r",
    as the vote links do: _VoteLinks), so it shows nobody else's digest once the id names another
    reader's (a database restored from a backup), nor an earlier subscription's digest to whoever
    holds that old email (routes/digest_view.py answers 410)."""
    payload = {"d": delivery_id, "r": preferences.reader_key_of(subscriber)}
    signed = signing.sign(settings.resolved_secret_key(), signing.LinkPurpose.VIEW, payload)
    return f"{settings.base_url}/digest/{signed}"


@dataclass(frozen=True)
class ProfileFeed:
    """What a profile's private feed lists: the papers its digest section would hold now, best first."""

    profile: InterestProfile
    period: str
    as_of: date | None
    papers: list[tuple[Paper, str]]  # (paper, the digest's reason line)


def profile_feed_version(session: Session, *, profile_id: int, reader_key: str | None) -> str | None:
    """What a profile's feed depends on besides the scores (its phrases, categories, votes, its
    reader's choices), as a short string; None when the feed does not exist (profile_feed's rule),
    or its URL was made in another subscription than the reader's present one (`reader_key`, as
    the URL signs it; None for a URL from before URLs named it: good while the reader has never
    unsubscribed, as then it can only be from this subscription)."""
    profile = subscriber_repository.get_profile(session, profile_id)
    subscriber = subscriber_repository.get(session, profile.subscriber_id) if profile else None
    if profile is None or subscriber is None or subscriber.status != SubscriberStatus.CONFIRMED:
        return None
    if reader_key is None:
        if subscriber.unsubscribed_at is not None:
            return None
    elif not preferences.same_reader(reader_key, preferences.reader_key_of(subscriber)):
        return None
    state = (
        profile.name,
        profile.phrases,
        profile.categories,
        profile.model_stale,
        profile.model,  # a vote's retraining changes the model, not only the stale mark it leaves
        # Every vote of the reader, in any profile: a voted paper leaves every feed (profile_feed),
        # and a vote on a stale profile changes neither its mark nor its model until it is retrained.
        repository.votes_of(session, subscriber.id),
        subscriber.interest_mix,
        subscriber.papers_per_digest,
        period_for(subscriber),
    )
    return hashlib.blake2b(repr(state).encode(), digest_size=8).hexdigest()


def profile_feed(
    session: Session, *, profile_id: int, encoder: Callable[[], Encoder | None]
) -> ProfileFeed | None:
    """The section the profile gets in its reader's digest, ranked as a digest ranks it; None when
    the profile is gone or its reader is not subscribed. Unlike the email it repeats papers an
    earlier digest or section carried (a feed reader keeps its own history and drops repeats by id),
    but not one the reader voted on: they have seen it, and said so.
    May store the profile's retrained model, as a digest would (profile_fit)."""
    profile = subscriber_repository.get_profile(session, profile_id)
    subscriber = subscriber_repository.get(session, profile.subscriber_id) if profile else None
    if profile is None or subscriber is None or subscriber.status != SubscriberStatus.CONFIRMED:
        return None
    run, period = DigestRun(encoder=encoder), period_for(subscriber)
    pool = run.pool(session, period)
    if pool is None:
        return ProfileFeed(profile=profile, period=period, as_of=None, papers=[])
    sections = compose_sections(
        pool.papers,
        [profile_fit(session, run=run, pool=pool, profile=profile)],
        already_seen={paper_id for _, paper_id, _ in repository.votes_of(session, subscriber.id)},
        mix=subscriber.interest_mix,
        per_section=subscriber.papers_per_digest,
        trending=0,
        period=period,
    )
    entries = sections[0].entries if sections else []
    papers = paper_repository.papers_by_ids(session, [e.paper_id for e in entries])
    chosen = [(papers[e.paper_id], e.reason) for e in entries if e.paper_id in papers]
    return ProfileFeed(profile=profile, period=period, as_of=pool.as_of, papers=chosen)


@dataclass
class _VoteLinks:
    """A digest's "more / less like this" links. A sent digest signs its delivery (and whose
    subscription it went to: preferences.reader_key) once, and each link names the item by its rank
    (`/vote/<signed>/3/more`): the vote finds the item's paper and profile in the ledger. A
    preview, which has no delivery, signs each link's whole vote."""

    base_url: str
    secret: str
    subscriber_id: int
    subscription: int
    delivery_id: int | None
    _signed: str | None = field(default=None, init=False)  # a sent digest's, once made

    def url(self, *, rank: int, paper_id: str, profile_id: int | None, value: int) -> str:
        if self.delivery_id is None:
            # "c": the subscription the digest was made for; a vote link does not outlive it.
            payload = {
                "s": self.subscriber_id,
                "c": self.subscription,
                "p": profile_id,
                "paper": paper_id,
                "v": value,
            }
            return f"{self.base_url}/vote/{signing.sign(self.secret, signing.LinkPurpose.VOTE, payload)}"
        if self._signed is None:
            payload = {
                "d": self.delivery_id,
                "r": preferences.reader_key(self.subscriber_id, self.subscription),
            }
            self._signed = signing.sign(self.secret, signing.LinkPurpose.DIGEST_VOTE, payload)
        return f"{self.base_url}/vote/{self._signed}/{rank}/{VOTE_DIRECTIONS[value]}"


VOTE_DIRECTIONS = {1: "more", -1: "less"}  # the last part of a digest's vote link


def _rendered(sections: list[Section], pool: CandidatePool, *, votes: _VoteLinks) -> list[RenderedSection]:
    """The sections as the templates show them; an item's rank is its place in the whole digest,
    counted from 1 across the sections, as the ledger stores it (service._compose)."""
    rendered: list[RenderedSection] = []
    rank = 0
    for s in sections:
        papers = []
        for e in s.entries:
            rank += 1
            link = functools.partial(votes.url, rank=rank, paper_id=e.paper_id, profile_id=s.profile_id)
            paper = pool.details[e.paper_id]
            parts = pool.parts.get(e.paper_id)
            if parts is None:
                parts = pool.parts[e.paper_id] = paper_parts(paper, votes.base_url)
            papers.append(
                RenderedPaper(
                    paper=paper,
                    reason=e.reason,
                    more_url=link(value=1),
                    less_url=link(value=-1),
                    parts=parts,
                )
            )
        rendered.append(RenderedSection(title=s.title, papers=papers))
    return rendered


def profile_fit(
    session: Session, *, run: DigestRun, pool: CandidatePool, profile: InterestProfile
) -> ProfileFit:
    """Which pool papers belong in the profile and why: its model once it has learned from votes,
    else its phrases (a calibrated match: unusually close for that phrase), and its categories."""
    size = len(pool.papers)
    relevance = np.zeros(size, dtype=np.float32)
    why: list[str | None] = [None] * size
    vectors = run.vectors(session, pool)
    if vectors is None or pool.embedded is None:
        return _by_categories(profile, pool, relevance, why)
    embedded = pool.embedded
    learned = _learned(session, run=run, profile=profile, dim=vectors.shape[1])
    matcher = run.matcher(session) if profile.phrases else None
    phrase_vectors = run.phrase_vectors(profile.phrases) if matcher is not None else None
    best = closest = None
    if matcher is not None and phrase_vectors is not None:
        scores = matcher.scores(profile.phrases, phrase_vectors, pool.texts, vectors)
        best, closest = scores.argmax(axis=1), scores.max(axis=1)
    # Ordered as bench/learning.py measures it: the calibrated match until the profile has learned,
    # then the model blended with the phrases, their share shrinking as votes grow.
    model = learned[0] if learned is not None else None
    relevance = learning.relevance(
        model, vectors=vectors, phrase_vectors=phrase_vectors, phrase_scores=closest
    )
    if learned is not None and learned[1]:
        # Membership by the model needs a liked paper: the reason names the one a paper is closest
        # to, and a model taught only "less like this" knows what the reader does not want, not
        # what they do (it would take in whatever lies farthest from those papers).
        model, liked_ids, liked_titles, liked_vectors = learned
        liked_by_model = model.score(vectors) >= _cutoff(session, run, model)
        for i in np.flatnonzero(liked_by_model & embedded):
            nearest = learning.nearest_liked(vectors[i], liked=liked_vectors, liked_ids=liked_ids)
            if nearest is not None:
                why[i] = f"like '{shortened(liked_titles[nearest[0]], LIKED_TITLE_SHOWN)}'"
    if best is not None and closest is not None:
        # The phrases still count once a model ranks: what the reader typed is what they asked for.
        for i in np.flatnonzero((closest >= matching.MATCHES) & embedded):
            why[i] = why[i] or f"matches '{profile.phrases[int(best[i])]}'"
    return _by_categories(profile, pool, relevance, why)


def _cutoff(session: Session, run: DigestRun, model: learning.ProfileModel) -> float:
    """The score from which a paper belongs in a taught profile: higher than all but LIKE_SHARE of the
    corpus (the background sample) scores. A probability cut at 0.5 would depend on how many
    random papers the model was trained against; a share of the corpus means the same for every profile."""
    background, _ = run.background(session)
    if len(background) == 0 or background.shape[1] != model.dim:
        return 0.5
    return float(np.quantile(model.score(background), 1 - LIKE_SHARE))


def _by_categories(
    profile: InterestProfile, pool: CandidatePool, relevance: np.ndarray[Any, Any], why: list[str | None]
) -> ProfileFit:
    """Papers in one of the profile's arXiv categories belong too, whatever their words; the reason
    names the first of the paper's categories the profile takes in."""
    if profile.categories:
        match = categories.matcher(profile.categories)
        for category in sorted(c for c in pool.by_category if match((c,))):
            for n in pool.by_category[category]:
                if why[n] is None:
                    why[n] = f"in {category}"
    return ProfileFit(profile_id=profile.id, name=profile.name, relevance=relevance.tolist(), why=why)


def _learned(
    session: Session, *, run: DigestRun, profile: InterestProfile, dim: int
) -> tuple[learning.ProfileModel, list[str], dict[str, str], np.ndarray[Any, Any]] | None:
    """The profile's model and its liked papers (for the reason line); None until the profile has
    MIN_VOTES votes on papers the run's embedding model has embedded.

    The stored model is used as it is unless it cannot be: the profile is stale (a vote or an edit
    since), the model is unreadable, or it was trained in another embedding model's space or
    dimension (`dim`, the run's vectors). Then it is trained again from the votes, here, first."""
    model_name = run.model_name
    if model_name is None or (profile.model is None and not profile.model_stale):
        return None  # never taught, or too few votes when it last learned: nothing to load
    model = None if profile.model_stale else _stored(profile, model_name=model_name, dim=dim)
    if model is None and not repository.lock_profile_for_training(session, profile_id=profile.id):
        return None  # deleted meanwhile (a feed's request; a digest batch holds its reader)
    votes = repository.profile_votes(session, profile_id=profile.id, model=model_name)
    embedded = [v for v in votes if v.embedding is not None]
    if model is None:
        model = _train(session, run=run, profile=profile, votes=embedded, waiting=len(votes) - len(embedded))
    if model is None or model.dim != dim:
        return None
    liked = [v for v in embedded if v.vote > 0]
    liked_vectors = _matrix([v.embedding for v in liked], dim)
    return model, [v.paper_id for v in liked], {v.paper_id: v.title for v in liked}, liked_vectors


def _stored(profile: InterestProfile, *, model_name: str, dim: int) -> learning.ProfileModel | None:
    """The profile's stored model if it ranks in this run's space; None when it must be trained again."""
    try:
        model = learning.ProfileModel.from_json(profile.model)
    except ValueError as error:  # a hand edit, a downgrade past a newer format: learn again from the votes
        log.warning("profile %d: stored model unreadable (%s); training it again", profile.id, error)
        return None
    return model if model.embedding_model == model_name and model.dim == dim else None


def _train(
    session: Session, *, run: DigestRun, profile: InterestProfile, votes: list[Any], waiting: int
) -> learning.ProfileModel | None:
    """Train on `votes` (each with its vector) and store the result; `waiting` votes are on papers not
    embedded yet, so the profile stays stale and learns them once they are."""
    model = None
    if len(votes) >= learning.MIN_VOTES:
        dim = len(votes[0].embedding)
        phrases = run.phrase_vectors(profile.phrases)
        background, _ = run.background(session)
        model = learning.train(
            liked=_matrix([v.embedding for v in votes if v.vote > 0], dim),
            disliked=_matrix([v.embedding for v in votes if v.vote < 0], dim),
            phrases=phrases
            if phrases is not None and phrases.shape[1] == dim
            else np.zeros((0, dim), np.float32),
            background=background if background.shape[1] == dim else np.zeros((0, dim), np.float32),
        )
        model = replace(model, embedding_model=run.model_name)
    stored = model.to_json() if model else None
    repository.save_model(session, profile_id=profile.id, model=stored, stale=waiting > 0)
    return model


def _matrix(rows: list[Any], dim: int) -> np.ndarray[Any, Any]:
    return np.asarray([np.asarray(r, np.float32) for r in rows], np.float32).reshape(len(rows), dim)


def view_html(session: Session, *, delivery_id: int, settings: Settings) -> str | None:
    """The digest as a web page: the papers, reasons and sections it was sent with; None when the
    delivery carried nothing. Without the reader's own links (unsubscribe, manage, votes): anyone
    the view link is forwarded to sees the papers, not the controls."""
    delivery = repository.get_delivery(session, delivery_id)
    rows = repository.delivery_items(session, delivery_id=delivery_id) if delivery else []
    if delivery is None or not rows:
        return None
    sections: list[RenderedSection] = []
    for row in rows:
        if not sections or sections[-1].title != row.section:
            sections.append(RenderedSection(title=row.section, papers=[]))
        paper = DigestPaper(row.id, row.title, list(row.authors or []), row.abstract)
        sections[-1].papers.append(
            RenderedPaper(paper=paper, reason=row.reason, parts=paper_parts(paper, settings.base_url))
        )
    as_of = delivery.as_of_date
    return digest_html(
        digest_date=delivery.digest_date,
        as_of=as_of if as_of and as_of < delivery.digest_date else None,
        sections=sections,
        base_url=settings.base_url,
    )
