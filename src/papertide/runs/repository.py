"""SQL for job_run records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from papertide.models import JobRun, JobStatus


def start_run(
    session: Session,
    *,
    job: str,
    source: str | None,
    params: dict[str, Any],
    host: str,
    pid: int,
    at: datetime,
) -> int:
    """A `running` row with its process and a first heartbeat; returns its id."""
    run = JobRun(
        job=job,
        source=source,
        params=params,
        status=JobStatus.RUNNING,
        counts={},
        host=host,
        pid=pid,
        heartbeat_at=at,
    )
    session.add(run)
    session.flush()
    return run.id


def beat(session: Session, run_id: int, *, at: datetime) -> None:
    """The run is alive at `at`; a row already finished (or judged abandoned) is left as it is."""
    session.execute(
        update(JobRun).where(JobRun.id == run_id, JobRun.status == JobStatus.RUNNING).values(heartbeat_at=at)
    )


def running_runs(session: Session) -> list[JobRun]:
    """Every row still `running`, oldest first."""
    return list(session.scalars(select(JobRun).where(JobRun.status == JobStatus.RUNNING).order_by(JobRun.id)))


def abandon(session: Session, run_id: int, *, reason: str) -> bool:
    """Mark a `running` row abandoned, ended at its last heartbeat; False if it finished meanwhile."""
    ended = func.coalesce(JobRun.heartbeat_at, JobRun.started_at)
    result = session.execute(
        update(JobRun)
        .where(JobRun.id == run_id, JobRun.status == JobStatus.RUNNING)
        .values(status=JobStatus.ABANDONED, finished_at=ended, error=reason)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


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
