"""Embedding steps: make the model's index, count what is stale, embed one claimed batch.

The loop that repeats `embed_batch`, one transaction per batch, is the edge's (worker.jobs.embed):
a killed run keeps every committed batch and resumes with the rest.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from papertide.embeddings import repository
from papertide.embeddings.encoder import Encoder, paper_text


def ensure_index(session: Session, *, encoder: Encoder) -> None:
    """Make sure the model's index exists (upgraded databases, new models) before the first search needs it."""
    repository.ensure_index(session, model=encoder.name, dim=encoder.dim)


def pending_count(session: Session, *, encoder: Encoder) -> int:
    """How many papers have no embedding from this model for their current text."""
    return repository.count_stale(session, model=encoder.name)


def embed_batch(session: Session, *, encoder: Encoder, batch_size: int) -> int:
    """Claim, encode and write one batch in the caller's transaction; returns how many papers it embedded."""
    papers = repository.claim_stale(session, model=encoder.name, limit=batch_size)
    if not papers:
        return 0
    vectors = encoder.encode([paper_text(p.title, p.abstract) for p in papers])
    repository.write_embeddings(session, papers, vectors, model=encoder.name)
    return len(papers)
