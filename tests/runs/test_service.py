"""Run records: one status rule for every job, and a record that survives the job failing."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.models import JobRun, JobStatus
from papertide.runs.service import record_run, run_status


@pytest.mark.parametrize(
    ("counts", "work", "error", "status"),
    [
        ({"fetched": 3, "skipped": 0}, None, None, JobStatus.OK),
        ({"fetched": 0, "skipped": 2}, ("fetched", "skipped"), None, JobStatus.OK),
        ({"fetched": 0, "skipped": 0}, None, None, JobStatus.OK_EMPTY),
        ({}, None, None, JobStatus.OK_EMPTY),
        ({"sent": 0, "empty": 5, "failed": 0}, ("sent", "failed"), None, JobStatus.OK_EMPTY),
        ({"sent": 0, "empty": 0, "failed": 1}, ("sent", "failed"), None, JobStatus.OK),
        ({"fetched": 9}, None, RuntimeError("boom"), JobStatus.FAILED),
    ],
)
def test_one_rule_decides_ok_ok_empty_and_failed(
    counts: dict[str, int], work: tuple[str, ...] | None, error: Exception | None, status: JobStatus
) -> None:
    assert run_status(counts, work=work, error=error) == status


def test_a_failing_job_leaves_a_failed_record_with_its_counts_and_reason(
    database: str, session: Session
) -> None:
    def failing_job() -> None:
        with record_run("ingest", source="test") as run:
            run.counts = {"fetched": 4}
            raise RuntimeError("source went away")

    with pytest.raises(RuntimeError, match="source went away"):
        failing_job()

    stored = session.scalars(select(JobRun)).one()
    assert (stored.status, stored.counts) == (JobStatus.FAILED, {"fetched": 4})
    assert stored.error == "RuntimeError: source went away"
    assert stored.finished_at is not None


def test_a_running_job_is_visible_before_it_ends(database: str, session: Session) -> None:
    with record_run("embed") as run:
        session.expire_all()
        assert session.get(JobRun, run.id) is not None
        assert session.get(JobRun, run.id).status == JobStatus.RUNNING  # type: ignore[union-attr]
    session.expire_all()
    assert session.scalars(select(JobRun.status)).one() == JobStatus.OK_EMPTY
