"""Operational records: every job run, and each source's checkpoint."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Index, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from papertide.models.base import Base


class JobStatus(StrEnum):
    RUNNING = "running"
    OK = "ok"
    OK_EMPTY = "ok_empty"  # the source had nothing (an arXiv weekend); never used for a failed fetch
    FAILED = "failed"


class JobRun(Base):
    __tablename__ = "job_run"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default=JobStatus.RUNNING)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_job_run_job_started", "job", "started_at"),)


class SourceState(Base):
    __tablename__ = "source_state"

    source: Mapped[str] = mapped_column(Text, primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class RateLimit(Base):
    """The next moment a request to `key` (a host) may be sent, shared by every process."""

    __tablename__ = "rate_limit"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    next_at: Mapped[datetime]
