"""Thin jobs: each opens its own unit of work, calls one service, and records the run."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, timedelta

from papertide.config import get_settings
from papertide.db import unit_of_work
from papertide.digests import service as digest_service
from papertide.digests.mailer import Mailer, mailer_from_settings
from papertide.embeddings import service as embedding_service
from papertide.embeddings.encoder import Encoder, get_encoder
from papertide.models import JobStatus
from papertide.ranking import service as ranking_service
from papertide.runs import record_run

log = logging.getLogger(__name__)


def score(*, now: datetime | None = None) -> dict[str, int]:
    """Recompute trending for every period as of the data clock."""
    settings = get_settings()
    moment = now or datetime.now(UTC)
    with record_run("score") as run, unit_of_work() as session:
        # Topics first: their momentum is part of each paper's trend score.
        found = ranking_service.compute_topics(
            session, now=moment, model=settings.embedding_model, baseline_weeks=settings.topic_baseline_weeks
        )
        counts = ranking_service.compute_scores(
            session, now=moment, params=ranking_service.params_from(settings)
        )
        counts["topics"] = found["topics"]
        run.counts = counts
        run.status = JobStatus.OK if any(counts.values()) else JobStatus.OK_EMPTY
    return counts


def embed(
    *,
    encoder: Encoder | None = None,
    max_batches: int | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Embed every stale paper (or up to `max_batches` batches)."""
    settings = get_settings()
    encoder = encoder or get_encoder()
    batch_size = settings.embedding_batch_size or (
        4096 if getattr(encoder, "device", "cpu") == "cuda" else 256
    )
    with record_run("embed", params={"model": settings.embedding_model, "batch_size": batch_size}) as run:
        done = embedding_service.embed_pending(
            encoder=encoder,
            batch_size=batch_size,
            max_batches=max_batches,
            progress=progress,
            stop=stop,
        )
        run.counts = {"embedded": done}
        run.status = JobStatus.OK if done else JobStatus.OK_EMPTY
    return done


def send_digests(
    *, digest_date: date | None = None, mailer: Mailer | None = None, encoder: Encoder | None = None
) -> digest_service.DigestRunResult:
    """Score, then send every digest due on `digest_date` (default: today, UTC) exactly once."""
    settings = get_settings()
    day = digest_date or datetime.now(UTC).date()
    score()
    with record_run("digest", params={"date": day.isoformat()}) as run:
        result = digest_service.run_digest(
            digest_date=day,
            settings=settings,
            mailer=mailer or mailer_from_settings(settings),
            encoder=encoder or optional_encoder(),
        )
        run.counts = {"sent": result.sent, "empty": result.empty, "failed": result.failed}
        run.status = JobStatus.OK if result.sent or result.failed else JobStatus.OK_EMPTY
    return result


def optional_encoder() -> Encoder | None:
    """Interests need the model; without it digests still go out, ranked by trend alone."""
    try:
        return get_encoder()
    except Exception:
        log.exception("embedding model failed to load; digests use trending only")
        return None


def ingest_hf_daily_today() -> None:
    """Today's and yesterday's Daily Papers: yesterday's page keeps collecting upvotes for a while."""
    from papertide.ingest import service as ingest_service

    today = datetime.now(UTC).date()
    ingest_service.ingest_hf_days([today - timedelta(days=1), today])


def ingest_arxiv_oai() -> None:
    """An incremental OAI-PMH harvest of the configured set (from where the last one ended)."""
    from papertide.ingest import arxiv

    arxiv.harvest_oai(set_spec=get_settings().arxiv_oai_set)


def ingest_arxiv_rss() -> None:
    """Today's announcements in the configured categories."""
    from papertide.ingest import arxiv

    categories = [c.strip() for c in get_settings().arxiv_rss_categories.split(",") if c.strip()]
    arxiv.fetch_rss(categories=categories)
