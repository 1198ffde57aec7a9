"""Embed every stale paper, one committed batch at a time, so a killed run resumes where it stopped."""

from __future__ import annotations

import logging
import threading

from tqdm import tqdm

from papertide.db import unit_of_work
from papertide.embeddings import repository
from papertide.embeddings.encoder import Encoder, paper_text
from papertide.embeddings.indexes import ensure_index

log = logging.getLogger(__name__)


def pending_count(*, model: str) -> int:
    with unit_of_work() as session:
        return repository.count_stale(session, model=model)


def embed_batch(*, encoder: Encoder, batch_size: int) -> int:
    """Claim, encode and write one batch in one transaction; returns how many papers it embedded."""
    with unit_of_work() as session:
        papers = repository.claim_stale(session, model=encoder.name, limit=batch_size)
        if not papers:
            return 0
        vectors = encoder.encode([paper_text(p.title, p.abstract) for p in papers])
        repository.write_embeddings(session, papers, vectors, model=encoder.name)
        return len(papers)


def embed_pending(
    *,
    encoder: Encoder,
    batch_size: int = 64,
    max_batches: int | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Embed until nothing is stale (or `max_batches`, or `stop`); returns the number embedded."""
    with unit_of_work() as session:
        # Upgraded databases and new models get their index before the first search needs it.
        ensure_index(session, model=encoder.name, dim=encoder.dim)
    total = pending_count(model=encoder.name)
    done = batches = 0
    with tqdm(total=total, desc="embed", unit="paper", disable=not progress or total == 0) as bar:
        while max_batches is None or batches < max_batches:
            if stop is not None and stop.is_set():
                break
            count = embed_batch(encoder=encoder, batch_size=batch_size)
            if count == 0:
                break
            done += count
            batches += 1
            bar.update(count)
    return done
