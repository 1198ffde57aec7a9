"""What every digest of one run shares, loaded once: the trending pool of each period with its
vectors, the background sample that calibrates phrase matches, and the phrase vectors.

A run composes thousands of digests; nearly all the work of one (the trending query, the candidate
vectors, encoding phrases that many readers share) is the same for every reader, so it lives
here for the length of the run and each digest only does its own arithmetic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session

from papertide.digests import matching, repository
from papertide.digests.compose import PoolPaper
from papertide.digests.matching import PaperText
from papertide.embeddings.encoder import Encoder
from papertide.ranking import repository as ranking_repository

if TYPE_CHECKING:
    from papertide.digests.render import PaperParts

log = logging.getLogger(__name__)

CANDIDATE_POOL = 500  # the period's top papers by trend that a digest chooses from
BACKGROUND_SAMPLE = 2000  # random papers a phrase is compared with, and a profile's weak negatives


@dataclass(frozen=True)
class DigestPaper:
    """What an email shows of a paper."""

    id: str
    title: str
    authors: list[str]
    abstract: str


@dataclass
class CandidatePool:
    period: str
    as_of: date
    papers: list[PoolPaper]
    details: dict[str, DigestPaper]
    texts: list[PaperText]
    # Each category the pool's papers carry, with the papers (positions in `papers`) that carry it:
    # a profile's categories are looked up once each, not tested against every paper.
    by_category: dict[str, list[int]]
    # (len(papers), dim) unit vectors, zeros where a paper has none yet; loaded on first use, so a
    # run whose readers have no interests never loads the model.
    vectors: np.ndarray[Any, Any] | None = None
    vectors_loaded: bool = False
    embedded: np.ndarray[Any, Any] | None = None  # which rows of `vectors` are real vectors
    # Each paper's own parts of a digest item, written for the first reader it goes to.
    parts: dict[str, PaperParts] = field(default_factory=dict)


class DigestRun:
    """The caches of one digest run. Not shared between runs: the next run sees new scores."""

    def __init__(self, *, encoder: Callable[[], Encoder | None], model: str | None = None) -> None:
        """`model`: the name of the model `encoder` loads, where it is known without loading it (a
        run whose phrases were all stored by earlier runs then never loads the model)."""
        self._encoder = encoder
        self._model = model
        self._pools: dict[str, CandidatePool | None] = {}
        self._phrases: dict[str, np.ndarray[Any, Any]] = {}
        self._background: tuple[np.ndarray[Any, Any], list[str]] | None = None
        self._matcher: matching.PhraseMatcher | None = None

    @property
    def model_name(self) -> str | None:
        if self._model is not None:
            return self._model
        encoder = self._encoder()
        return encoder.name if encoder is not None else None

    def pool(self, session: Session, period: str) -> CandidatePool | None:
        if period not in self._pools:
            self._pools[period] = self._load_pool(session, period)
        return self._pools[period]

    def _load_pool(self, session: Session, period: str) -> CandidatePool | None:
        rows = ranking_repository.trending(session, period=period, limit=CANDIDATE_POOL)
        if not rows:
            return None
        papers, details, texts = [], {}, []
        by_category: dict[str, list[int]] = {}
        for rank, (paper, score) in enumerate(rows, start=1):
            papers.append(PoolPaper(paper.id, score.score, score.components, rank))
            details[paper.id] = DigestPaper(paper.id, paper.title, list(paper.authors or []), paper.abstract)
            texts.append(
                PaperText(paper.id, f"{paper.title} {paper.abstract}", tuple(paper.categories or ()))
            )
            for category in dict.fromkeys(paper.categories or ()):
                by_category.setdefault(category, []).append(rank - 1)
        return CandidatePool(
            period=period,
            as_of=rows[0][1].as_of.date(),
            papers=papers,
            details=details,
            texts=texts,
            by_category=by_category,
        )

    def vectors(self, session: Session, pool: CandidatePool) -> np.ndarray[Any, Any] | None:
        """The pool's vectors from the run's model; None without the model."""
        if not pool.vectors_loaded:
            model = self.model_name
            if model is not None:
                ids = [p.paper_id for p in pool.papers]
                found = repository.embeddings_for(session, ids, model=model)
                pool.vectors = _stack([found.get(pid) for pid in ids])
                if pool.vectors is not None:
                    # A paper not embedded yet has zeros, and fits nothing by meaning.
                    pool.embedded = np.abs(pool.vectors).sum(axis=1) > 0
            pool.vectors_loaded = True
        return pool.vectors

    def remember_phrases(self, vectors: dict[str, np.ndarray[Any, Any]]) -> None:
        """Phrase vectors an earlier run of the same model stored: not encoded again."""
        self._phrases.update(vectors)

    def phrase_vectors(self, phrases: Sequence[str]) -> np.ndarray[Any, Any] | None:
        """Unit vectors of the phrases, each encoded once per run (or stored by an earlier run);
        None when one must be encoded and the model is not there."""
        if not phrases:
            return None
        new = [p for p in dict.fromkeys(phrases) if p not in self._phrases]
        if new:
            encoder = self._encoder()
            if encoder is None:
                return None
            if self._model is not None and encoder.name != self._model:
                # A process whose model was loaded before the settings named another: its vectors
                # would be stored and read as the other model's. No new phrase until a restart.
                log.error("the loaded model %s is not EMBEDDING_MODEL %s: restart", encoder.name, self._model)
                return None
            self._phrases.update(zip(new, encoder.encode(new), strict=True))
        return np.stack([self._phrases[p] for p in phrases]).astype(np.float32)

    def background(self, session: Session) -> tuple[np.ndarray[Any, Any], list[str]]:
        """A repeatable random sample of the corpus: (vectors, texts)."""
        if self._background is None:
            model = self.model_name
            rows = repository.background_sample(session, model=model, size=BACKGROUND_SAMPLE) if model else []
            vectors = _stack([r.embedding for r in rows])
            if vectors is None:  # no sample, or vectors of mixed sizes: calibrate against nothing
                self._background = (np.zeros((0, 1), np.float32), [])
            else:
                self._background = (vectors, [f"{r.title} {r.abstract}" for r in rows])
        return self._background

    def matcher(self, session: Session) -> matching.PhraseMatcher | None:
        if self._matcher is None:
            vectors, texts = self.background(session)
            if len(texts) == 0:
                return None
            self._matcher = matching.PhraseMatcher(matching.Background.build(vectors, texts))
        return self._matcher


def _stack(vectors: Sequence[Any]) -> np.ndarray[Any, Any] | None:
    """Rows as one float32 matrix; a paper not embedded yet gets a zero row (it matches nothing)."""
    dims = {len(v) for v in vectors if v is not None}
    if len(dims) != 1:
        return None
    (dim,) = dims
    matrix = np.zeros((len(vectors), dim), dtype=np.float32)
    for i, vector in enumerate(vectors):
        if vector is not None:
            matrix[i] = np.asarray(vector, dtype=np.float32)
    return matrix
