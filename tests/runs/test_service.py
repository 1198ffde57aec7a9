"""Run records: one status rule for every job, a record that survives the job failing, and abandoned runs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.models import JobRun, JobStatus
from papertide.runs.service import record_run, run_status, this_host
from papertide.web.app import create_app
from tests.helpers import wait_until


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


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), RuntimeError("source went away")])
def test_a_job_that_cannot_record_its_end_still_raises_its_own_error(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch, interrupt: BaseException
) -> None:
    """Ctrl-C must stop the worker even when writing the run's outcome fails (a connection the
    interrupt left mid-query): the outcome's error must not replace the interrupt."""
    from papertide.runs import repository

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("can't change 'autocommit' now: connection in transaction status ACTIVE")

    monkeypatch.setattr(repository, "finish_run", broken)

    with pytest.raises(type(interrupt)) as raised, record_run("embed"):
        raise interrupt

    assert raised.value is interrupt
    assert session.scalars(select(JobRun.status)).one() == JobStatus.RUNNING, (
        "its heartbeat stops: abandoned later"
    )


def test_a_run_that_cannot_record_its_end_for_a_lost_database_says_so_in_one_line(
    database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The database restarted under the job: the command prints one line for it, and the log adds
    one line for the run record, not a traceback burying it."""
    from sqlalchemy.exc import OperationalError

    from papertide.runs import repository

    def lost(*args: object, **kwargs: object) -> None:
        raise OperationalError("UPDATE job_run ...", {}, Exception("server closed the connection\ndetails"))

    monkeypatch.setattr(repository, "finish_run", lost)

    with pytest.raises(RuntimeError, match="the job's own error"), record_run("embed"):
        raise RuntimeError("the job's own error")

    [record] = [r for r in caplog.records if "could not record how run" in r.getMessage()]
    assert record.getMessage().endswith("ended: server closed the connection")
    assert record.exc_info is None


def test_a_running_job_is_visible_before_it_ends(database: str, session: Session) -> None:
    with record_run("embed") as run:
        session.expire_all()
        assert session.get(JobRun, run.id) is not None
        assert session.get(JobRun, run.id).status == JobStatus.RUNNING  # type: ignore[union-attr]
    session.expire_all()
    assert session.scalars(select(JobRun.status)).one() == JobStatus.OK_EMPTY


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _running_row(session: Session, *, host: str, pid: int, heartbeat_at: datetime) -> int:
    run = JobRun(job="ingest", source="jsonl", status=JobStatus.RUNNING, host=host, pid=pid)
    run.heartbeat_at = heartbeat_at
    session.add(run)
    session.commit()
    return run.id


def test_a_killed_run_on_this_host_is_abandoned_at_the_next_start(database: str, session: Session) -> None:
    beat = datetime.now(UTC) - timedelta(seconds=5)
    killed = _running_row(session, host=this_host(), pid=_dead_pid(), heartbeat_at=beat)

    with record_run("embed"):
        pass

    session.expire_all()
    run = session.get(JobRun, killed)
    assert run is not None
    assert run.status == JobStatus.ABANDONED
    assert run.finished_at == beat, "it ended at its last sign of life"
    assert "ended without recording an outcome" in (run.error or "")


def test_status_page_shows_the_killed_run_as_abandoned_with_the_reason(
    database: str, session: Session
) -> None:
    killed = _dead_pid()
    _running_row(session, host=this_host(), pid=killed, heartbeat_at=datetime.now(UTC))
    with record_run("embed"):
        pass

    page = TestClient(create_app(encoder_provider=lambda: None)).get("/status").text

    assert "abandoned" in page
    assert f"process {killed} on" in page
    assert ">running<" not in page


def test_a_run_elsewhere_is_abandoned_only_when_its_heartbeat_stops(database: str, session: Session) -> None:
    now = datetime.now(UTC)
    silent = _running_row(session, host="other-host", pid=1, heartbeat_at=now - timedelta(minutes=10))
    beating = _running_row(session, host="other-host", pid=2, heartbeat_at=now - timedelta(seconds=20))
    mine = _running_row(session, host=this_host(), pid=os.getpid(), heartbeat_at=now)

    with record_run("embed"):
        pass

    session.expire_all()
    assert session.get(JobRun, silent).status == JobStatus.ABANDONED  # type: ignore[union-attr]
    assert "no heartbeat from process 1 on other-host" in session.get(JobRun, silent).error  # type: ignore[union-attr,operator]
    assert session.get(JobRun, beating).status == JobStatus.RUNNING  # type: ignore[union-attr]
    assert session.get(JobRun, mine).status == JobStatus.RUNNING  # type: ignore[union-attr]


def test_a_long_run_keeps_beating_and_still_records_its_outcome(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_RUN_HEARTBEAT_SECONDS", "0.05")
    get_settings.cache_clear()

    def heartbeat(run_id: int) -> datetime | None:
        session.expire_all()
        return session.get(JobRun, run_id).heartbeat_at  # type: ignore[union-attr]

    with record_run("embed") as run:
        first = heartbeat(run.id)
        assert first is not None
        wait_until(lambda: (heartbeat(run.id) or first) > first, timeout=30, what="a second heartbeat")
        run.counts = {"embedded": 3}

    session.expire_all()
    assert session.get(JobRun, run.id).status == JobStatus.OK  # type: ignore[union-attr]


def test_ctrl_c_in_a_unit_of_work_is_raised_even_when_the_rollback_fails(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C mid-query leaves a connection that cannot roll back; the interrupt must still stop the job."""
    from sqlalchemy.exc import ProgrammingError

    from papertide.db import unit_of_work

    def broken() -> None:
        raise ProgrammingError(
            "ROLLBACK", {}, Exception("can't rollback now: connection in transaction status ACTIVE")
        )

    def interrupted_job() -> None:
        with unit_of_work() as session:
            monkeypatch.setattr(session, "rollback", broken)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_job()
