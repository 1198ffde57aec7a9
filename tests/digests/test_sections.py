"""A reader with two interest profiles gets one email with a section for each and a Trending
section; reasons say why; votes in a profile change what its next section holds. Real model,
real database (the bundled sample), real SMTP."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.digests import build, candidates
from papertide.digests.mailer import SmtpMailer
from papertide.embeddings import repository as embedding_repository
from papertide.embeddings.encoder import paper_text
from papertide.models import (
    DigestItem,
    InterestProfile,
    Paper,
    PaperEmbedding,
    PaperVote,
    Subscriber,
    SubscriberStatus,
)
from papertide.ranking import repository as ranking_repository
from papertide.signing import LinkPurpose, verify
from papertide.subscribers import preferences
from papertide.subscribers import repository as subscriber_repository
from papertide.templating import shortened
from papertide.worker import jobs
from tests.helpers import Inbox

DAY_ONE = date(2026, 11, 24)
DAY_TWO = date(2026, 11, 25)
POOL = 200


def reader_with_profiles(session: Session) -> tuple[int, int, int]:
    subscriber = subscriber_repository.add(
        session, email="r@example.org", papers_per_digest=4, interest_mix=0.7
    )
    subscriber.status = SubscriberStatus.CONFIRMED
    subscriber.trending_papers = 3
    session.flush()
    speech = InterestProfile(
        subscriber_id=subscriber.id,
        name="Speech",
        phrases=["speech recognition", "text to speech"],
        position=0,
    )
    video = InterestProfile(
        subscriber_id=subscriber.id, name="Video", phrases=["video generation"], position=1
    )
    session.add_all([speech, video])
    session.commit()
    return subscriber.id, speech.id, video.id


def sections_of(html: str) -> list[str]:
    return re.findall(r"<h2[^>]*>([^<]+)</h2>", html)


def embed_pool(session: Session, encoder: Any, size: int) -> None:
    """Embed the week's top `size` papers (the digest's candidates) with the real model."""
    papers = [p for p, _ in ranking_repository.trending(session, period="week", limit=size)]
    vectors = encoder.encode([paper_text(p.title, p.abstract) for p in papers])
    embedding_repository.write_embeddings(session, papers, vectors, model=encoder.name)
    session.commit()


def test_two_profiles_two_sections_then_votes_teach_the_first(
    sample_database: str,
    real_encoder: object,
    smtp: tuple[Inbox, SmtpMailer],
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, mailer = smtp
    monkeypatch.setattr(candidates, "CANDIDATE_POOL", POOL)  # the sample's week, embedded in seconds
    embed_pool(session, real_encoder, POOL)
    subscriber_id, speech_id, video_id = reader_with_profiles(session)

    assert jobs.send_digests(digest_date=DAY_ONE, mailer=mailer, encoder=real_encoder).sent == 1  # type: ignore[arg-type]

    digest = inbox.messages[-1]
    html = digest.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert sections_of(html) == ["Speech", "Video", "Trending"]
    items = session.execute(select(DigestItem).order_by(DigestItem.rank)).scalars().all()
    by_section = {s: [i for i in items if i.section == s] for s in ("Speech", "Video", "Trending")}
    assert all(i.profile_id == speech_id for i in by_section["Speech"])
    assert all(i.profile_id == video_id for i in by_section["Video"])
    assert len(by_section["Trending"]) == 3
    # Every interest item says which phrase it matched, and where it stands this week.
    for item in by_section["Speech"]:
        assert re.match(r"matches '(speech recognition|text to speech)' · #\d+ this week", item.reason), (
            item.reason
        )
        paper = session.get_one(Paper, item.paper_id)
        assert re.search(r"speech|voice|audio|spoken|asr|tts", f"{paper.title} {paper.abstract}".lower())
    for item in by_section["Trending"]:
        assert re.match(r"#\d+ this week", item.reason)

    # Each item's vote links sign the digest once and name the item by its rank in the ledger.
    votes = re.findall(r'href="http://testserver/vote/([^"]+)"', html)
    assert len(votes) == 2 * len(items)
    signed = {v.split("/")[0] for v in votes}
    assert len(signed) == 1
    delivery = verify(get_settings().resolved_secret_key(), LinkPurpose.DIGEST_VOTE, signed.pop()).payload
    reader = session.get_one(Subscriber, subscriber_id)
    key = preferences.reader_key(reader.id, preferences.subscription_stamp(reader))
    assert delivery == {"d": items[0].delivery_id, "r": key}
    by_rank = sorted(items, key=lambda i: i.rank)
    assert [v.split("/", 1)[1] for v in votes] == [
        f"{i.rank}/{direction}" for i in by_rank for direction in ("more", "less")
    ]

    # The view-in-browser page shows the same sections and papers as the email.
    view = re.search(r'href="http://testserver/digest/([^"]+)"', html)
    assert view is not None
    delivery_id = verify(get_settings().resolved_secret_key(), LinkPurpose.VIEW, view.group(1)).payload["d"]
    page = build.view_html(session, delivery_id=delivery_id, settings=get_settings())
    assert page is not None
    assert sections_of(page) == ["Speech", "Video", "Trending"]
    for item in items:
        assert session.get_one(Paper, item.paper_id).title.replace("&", "&amp;")[:30] in page.replace(
            "&#39;", "'"
        )

    # The reader votes "more like this" on speech-recognition papers, "less" on text to speech.
    embedded = select(PaperEmbedding.paper_id)
    liked = session.scalars(
        select(Paper.id).where(
            Paper.id.in_(embedded),
            Paper.title.ilike("%speech%") | Paper.abstract.ilike("%speech recognition%"),
        )
    ).all()[:4]
    disliked = session.scalars(
        select(Paper.id).where(Paper.id.in_(embedded), Paper.title.ilike("%video%"))
    ).all()[:2]
    assert len(liked) >= 2
    for pid in liked:
        session.add(PaperVote(profile_id=speech_id, paper_id=pid, vote=1))
    for pid in disliked:
        session.add(PaperVote(profile_id=speech_id, paper_id=pid, vote=-1))
    session.get_one(InterestProfile, speech_id).model_stale = True
    session.commit()

    assert jobs.send_digests(digest_date=DAY_TWO, mailer=mailer, encoder=real_encoder).sent == 1  # type: ignore[arg-type]

    session.expire_all()
    profile = session.get_one(InterestProfile, speech_id)
    assert profile.model is not None
    assert not profile.model_stale
    liked_titles = {shortened(session.get_one(Paper, pid).title, build.LIKED_TITLE_SHOWN) for pid in liked}
    second = session.scalars(
        select(DigestItem).where(
            DigestItem.section == "Speech", DigestItem.delivery_id != items[0].delivery_id
        )
    ).all()
    assert second, "the taught profile still has a section"
    # The reason names the liked paper an item is closest to.
    assert any(t in i.reason for t in liked_titles for i in second)
    assert all(i.reason.startswith(("like '", "matches '")) for i in second)


def test_before_any_vote_a_profile_ranks_by_its_calibrated_match(
    sample_database: str, real_encoder: Any, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order a section is ranked in is the score its reason line reads ("matches"), not a
    plain cosine: the two disagree on many papers, and bench/learning.py measures the former."""
    monkeypatch.setattr(candidates, "CANDIDATE_POOL", POOL)
    embed_pool(session, real_encoder, POOL)
    _, speech_id, _ = reader_with_profiles(session)
    run = candidates.DigestRun(encoder=lambda: real_encoder)
    pool = run.pool(session, "week")
    assert pool is not None
    profile = session.get_one(InterestProfile, speech_id)

    fit = build.profile_fit(session, run=run, pool=pool, profile=profile)

    vectors, phrase_vectors, matcher = (
        run.vectors(session, pool),
        run.phrase_vectors(profile.phrases),
        run.matcher(session),
    )
    assert vectors is not None
    assert phrase_vectors is not None
    assert matcher is not None
    calibrated = matcher.scores(profile.phrases, phrase_vectors, pool.texts, vectors).max(axis=1)
    cosine = (vectors @ phrase_vectors.T).max(axis=1)
    assert list(fit.relevance) == pytest.approx(calibrated.tolist())
    assert list(np.argsort(-calibrated)[:10]) != list(
        np.argsort(-cosine)[:10]
    )  # the test can tell them apart
