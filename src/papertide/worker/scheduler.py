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
        "digest": (settings.digest_cron, jobs.send_digests),
    }
    scheduler = BackgroundScheduler(timezone="UTC")
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
        url = database_url().replace("postgresql+psycopg://", "postgresql://", 1)
        self.connection = psycopg.connect(url, autocommit=True)
        row = self.connection.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK_KEY,)).fetchone()
        if row and row[0]:
            return True
        self.release()
        return False

    def release(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def run_as_leader(settings: Settings, *, stop: threading.Event, retry_seconds: float = 30.0) -> None:
    """Wait to become leader, then run the scheduler until `stop`; followers just wait."""
    lock = LeaderLock()
    while not stop.is_set():
        if lock.acquire():
            break
        log.info("another scheduler is the leader; retrying in %.0f s", retry_seconds)
        stop.wait(retry_seconds)
    if stop.is_set():
        return
    scheduler = build_scheduler(settings)
    scheduler.start()
    log.info("scheduler is the leader: %s", ", ".join(job.id for job in scheduler.get_jobs()))
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        lock.release()
