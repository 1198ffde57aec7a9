"""record_run(): every job writes a `running` row at its start and its outcome at its end.

The one documented exception to "the edge owns the transaction": a run record commits on its own,
at the start and at the end, so that a run that crashes or is killed midway is still visible
(as `running` or `failed`) however its own steps' transactions ended.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from papertide.db import unit_of_work
from papertide.models import JobStatus
from papertide.runs import repository


@dataclass
class RunHandle:
    """What a running job reports: its counts, and which of them mean it did some work."""

    id: int
    counts: Mapping[str, Any] = field(default_factory=dict)
    work: tuple[str, ...] | None = None  # None: any non-zero count is work


def run_status(
    counts: Mapping[str, Any], *, work: tuple[str, ...] | None = None, error: BaseException | None = None
) -> JobStatus:
    """The one rule for every job: failed on an error, ok when it did work, else ok_empty.

    ok_empty means the source had nothing (an arXiv weekend); a failed fetch is never ok_empty.
    """
    if error is not None:
        return JobStatus.FAILED
    keys = work if work is not None else tuple(counts)
    return JobStatus.OK if any(counts.get(key) for key in keys) else JobStatus.OK_EMPTY


@contextmanager
def record_run(
    job: str,
    *,
    source: str | None = None,
    params: dict[str, Any] | None = None,
    work: tuple[str, ...] | None = None,
) -> Iterator[RunHandle]:
    """Write a `running` row now and the outcome at the end (failures included), each committed at once."""
    with unit_of_work() as session:  # committed now: a killed run still shows as `running`
        handle = RunHandle(id=repository.start_run(session, job=job, source=source, params=params or {}))
    handle.work = work
    try:
        yield handle
    except BaseException as error:
        _finish(handle, error)
        raise
    _finish(handle, None)


def status_of(handle: RunHandle) -> JobStatus:
    """The status a run that ended now without an error gets."""
    return run_status(handle.counts, work=handle.work)


def _finish(handle: RunHandle, error: BaseException | None) -> None:
    with unit_of_work() as session:
        repository.finish_run(
            session,
            handle.id,
            status=run_status(handle.counts, work=handle.work, error=error),
            counts=dict(handle.counts),
            error=f"{type(error).__name__}: {error}" if error else None,
            at=datetime.now(UTC),
        )
