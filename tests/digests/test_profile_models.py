"""A profile's stored model over time: it is trained again whenever it cannot be trusted (unreadable,
from another embedding model, stale), no vote is lost on the way, and a bad one costs the reader
nothing. What a reader would notice: a digest that stops coming, votes that stop counting."""

from __future__ import annotations

import threading
import time
from datetime import date
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from papertide import db
from papertide.digests import build, learning
from papertide.digests import repository as digest_repository
from papertide.digests.candidates import DigestRun
from papertide.digests.mailer import SmtpMailer
from papertide.models import (
    DigestItem,
    InterestProfile,
    Paper,
    PaperEmbedding,
    PaperVote,
    Subscriber,
    SubscriberStatus,
)
from papertide.subscribers import preferences
from papertide.worker import ingest as ingest_jobs
from papertide.worker import jobs
from tests.factories import FakeEncoder
from tests.helpers import FIXTURES, Inbox, lock_waiters

DAY = FIXTURES / "hf_daily_papers" / "2026-08-21.json"
DIGEST_DAY = date(2026, 8, 22)


class WiderEncoder(FakeEncoder):
    dim = 256


def reader(session: Session, encoder: FakeEncoder) -> tuple[int, int, list[str]]:
    """A day of papers, scored and embedded; a confirmed reader with one profile; the embedded ids."""
    ingest_jobs.ingest_hf_files([DAY])
    jobs.score()
    jobs.embed(encoder=encoder, batch_size=256)
    subscriber = Subscriber(
        email="r@example.org", status=SubscriberStatus.CONFIRMED, papers_per_digest=5, interest_mix=0.7
    )
    session.add(subscriber)
    session.flush()
    profile = preferences.add_profile(
        session, subscriber=subscriber, name="Agents", phrases="language model agents", categories=""
    )
    session.commit()
    embedded = select(Paper.id).join(PaperEmbedding, PaperEmbedding.paper_id == Paper.id).order_by(Paper.id)
    return subscriber.id, profile.id, list(session.scalars(embedded))


def vote(session: Session, subscriber_id: int, profile_id: int, papers: list[str], value: int = 1) -> None:
    for paper in papers:
        preferences.record_vote(
            session, subscriber_id=subscriber_id, profile_id=profile_id, paper_id=paper, vote=value
        )
    session.commit()


def learn(encoder: FakeEncoder, profile_id: int) -> Any:
    """What a digest run does for the profile: its model, trained first if it must be; committed."""
    with db.session_factory()() as session:
        run = DigestRun(encoder=lambda: encoder)
        learned = build._learned(
            session, run=run, profile=session.get_one(InterestProfile, profile_id), dim=encoder.dim
        )
        session.commit()
    return learned


def stored(session: Session, profile_id: int) -> tuple[learning.ProfileModel | None, bool]:
    session.expire_all()
    profile = session.get_one(InterestProfile, profile_id)
    model = None if profile.model is None else learning.ProfileModel.from_json(profile.model)
    return model, profile.model_stale


@pytest.mark.parametrize(
    "broken",
    [
        {"version": 2, "weights": [0.1] * 384, "bias": 0.0, "votes": 3},  # a later release's format
        {"version": 1, "weights": [0.1] * 128, "bias": 0.0, "votes": 3, "embedding_model": "fake-encoder"},
        {"version": 1, "weights": [0.1] * 384, "bias": 10**400, "votes": 3},
        [1, 2, 3],
    ],
    ids=["newer-format", "other-dimension", "huge-number", "not-an-object"],
)
def test_a_stored_model_that_cannot_be_used_is_trained_again_and_the_digest_goes_out(
    session: Session, smtp: tuple[Inbox, SmtpMailer], broken: object
) -> None:
    """A downgrade past a newer format, a hand edit: the reader's digest still comes, not a retry
    every day; the profile learns again from its votes."""
    encoder = FakeEncoder()
    subscriber_id, profile_id, papers = reader(session, encoder)
    vote(session, subscriber_id, profile_id, papers[:2])
    session.execute(
        update(InterestProfile)
        .where(InterestProfile.id == profile_id)
        .values(model=broken, model_stale=False)
    )
    session.commit()
    inbox, mailer = smtp

    result = jobs.send_digests(digest_date=DIGEST_DAY, mailer=mailer, encoder=encoder)

    assert result.sent == 1
    assert len(inbox.messages) == 1
    model, stale = stored(session, profile_id)
    assert model is not None
    assert (model.votes, model.embedding_model, model.dim, stale) == (2, "fake-encoder", 384, False)


