"""Papers and what the pipeline derives from them: embeddings, signals, scores, topics."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, Integer, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from papertide.models.base import Base

# Title matches outrank abstract matches in keyword search (weights A and B). A trigger keeps
# search_vector in step with the text (migration 0004); bulk loads leave it NULL for the worker.
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(abstract, '')), 'B')"
)


class Topic(Base):
    __tablename__ = "topic"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer, default=0)
    momentum: Mapped[float] = mapped_column(Float, default=0.0)
    # [{"week": "2026-08-17", "papers": 12}, ...] oldest first, up to the data clock's week.
    weekly: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]", default=list)
    terms: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}", default=list)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Paper(Base):
    __tablename__ = "paper"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text)
    authors: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    categories: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    published_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    # When a source first listed the paper (a Hugging Face daily page, an arXiv announcement);
    # trending measures age from here, since that is when readers started to see it.
    announced_at: Mapped[datetime | None] = mapped_column(index=True)
    announce_type: Mapped[str | None] = mapped_column(Text)  # arXiv's new / cross / replace
    version: Mapped[int | None] = mapped_column(Integer)
    abs_url: Mapped[str | None] = mapped_column(Text)
    pdf_url: Mapped[str | None] = mapped_column(Text)
    code_url: Mapped[str | None] = mapped_column(Text)
    project_url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(Text)
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topic.id", ondelete="SET NULL"), index=True)
    first_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    modified_at: Mapped[datetime] = mapped_column(server_default=func.now())
    search_vector: Mapped[Any | None] = mapped_column(TSVECTOR)

    __table_args__ = (
        Index("ix_paper_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_paper_search_vector_pending", "id", postgresql_where=text("search_vector IS NULL")),
    )


class PaperEmbedding(Base):
    __tablename__ = "paper_embedding"

    paper_id: Mapped[str] = mapped_column(ForeignKey("paper.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(Text)
    dim: Mapped[int] = mapped_column(Integer)
    text_hash: Mapped[str] = mapped_column(Text)
    # Any dimension: each model gets its own partial HNSW index on `embedding::vector(dim)`,
    # made by embeddings.repository.ensure_index when the model is first used (migration 0005).
    embedding: Mapped[Any] = mapped_column(Vector())
    embedded_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_paper_embedding_model", "model"),)


class PaperSignal(Base):
    """One observation of an engagement count; a re-fetch adds a row, history is never overwritten."""

    __tablename__ = "paper_signal"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    paper_id: Mapped[str] = mapped_column(ForeignKey("paper.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(Text)
    observed_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("paper_id", "kind", "source", "observed_at"),
        Index("ix_paper_signal_paper_kind_observed", "paper_id", "kind", "observed_at"),
    )


class PaperScore(Base):
    """The trend score of a paper for one period (day / week / month), with its components."""

    __tablename__ = "paper_score"

    paper_id: Mapped[str] = mapped_column(ForeignKey("paper.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(Text, primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    components: Mapped[dict[str, Any]] = mapped_column(JSONB)
    as_of: Mapped[datetime]
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_paper_score_period_score", "period", "score"),)


class PaperView(Base):
    """Local attention: page views and digest clicks per paper and day (counters, not observations)."""

    __tablename__ = "paper_view"

    paper_id: Mapped[str] = mapped_column(ForeignKey("paper.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    views: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    clicks: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
