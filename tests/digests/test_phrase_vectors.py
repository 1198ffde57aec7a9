"""Interest phrases are encoded once, not by every digest run: a run stores the vectors it made
(keyed by model and phrase), the next run of the same model reads them, and the scheduler forgets
the phrases no profile holds any more. Real model, real database (the bundled sample), real SMTP."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from papertide.digests import candidates
from papertide.digests import repository as digest_repository
from papertide.digests import service as digest_service
from papertide.digests.mailer import SmtpMailer
from papertide.models import DigestItem, InterestProfile, PhraseEmbedding
from papertide.worker import jobs
from tests.digests.test_sections import POOL, embed_pool, reader_with_profiles
from tests.helpers import Inbox


class Counting:
    """The real encoder, with every text it was asked to encode written down."""

    def __init__(self, encoder: Any, *, name: str | None = None) -> None:
        self.encoder = encoder
        self.name = name or encoder.name
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> Any:
        self.encoded.extend(texts)
        return self.encoder.encode(texts)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.encoder, attribute)


def stored(session: Session) -> dict[tuple[str, str], list[float]]:
    session.expire_all()
    rows = session.scalars(select(PhraseEmbedding)).all()
    return {(r.model, r.phrase): list(r.embedding) for r in rows}


def speech_reasons(session: Session) -> list[str]:
    rows = session.scalars(select(DigestItem).where(DigestItem.section == "Speech")).all()
    return [r.reason for r in rows]


def test_a_run_encodes_only_the_phrases_no_earlier_run_of_its_model_stored(
    sample_database: str,
    real_encoder: Any,
    smtp: tuple[Inbox, SmtpMailer],
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, mailer = smtp
    monkeypatch.setattr(candidates, "CANDIDATE_POOL", POOL)
    embed_pool(session, real_encoder, POOL)
    _, speech_id, video_id = reader_with_profiles(session)
    phrases = {"speech recognition", "text to speech", "video generation"}

    first = Counting(real_encoder)
    assert jobs.send_digests(digest_date=date(2026, 11, 24), mailer=mailer, encoder=first).sent == 1
    assert phrases <= set(first.encoded)
    kept = stored(session)
    assert {p for _, p in kept} == phrases
    assert all(model == real_encoder.name for model, _ in kept)
    vector = kept[(real_encoder.name, "speech recognition")]
    assert vector == pytest.approx(list(real_encoder.encode(["speech recognition"])[0]), abs=1e-5)
    matched = [r for r in speech_reasons(session) if r.startswith("matches '")]
    assert matched, "the first digest matched the Speech phrases"

    # The next day: nothing to encode, and the stored vectors match the same papers (the first
    # day's papers forgotten, so that the digest may carry them again).
    session.execute(delete(DigestItem))
    session.commit()
    second = Counting(real_encoder)
    assert jobs.send_digests(digest_date=date(2026, 11, 25), mailer=mailer, encoder=second).sent == 1
    assert not phrases & set(second.encoded)
    assert [r for r in speech_reasons(session) if r.startswith("matches '")] == matched
    assert len(inbox.messages) == 2

    # A phrase added to a profile is the only one encoded the day after.
    profile = session.get_one(InterestProfile, speech_id)
    profile.phrases = [*profile.phrases, "speech synthesis"]
    session.commit()
    third = Counting(real_encoder)
    assert jobs.send_digests(digest_date=date(2026, 11, 26), mailer=mailer, encoder=third).sent == 1
    assert [t for t in third.encoded if t in phrases | {"speech synthesis"}] == ["speech synthesis"]

    # Another model's vectors are never read for this one: a run of it encodes every phrase.
    other = Counting(real_encoder, name="another-model")
    assert jobs.send_digests(digest_date=date(2026, 11, 27), mailer=mailer, encoder=other).sent == 1
    assert phrases | {"speech synthesis"} <= set(other.encoded)
    assert {m for m, _ in stored(session)} == {real_encoder.name, "another-model"}

    # A phrase no profile holds any more is forgotten (both models' vectors of it); the rest stay.
    session.delete(session.get_one(InterestProfile, video_id))
    session.commit()
    assert digest_service.prune_phrase_vectors(session) == 2
    session.commit()
    assert {p for _, p in stored(session)} == {"speech recognition", "text to speech", "speech synthesis"}


def test_phrase_vectors_that_cannot_be_stored_still_serve_the_run(
    sample_database: str,
    real_encoder: Any,
    smtp: tuple[Inbox, SmtpMailer],
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Storing is a saving, not a step the digest needs: when it fails the run goes on with the
    vectors it encoded, and the next run encodes them again."""
    inbox, mailer = smtp
    monkeypatch.setattr(candidates, "CANDIDATE_POOL", POOL)
    embed_pool(session, real_encoder, POOL)
    reader_with_profiles(session)

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("phrase_embedding is not writable")

    monkeypatch.setattr(digest_repository, "store_phrase_vectors", refuse)
    counting = Counting(real_encoder)
    assert jobs.send_digests(digest_date=date(2026, 11, 24), mailer=mailer, encoder=counting).sent == 1
    assert stored(session) == {}
    assert counting.encoded.count("speech recognition") == 1  # not once per reader or profile
    assert len(inbox.messages) == 1
    assert re.search(r"matches '(speech recognition|text to speech)'", " ".join(speech_reasons(session)))


def test_a_loaded_model_other_than_the_configured_one_stores_and_matches_no_new_phrase(
    real_encoder: Any,
) -> None:
    """A long-lived process loaded its model before EMBEDDING_MODEL named another: its vectors must
    not be stored (nor read) as the configured model's."""
    loaded = Counting(real_encoder, name="the-model-loaded-before")
    run = candidates.DigestRun(encoder=lambda: loaded, model="the-configured-model")
    run.remember_phrases({"known": np.ones(384, np.float32)})
    assert run.phrase_vectors(["new phrase"]) is None
    assert loaded.encoded == []
    known = run.phrase_vectors(["known"])  # what the configured model's runs stored still serves
    assert known is not None
    assert known.shape == (1, 384)