def test_a_new_embedding_model_of_the_same_dimension_trains_every_taught_profile_again(
    session: Session,
) -> None:
    """Weights learned in one model's space rank nonsense in another's, even at the same width."""
    subscriber_id, profile_id, papers = reader(session, FakeEncoder())
    vote(session, subscriber_id, profile_id, papers[:3])
    learn(FakeEncoder(), profile_id)
    assert stored(session, profile_id)[0].embedding_model == "fake-encoder"  # type: ignore[union-attr]
    other = FakeEncoder(name="another-384-dimension-model")
    jobs.embed(encoder=other, batch_size=256)

    learned = learn(other, profile_id)

    model, stale = stored(session, profile_id)
    assert learned is not None
    assert model is not None
    assert (model.embedding_model, model.votes, stale) == ("another-384-dimension-model", 3, False)


def test_votes_on_papers_a_new_model_has_not_embedded_yet_are_learned_once_it_has(
    session: Session, smtp: tuple[Inbox, SmtpMailer]
) -> None:
    """Re-embedding goes newest first: the reader's older votes wait for it. Meanwhile the digest
    comes (ranked by the phrases), and when the model has embedded them, all three votes count."""
    subscriber_id, profile_id, papers = reader(session, FakeEncoder())
    voted = papers[:3]
    vote(session, subscriber_id, profile_id, voted)
    learn(FakeEncoder(), profile_id)
    wider = WiderEncoder(name="wider-model")
    jobs.embed(encoder=wider, batch_size=256)
    session.execute(
        delete(PaperEmbedding).where(
            PaperEmbedding.paper_id.in_(voted[1:]), PaperEmbedding.model == "wider-model"
        )
    )
    session.commit()
    _, mailer = smtp

    assert jobs.send_digests(digest_date=DIGEST_DAY, mailer=mailer, encoder=wider).sent == 1
    model, stale = stored(session, profile_id)
    assert model is None  # one vote of three embedded: too few to learn from yet
    assert stale  # ...and the other two still to come

    jobs.embed(encoder=wider, batch_size=256)  # the re-embedding reaches them
    learned = learn(wider, profile_id)

    model, stale = stored(session, profile_id)
    assert learned is not None
    assert model is not None
    assert (model.votes, model.dim, stale) == (3, 256, False)


def test_a_vote_on_a_paper_not_embedded_yet_counts_once_it_is(session: Session) -> None:
    """A Trending item can be a paper the worker has not embedded yet; its vote is kept for later."""
    encoder = FakeEncoder()
    subscriber_id, profile_id, papers = reader(session, encoder)
    session.execute(delete(PaperEmbedding).where(PaperEmbedding.paper_id == papers[1]))
    session.commit()
    vote(session, subscriber_id, profile_id, papers[:2])

    assert learn(encoder, profile_id) is None
    assert stored(session, profile_id) == (None, True)

    jobs.embed(encoder=encoder, batch_size=256)
    learned = learn(encoder, profile_id)

    model, stale = stored(session, profile_id)
    assert learned is not None
    assert model is not None
    assert (model.votes, stale) == (2, False)


