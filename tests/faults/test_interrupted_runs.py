"""Ctrl-C (SIGINT; the CLI turns SIGTERM into it too) can come at any moment of a job, also while its
run record is being started or finished. The process lives on after it (`papertide worker` exits 0),
so nothing would ever mark such a run abandoned: it must end with an outcome, never stay `running`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.models import JobRun, JobStatus
from papertide.runs import repository
from papertide.runs import service as runs
from papertide.runs.service import record_run


def _outcomes(session: Session) -> list[tuple[str, dict[str, Any], str | None]]:
    session.expire_all()
    return [(r.status, r.counts, r.error) for r in session.scalars(select(JobRun))]


def test_an_interrupt_just_after_the_start_committed_ends_the_run_failed(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextmanager
    def interrupted(run_id: int, *, every: float) -> Iterator[None]:
        raise KeyboardInterrupt  # Ctrl-C as the heartbeat thread starts, before the job's first step
        yield

    monkeypatch.setattr(runs, "_heartbeat", interrupted)
    with pytest.raises(KeyboardInterrupt), record_run("embed"):
        pytest.fail("the job's body must not run")

    assert _outcomes(session) == [(JobStatus.FAILED, {}, "KeyboardInterrupt: ")]


def test_an_interrupt_while_the_outcome_is_written_still_records_it(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    finish_run, calls = repository.finish_run, []

    def interrupted_once(*args: Any, **kwargs: Any) -> None:
        finish_run(*args, **kwargs)
        calls.append(args)
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C before the outcome's commit: it is rolled back

    monkeypatch.setattr(repository, "finish_run", interrupted_once)
    with pytest.raises(KeyboardInterrupt), record_run("embed") as run:
        run.counts = {"embedded": 3}

    assert _outcomes(session) == [(JobStatus.OK, {"embedded": 3}, None)]
