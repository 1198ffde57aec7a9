"""record_run(): every job writes a `running` row at its start and its outcome at its end.

The one documented exception to "the edge owns the transaction": a run record commits on its own,
at the start, at each heartbeat and at the end, so that a run that crashes or is killed midway is
still visible however its own steps' transactions ended. A run killed too hard to record its end
(kill -9, a lost machine) stops beating; the next run's start marks it `abandoned`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.db import error_line, unit_of_work
from papertide.models import JobRun, JobStatus
from papertide.runs import repository

log = logging.getLogger(__name__)
# A run silent for this many heartbeats is abandoned, whatever host it ran on.
STALE_BEATS = 4


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


def this_host() -> str:
    """The host name, and the pid namespace where there is one: pids compare only within it."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()} {namespace}"


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists here (a reused pid counts as alive: the heartbeat decides)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def record_run(
    job: str,
    *,
    source: str | None = None,
    params: dict[str, Any] | None = None,
    work: tuple[str, ...] | None = None,
) -> Iterator[RunHandle]:
    """Write a `running` row now, a heartbeat while it runs, and the outcome at the end (failures included)."""
    now = datetime.now(UTC)
    handle: RunHandle | None = None
    try:
        with unit_of_work() as session:  # committed now: a killed run still shows, then shows abandoned
            abandon_dead_runs(session, now=now)
            run_id = repository.start_run(
                session,
                job=job,
                source=source,
                params=params or {},
                host=this_host(),
                pid=os.getpid(),
                at=now,
            )
            handle = RunHandle(id=run_id, work=work)
        with _heartbeat(run_id, every=get_settings().run_heartbeat_seconds):
            yield handle
    except BaseException as error:
        # Also when Ctrl-C comes just after the start committed (as the session closes or the
        # heartbeat starts): the process lives on, so nothing else would ever end this run.
        if handle is not None:
            try:
                _finish(handle, error)
            except OperationalError as lost:
                # The database is gone (a restart, a cut connection): one line, the job's own error
                # follows; a traceback here buried the one line a command prints for it.
                log.warning("could not record how run %s ended: %s", handle.id, error_line(lost))
            except Exception:
                # The job's own error (or Ctrl-C) is what the caller must see, not this one: a
                # Ctrl-C that interrupted a query can leave its connection unusable for the write,
                # and raising that instead turned "stop" into "retry" in the worker's loop. The
                # run is left running; its heartbeat stops, so it shows as abandoned.
                log.exception("could not record how run %s ended", handle.id)
        raise
    _finish(handle, None)


def abandon_dead_runs(
    session: Session,
    *,
    now: datetime,
    host: str | None = None,
    alive: Callable[[int], bool] = process_alive,
) -> int:
    """Mark `running` rows abandoned whose process on this host is gone or whose heartbeat stopped."""
    here = host or this_host()
    stale_before = now - timedelta(seconds=STALE_BEATS * get_settings().run_heartbeat_seconds)
    abandoned = 0
    for run in repository.running_runs(session):
        reason = _why_dead(run, here=here, stale_before=stale_before, alive=alive)
        if reason and repository.abandon(session, run.id, reason=reason):
            log.warning("job_run %d (%s) marked abandoned: %s", run.id, run.job, reason)
            abandoned += 1
    return abandoned


def _why_dead(run: JobRun, *, here: str, stale_before: datetime, alive: Callable[[int], bool]) -> str | None:
    where = f"process {run.pid} on {run.host}" if run.pid else "its process"
    if run.host == here and run.pid is not None and not alive(run.pid):
        return f"{where} ended without recording an outcome (killed?)"
    last = run.heartbeat_at or run.started_at
    if last < stale_before:
        return f"no heartbeat from {where} since {last:%Y-%m-%d %H:%M:%S} UTC"
    return None


@contextmanager
def _heartbeat(run_id: int, *, every: float) -> Iterator[None]:
    """A thread that records the run as alive every `every` seconds until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                with unit_of_work() as session:
                    repository.beat(session, run_id, at=datetime.now(UTC))
            except Exception:
                # The database may be restarting: the run goes on, and so do the heartbeats.
                log.warning("job_run %d: heartbeat not recorded", run_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def status_of(handle: RunHandle) -> JobStatus:
    """The status a run that ended now without an error gets."""
    return run_status(handle.counts, work=handle.work)


def _finish(handle: RunHandle, error: BaseException | None) -> None:
    try:
        _record_outcome(handle, error)
    except KeyboardInterrupt:
        _record_outcome(handle, error)  # Ctrl-C while it was written (and rolled back): once more
        raise


def _record_outcome(handle: RunHandle, error: BaseException | None) -> None:
    with unit_of_work() as session:
        repository.finish_run(
            session,
            handle.id,
            status=run_status(handle.counts, work=handle.work, error=error),
            counts=dict(handle.counts),
            error=f"{type(error).__name__}: {error}" if error else None,
            at=datetime.now(UTC),
        )
