"""Papers and what the pipeline derives from them: embeddings, signals, scores, topics."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from papertide.models.base import Base


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
    # The mean direction of the topic's papers at the last fit: a newly embedded paper joins the
    # topic of the nearest centroid (ranking.service.compute_topics). Deferred: no page needs it.
    centroid: Mapped[Any | None] = mapped_column(Vector(), deferred=True)


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


class KeywordPending(Base):
    """Papers the keyword index has yet to (re)index or drop; triggers on paper fill it (migration 0012)."""

    __tablename__ = "keyword_pending"

    paper_id: Mapped[str] = mapped_column(Text, primary_key=True)  # no foreign key: deletions queue too
    queued_at: Mapped[datetime] = mapped_column(server_default=func.now())


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


class PaperViewVisitor(Base):
    """A visitor already counted for a paper on a day: a keyed hash, never an address (web.view_counting).

    Kept a few days only: papers.repository.record_view deletes the older rows as it inserts.
    """

    __tablename__ = "paper_view_visitor"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    paper_id: Mapped[str] = mapped_column(ForeignKey("paper.id", ondelete="CASCADE"), primary_key=True)
    visitor: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)  # address and user agent
    address: Mapped[bytes] = mapped_column(LargeBinary)  # the address alone: a few visitors each


class TopicFit(Base):
    """The last time the topics were fitted (one row, id 1), and what has changed since."""

    __tablename__ = "topic_fit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(Text)  # the embedding model the centroids live in
    papers: Mapped[int] = mapped_column(Integer)  # papers clustered at the fit
    changed: Mapped[int] = mapped_column(Integer)  # papers given, moved off or taken from a topic since
    fitted_at: Mapped[datetime]
    assigned_at: Mapped[datetime]  # database clock of the last run that assigned papers


# When a paper was listed (as ranking.repository.listed_at() reads it): topics and trending select
# the recent weeks by it, a range scan on this index rather than a scan of every paper.
Index("ix_paper_listed_at", func.coalesce(Paper.announced_at, Paper.published_at, Paper.first_seen_at))
# The score job finds the vectors written since its last run by this (ranking.repository.fresh_vectors).
Index("ix_paper_embedding_embedded_at", PaperEmbedding.embedded_at)
