"""SQL for job_run records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from papertide.models import JobRun, JobStatus


def start_run(session: Session, *, job: str, source: str | None, params: dict[str, Any]) -> int:
    """A `running` row; returns its id."""
    run = JobRun(job=job, source=source, params=params, status=JobStatus.RUNNING, counts={})
    session.add(run)
    session.flush()
    return run.id


def finish_run(
    session: Session,
    run_id: int,
    *,
    status: JobStatus,
    counts: dict[str, Any],
    error: str | None,
    at: datetime,
) -> None:
    """Write a run's outcome; a row that went with a dropped database is left alone."""
    run = session.get(JobRun, run_id)
    if run is None:
        return
    run.status = status
    run.counts = counts
    run.error = error
    run.finished_at = at


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
