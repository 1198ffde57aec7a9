"""Jobs at the edge: each run leaves a record that says how it ended, whatever went wrong."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide import db
from papertide.ingest.service import IngestError
from papertide.models import JobRun, JobStatus
from papertide.worker import ingest, jobs

ZERO_INGEST = {"fetched": 0, "new": 0, "updated": 0, "unchanged": 0, "signals": 0, "skipped": 0}


def last_run(session: Session, job: str) -> JobRun:
    session.expire_all()
    return session.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id.desc())).first()  # type: ignore[return-value]


def test_a_bad_smtp_url_is_a_failed_digest_run_with_its_reason(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_SMTP_URL", "smtp://")
    db.reset()

    with pytest.raises(ValueError, match="PAPERTIDE_SMTP_URL"):
        jobs.send_digests(digest_date=date(2026, 11, 24), encoder=None)

    run = last_run(session, "digest")
    assert run.status == JobStatus.FAILED
    assert "PAPERTIDE_SMTP_URL" in (run.error or "")


def test_a_digest_day_with_nobody_due_is_ok_empty_with_zero_counts(
    database: str, session: Session, tmp_path: Path
) -> None:
    result = jobs.send_digests(digest_date=date(2026, 11, 24), encoder=None)

    run = last_run(session, "digest")
    assert (result.sent, result.failed) == (0, 0)
    assert (run.status, run.counts) == (
        JobStatus.OK_EMPTY,
        {"sent": 0, "empty": 0, "deferred": 0, "failed": 0},
    )


def test_an_ingest_that_fails_before_its_first_page_records_zero_counts(
    database: str, session: Session, tmp_path: Path
) -> None:
    with pytest.raises(IngestError, match="cannot read"):
        ingest.ingest_jsonl(tmp_path / "missing.jsonl")

    run = last_run(session, "ingest")
    assert (run.status, run.counts) == (JobStatus.FAILED, ZERO_INGEST)
    assert "missing.jsonl" in (run.error or "")
