"""Embedding steps: make the model's index, count what is stale, embed one claimed batch, rebuild the index.

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


def refresh_index(session: Session, *, encoder: Encoder, fresh_limit: int) -> int | None:
    """Rebuild the model's HNSW index once `fresh_limit` vectors came after it; the vectors it holds, or None."""
    return repository.refresh_graph(session, model=encoder.name, dim=encoder.dim, fresh_limit=fresh_limit)


def drop_old_indexes(session: Session, *, encoder: Encoder) -> int:
    """Drop the model's HNSW indexes a newer one replaced; `session` must autocommit. How many went."""
    return len(repository.drop_old_graphs(session, model=encoder.name, dim=encoder.dim))


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
