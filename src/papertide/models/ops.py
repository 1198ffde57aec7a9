"""Operational records: every job run, and each source's checkpoint."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from papertide.models.base import Base


class JobStatus(StrEnum):
    RUNNING = "running"
    OK = "ok"
    OK_EMPTY = "ok_empty"  # the source had nothing (an arXiv weekend); never used for a failed fetch
    FAILED = "failed"
    # The process died without recording an outcome (kill -9, power loss): its heartbeat stopped.
    ABANDONED = "abandoned"


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
    # Who runs it and when it last showed life: how a killed run is told from a long one.
    host: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_job_run_job_started", "job", "started_at"),
        # Every run's start looks for abandoned ones among the few running rows, not the history.
        Index("ix_job_run_running", "heartbeat_at", postgresql_where=text("status = 'running'")),
    )


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


class RequestLimit(Base):
    """How many requests one client made in one window: a limit every web process shares."""

    __tablename__ = "request_limit"

    # window_start first: expired windows are pruned by a range scan of the primary key.
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
