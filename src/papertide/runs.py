"""job_run records: every ingest, embed, score and digest run says how it ended and what it did."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from papertide.db import unit_of_work
from papertide.models import JobRun, JobStatus


@dataclass
class RunHandle:
    id: int
    counts: dict[str, Any] = field(default_factory=dict)
    status: JobStatus = JobStatus.OK


@contextmanager
def record_run(
    job: str, *, source: str | None = None, params: dict[str, Any] | None = None
) -> Iterator[RunHandle]:
    """Write a `running` row now (its own transaction) and its outcome at the end, failures included."""
    with unit_of_work() as session:
        run = JobRun(job=job, source=source, params=params or {}, status=JobStatus.RUNNING, counts={})
        session.add(run)
        session.flush()
        handle = RunHandle(id=run.id)
    try:
        yield handle
    except BaseException as error:
        _finish(handle, JobStatus.FAILED, error=f"{type(error).__name__}: {error}")
        raise
    _finish(handle, handle.status)


def _finish(handle: RunHandle, status: JobStatus, *, error: str | None = None) -> None:
    with unit_of_work() as session:
        run = session.get(JobRun, handle.id)
        if run is None:  # the row went with a dropped database; nothing left to record
            return
        run.status = status
        run.counts = dict(handle.counts)
        run.error = error
        run.finished_at = datetime.now(UTC)


def last_runs_by_source(
    session: Session, *, per_source: int = 3
) -> dict[tuple[str, str | None], list[JobRun]]:
    """The newest runs of each (job, source), newest first."""
    ranked = select(
        JobRun,
        func.row_number()
        .over(partition_by=(JobRun.job, JobRun.source), order_by=JobRun.id.desc())
        .label("n"),
    ).subquery()
    latest = aliased(JobRun, ranked)
    stmt = (
        select(latest).where(ranked.c.n <= per_source).order_by(latest.job, latest.source, latest.id.desc())
    )
    grouped: dict[tuple[str, str | None], list[JobRun]] = {}
    for run in session.scalars(stmt):
        grouped.setdefault((run.job, run.source), []).append(run)
    return grouped
