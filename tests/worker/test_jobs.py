"""Jobs at the edge: each run leaves a record that says how it ended, whatever went wrong."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide import db
from papertide.embeddings import service as embedding_service
from papertide.ingest.service import IngestError
from papertide.models import JobRun, JobStatus
from papertide.runs.service import this_host
from papertide.worker import ingest, jobs
from tests.factories import FakeEncoder, make_paper

ZERO_INGEST = {"fetched": 0, "new": 0, "updated": 0, "unchanged": 0, "signals": 0, "skipped": 0}


def last_run(session: Session, job: str) -> JobRun:
    session.expire_all()
    return session.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id.desc())).first()  # type: ignore[return-value]


def test_a_bad_smtp_url_stops_the_digest_job_before_any_run_or_delivery(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused with the settings, by name and with its password masked: no run record (a run's error
    is on the public /status page) and nothing prepared to wait for a mail server that cannot be."""
    monkeypatch.setenv("PAPERTIDE_SMTP_URL", "smtp://digest:hunter2@")
    db.reset()

    with pytest.raises(ValidationError, match="PAPERTIDE_SMTP_URL") as refused:
        jobs.send_digests(digest_date=date(2026, 11, 24), encoder=None)

    assert "hunter2" not in str(refused.value)
    assert last_run(session, "digest") is None


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


def test_an_interrupted_run_that_cannot_put_its_batch_back_still_ends_as_interrupted(
    database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Ctrl-C with the database gone too: the rows wait as hand-offs (the retry pass resends them),
    and what the caller sees is the interruption, not the failed put-back."""
    from sqlalchemy.exc import OperationalError

    from papertide.digests import service as digest_service

    def database_gone(*args: object, **kwargs: object) -> None:
        raise OperationalError("UPDATE digest_delivery ...", {}, Exception("connection refused"))

    monkeypatch.setattr(digest_service, "put_back", database_gone)

    jobs._put_back_on_the_way_out([])  # returns: the caller re-raises its KeyboardInterrupt

    assert "interrupted: could not put 0 untried digests back" in caplog.text


def test_an_idle_worker_writes_no_embed_run_so_the_last_real_one_stays_on_status(
    database: str, session: Session, fake_encoder: FakeEncoder
) -> None:
    for _ in range(3):
        make_paper(session)
    session.commit()

    embedded = jobs.embed(encoder=fake_encoder)
    idle = [jobs.embed(encoder=fake_encoder) for _ in range(5)]  # the worker's passes, every 10 s

    assert (embedded, idle) == (3, [0] * 5)
    session.expire_all()
    runs = session.scalars(select(JobRun).where(JobRun.job == "embed")).all()
    assert [(r.status, r.counts) for r in runs] == [(JobStatus.OK, {"embedded": 3})]


def test_an_idle_worker_still_marks_a_killed_run_abandoned(
    database: str, session: Session, fake_encoder: FakeEncoder
) -> None:
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    session.add(JobRun(job="digest", status=JobStatus.RUNNING, host=this_host(), pid=killed.pid))
    session.commit()

    assert jobs.embed(encoder=fake_encoder) == 0

    assert last_run(session, "digest").status == JobStatus.ABANDONED


def test_a_failed_index_upkeep_on_an_idle_pass_is_a_failed_embed_run(
    database: str, session: Session, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("could not extend file: No space left on device")

    monkeypatch.setattr(embedding_service, "refresh_index", broken)

    with pytest.raises(RuntimeError, match="No space left"):
        jobs.embed(encoder=fake_encoder)

    run = last_run(session, "embed")
    assert run.status == JobStatus.FAILED
    assert "No space left on device" in (run.error or "")


def test_an_idle_pass_asked_to_stop_builds_no_index(
    database: str, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(embedding_service, "refresh_index", lambda *_, **__: calls.append("build"))
    stop = threading.Event()
    stop.set()

    assert jobs.embed(encoder=fake_encoder, stop=stop) == 0
    assert calls == []
