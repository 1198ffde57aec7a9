"""Cron wiring only: APScheduler runs the jobs; a Postgres advisory lock elects one leader."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from papertide.config import Settings
from papertide.db import database_url
from papertide.worker import ingest, jobs

log = logging.getLogger(__name__)
LEADER_LOCK_KEY = 0x70617065  # "pape": one scheduler per database sends digests and rescores


def build_scheduler(settings: Settings) -> BackgroundScheduler:
    """The cron jobs from settings, not started. Sources are off until an operator gives them a schedule."""
    crons: dict[str, tuple[str, Callable[[], object]]] = {
        "score": (settings.score_cron, jobs.score),
        "ingest-hf-daily": (settings.schedule_hf_daily, ingest.ingest_hf_daily_today),
        "ingest-arxiv-oai": (settings.schedule_arxiv_oai, ingest.ingest_arxiv_oai),
        "ingest-arxiv-rss": (settings.schedule_arxiv_rss, ingest.ingest_arxiv_rss),
        "digest": (settings.digest_cron, jobs.send_scheduled_digests),
        "digest-retry": (settings.digest_retry_cron, jobs.retry_digests),
    }
    scheduler = BackgroundScheduler(timezone="UTC")
    for job_id, setting in (("digest", "DIGEST_CRON"), ("score", "SCORE_CRON")):
        if not crons[job_id][0]:
            # Off on purpose (a quiet test scheduler), or a compose passthrough of an unset
            # variable: either way the operator reads it, not an inbox that stays empty.
            log.warning("PAPERTIDE_%s is empty: the scheduler will not run the %s job", setting, job_id)
    for job_id, (cron, job) in crons.items():
        if cron:
            trigger = CronTrigger.from_crontab(cron, timezone="UTC")
            scheduler.add_job(_logged(job), trigger, id=job_id, max_instances=1, coalesce=True)
    return scheduler


def _logged(job: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:
            log.exception("scheduled job %s failed", job.__name__)

    run.__name__ = job.__name__
    return run


class LeaderLock:
    """Holds pg_try_advisory_lock on its own connection; the lock goes when the connection does."""

    def __init__(self) -> None:
        self.connection: psycopg.Connection[tuple[object, ...]] | None = None

    def acquire(self) -> bool:
        """Take the lock if no other scheduler holds it."""
        url = database_url().replace("postgresql+psycopg://", "postgresql://", 1)
        # Keepalives and a statement timeout: a check on a dead network fails in seconds, not hours.
        self.connection = psycopg.connect(
            url, autocommit=True, connect_timeout=10, keepalives_idle=10, options="-c statement_timeout=5000"
        )
        row = self.connection.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK_KEY,)).fetchone()
        if row and row[0]:
            return True
        self.release()
        return False

    def held(self) -> bool:
        """Whether this connection still holds the lock: not once the database restarted or cut it."""
        if self.connection is None:
            return False
        try:
            row = self.connection.execute(
                _HELD, (LEADER_LOCK_KEY >> 32, LEADER_LOCK_KEY & 0xFFFFFFFF)
            ).fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])

    def release(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low 32 bits), objsubid 1.
_HELD = """
    SELECT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1
          AND pid = pg_backend_pid() AND granted
    )
"""


def run_as_leader(
    settings: Settings, *, stop: threading.Event, retry_seconds: float = 30.0, check_seconds: float = 10.0
) -> None:
    """Until `stop`: wait to become leader, run the scheduler while the lock holds, step down when it is lost.

    Followers try for the lock every `retry_seconds`; the leader checks it every `check_seconds`.
    """
    while not stop.is_set():
        lock = LeaderLock()
        if _wait_for_lock(lock, stop=stop, retry_seconds=retry_seconds):
            _lead(settings, lock, stop=stop, check_seconds=check_seconds)


def _wait_for_lock(lock: LeaderLock, *, stop: threading.Event, retry_seconds: float) -> bool:
    while not stop.is_set():
        try:
            if lock.acquire():
                return True
            log.info("another scheduler is the leader; retrying in %.0f s", retry_seconds)
        except psycopg.Error as error:
            lock.release()
            log.warning("no database to elect a leader in (%s); retrying in %.0f s", error, retry_seconds)
        stop.wait(retry_seconds)
    return False


def _lead(settings: Settings, lock: LeaderLock, *, stop: threading.Event, check_seconds: float) -> None:
    """Run the cron jobs while `lock` holds; shut them down when it is lost or on `stop`."""
    try:
        # A leader whose lock went (a database restart) notices within check_seconds: wait twice
        # that before starting, so the old leader has stepped down before this one's jobs begin.
        if stop.wait(2 * check_seconds) or not lock.held():
            return
        scheduler = build_scheduler(settings)
        log.info("scheduler is the leader: %s", ", ".join(job.id for job in scheduler.get_jobs()))
        scheduler.start()
        try:
            while not stop.wait(check_seconds):
                if not lock.held():
                    log.warning("scheduler lost its leader lock (database restarted or connection cut)")
                    return
        finally:
            # A job already running is not cut off midway: it ends on its own.
            scheduler.shutdown(wait=False)
            log.info("scheduler stepped down")
    finally:
        lock.release()