def test_a_vote_that_lands_while_its_profile_is_trained_is_learned_next_time(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader clicks "more like this" in a browser while a digest run trains the profile: the
    vote waits for the run's save and marks the profile stale after it, never lost between them."""
    encoder = FakeEncoder()
    subscriber_id, profile_id, papers = reader(session, encoder)
    vote(session, subscriber_id, profile_id, papers[:2])
    read_votes = digest_repository.profile_votes
    voter: list[threading.Thread] = []

    def a_vote_arrives(web_session: Session, **kwargs: Any) -> Any:
        rows = read_votes(web_session, **kwargs)

        def click() -> None:
            with db.session_factory()() as web:
                vote(web, subscriber_id, profile_id, [papers[2]])

        voter.append(threading.Thread(target=click))
        voter[0].start()
        deadline = time.monotonic() + 30
        while voter[0].is_alive() and lock_waiters() == 0:  # it commits, or it waits for the run
            assert time.monotonic() < deadline
            time.sleep(0.02)
        return rows

    monkeypatch.setattr(digest_repository, "profile_votes", a_vote_arrives)
    learned = learn(encoder, profile_id)
    voter[0].join(30)

    model, stale = stored(session, profile_id)
    votes = session.scalar(
        select(func.count()).select_from(PaperVote).where(PaperVote.profile_id == profile_id)
    )
    assert learned is not None
    assert model is not None
    assert (model.votes, votes) == (2, 3)
    assert stale  # the next run learns the third


def test_less_like_this_alone_brings_no_paper_into_a_profile(session: Session) -> None:
    """Two "less like this" votes teach what the reader does not want; they must not fill the section
    with whatever lies farthest from those papers, under a reason naming no liked paper."""
    encoder = FakeEncoder()
    subscriber_id, profile_id, papers = reader(session, encoder)
    session.execute(
        update(InterestProfile)
        .where(InterestProfile.id == profile_id)
        .values(phrases=[], categories=["cs.RO"])
    )
    session.commit()
    vote(session, subscriber_id, profile_id, papers[:2], value=-1)
    run = DigestRun(encoder=lambda: encoder)
    pool = run.pool(session, "week")
    assert pool is not None

    fit = build.profile_fit(session, run=run, pool=pool, profile=session.get_one(InterestProfile, profile_id))

    assert stored(session, profile_id)[0] is not None  # it learned...
    reasons = {why for why in fit.why if why is not None}
    assert reasons <= {"in cs.RO"}  # ...but only the profile's category brings papers in


def test_a_profiles_feed_is_a_new_version_once_a_vote_has_retrained_it(session: Session) -> None:
    """A feed reader polling with its ETag gets the feed the votes changed, not a 304 for the old one."""
    encoder = FakeEncoder()
    subscriber_id, profile_id, papers = reader(session, encoder)
    vote(session, subscriber_id, profile_id, papers[:2])
    learn(encoder, profile_id)

    def version() -> str | None:
        with db.session_factory()() as fresh:
            return build.profile_feed_version(fresh, profile_id=profile_id, reader_key=None)

    before = version()
    vote(session, subscriber_id, profile_id, papers[2:4], value=-1)
    learn(encoder, profile_id)  # tonight's run learns the votes and clears the stale mark

    assert stored(session, profile_id)[1] is False
    assert before is not None
    assert version() not in (None, before)


def test_a_reason_names_a_liked_paper_by_the_first_words_of_its_title(
    session: Session, smtp: tuple[Inbox, SmtpMailer]
) -> None:
    """A liked title of thousands of characters (a row from a broken source), or one with a
    direction override that would reverse the rest of the line, is cut to a glance in "like '...'"."""
    encoder = FakeEncoder()
    subscriber_id, profile_id, papers = reader(session, encoder)
    vote(session, subscriber_id, profile_id, papers[:3])
    long_title = "\u202eLiked paper on agents " + "W" * 20_000
    session.execute(update(Paper).where(Paper.id.in_(papers[:3])).values(title=long_title))
    # Three papers the reader has not seen lie where the liked ones do: the digest offers them (a
    # voted paper itself never comes back), "like" the liked paper each is a copy of.
    for liked, unseen in zip(papers[:3], papers[3:6], strict=True):
        vector = session.scalars(
            select(PaperEmbedding.embedding).where(PaperEmbedding.paper_id == liked)
        ).one()
        session.execute(
            update(PaperEmbedding).where(PaperEmbedding.paper_id == unseen).values(embedding=vector)
        )
    session.commit()
    inbox, mailer = smtp

    assert jobs.send_digests(digest_date=DIGEST_DAY, mailer=mailer, encoder=encoder).sent == 1

    reasons = [r for r in session.scalars(select(DigestItem.reason)) if r and r.startswith("like '")]
    assert reasons, "a taught profile names the liked paper an item is closest to"
    assert all(r.startswith("like 'Liked paper on agents…'") for r in reasons), reasons
    text = inbox.messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "like 'Liked paper on agents…'" in text


def test_a_paper_the_reader_voted_on_comes_back_neither_in_a_digest_nor_in_the_profiles_feed(
    session: Session, smtp: tuple[Inbox, SmtpMailer]
) -> None:
    """A vote from a paper page (that paper never came in a digest): "more like this" means they have
    it, "less like this" that they do not want it. Neither is offered again, in any section, and no
    reason line names a paper as like itself."""
    encoder = FakeEncoder()
    subscriber_id, profile_id, papers = reader(session, encoder)
    session.execute(update(Subscriber).values(trending_papers=50))  # every paper of the week fits
    session.commit()
    vote(session, subscriber_id, profile_id, papers[:2], value=1)
    vote(session, subscriber_id, profile_id, papers[2:4], value=-1)
    _, mailer = smtp

    assert jobs.send_digests(digest_date=DIGEST_DAY, mailer=mailer, encoder=encoder).sent == 1
    feed = build.profile_feed(session, profile_id=profile_id, encoder=lambda: encoder)

    carried = set(session.scalars(select(DigestItem.paper_id)))
    assert carried, "the rest of the week still came"
    assert not carried & set(papers[:4])
    assert feed is not None
    assert not {paper.id for paper, _ in feed.papers} & set(papers[:4])
