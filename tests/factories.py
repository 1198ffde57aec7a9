"""Plain factory functions with overrides, and a small deterministic encoder for unit tests."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.models import Paper, PaperSignal
from papertide.papers.schemas import text_hash

_counter = iter(range(1, 10**9))


class FakeEncoder:
    """Hashed bag of words in 384 dimensions: texts sharing words are near, the same text is identical."""

    name = "fake-encoder"
    dim = 384

    def __init__(self, name: str = "fake-encoder") -> None:
        self.name = name
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray[Any, Any]:
        self.calls.append(list(texts))
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim
                vectors[row, bucket] += 1.0
            vectors[row, 0] += 1e-3  # never the zero vector
        unit: np.ndarray[Any, Any] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return unit

    @property
    def encoded_texts(self) -> list[str]:
        return [text for call in self.calls for text in call]


def make_paper(session: Session, **overrides: Any) -> Paper:
    """A paper with sensible defaults; pass any column to override it."""
    n = next(_counter)
    values: dict[str, Any] = {
        "id": f"2601.{n:05d}",
        "title": f"Paper number {n}",
        "abstract": f"An abstract about topic {n}.",
        "authors": ["A. Author"],
        "categories": ["cs.LG"],
        "published_at": datetime(2026, 1, 1, tzinfo=UTC),
        "announced_at": datetime(2026, 1, 2, tzinfo=UTC),
        "source": "test",
    }
    values.update(overrides)
    values.setdefault("text_hash", text_hash(values["title"], values["abstract"]))
    paper = Paper(**values)
    session.add(paper)
    session.flush()
    return paper


def add_signal(session: Session, paper: Paper, kind: str, value: float, observed_at: datetime) -> PaperSignal:
    signal = PaperSignal(paper_id=paper.id, kind=kind, value=value, source="test", observed_at=observed_at)
    session.add(signal)
    session.flush()
    return signal


def paper_rows(session: Session, columns: tuple[str, ...]) -> list[tuple[object, ...]]:
    """Every paper's `columns`, by id, as stored now: for comparing two loads of the same data."""
    session.expire_all()
    return [
        tuple(r) for r in session.execute(select(*(getattr(Paper, c) for c in columns)).order_by(Paper.id))
    ]
