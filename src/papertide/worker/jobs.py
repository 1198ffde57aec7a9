"""Jobs at the edge: each repeats one service step, one unit of work per step, and records the run."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime

from tqdm import tqdm

from papertide.config import get_settings
from papertide.db import unit_of_work
from papertide.digests import service as digest_service
from papertide.digests.mailer import Mailer, mailer_from_settings
from papertide.embeddings import service as embedding_service
from papertide.embeddings.encoder import Encoder, get_encoder
from papertide.papers import repository as paper_repository
from papertide.ranking import service as ranking_service
from papertide.runs.service import record_run

log = logging.getLogger(__name__)


def score(*, now: datetime | None = None) -> dict[str, int]:
    """Recompute topics and trending for every period as of the data clock, in one transaction."""
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
    return counts


def embed(
    *,
    encoder: Encoder | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Embed every stale paper (or `max_batches` batches, or until `stop`), one committed batch at a time."""
    settings = get_settings()
    encoder = encoder or get_encoder()
    size = (
        batch_size
        or settings.embedding_batch_size
        or (4096 if getattr(encoder, "device", "cpu") == "cuda" else 256)
    )
    with record_run("embed", params={"model": encoder.name, "batch_size": size}) as run:
        with unit_of_work() as session:
            # Committed on its own: the index lock is released before the (long) stale count.
            embedding_service.ensure_index(session, encoder=encoder)
        with unit_of_work() as session:
            total = embedding_service.pending_count(session, encoder=encoder)
        done = batches = 0
        run.counts = {"embedded": 0}
        with tqdm(total=total, desc="embed", unit="paper", disable=not progress or total == 0) as bar:
            while max_batches is None or batches < max_batches:
                if stop is not None and stop.is_set():
                    break
                with unit_of_work() as session:
                    count = embedding_service.embed_batch(session, encoder=encoder, batch_size=size)
                if count == 0:
                    break
                done += count
                batches += 1
                run.counts = {"embedded": done}
                bar.update(count)
    return done


def index_keywords(*, batch_size: int = 5000, progress: bool = False) -> int:
    """Fill the full-text vectors a bulk load deferred, one committed batch at a time."""
    with unit_of_work() as session:
        total = paper_repository.count_unindexed(session)
    done = 0
    with tqdm(total=total, desc="keyword index", unit="paper", disable=not progress or total == 0) as bar:
        while True:
            with unit_of_work() as session:
                count = paper_repository.index_pending(session, limit=batch_size)
            if count == 0:
                return done
            done += count
            bar.update(count)


def send_digests(
    *, digest_date: date | None = None, mailer: Mailer | None = None, encoder: Encoder | None = None
) -> digest_service.DigestRunResult:
    """Score, then send every digest due on `digest_date` (default: today, UTC) exactly once."""
    settings = get_settings()
    day = digest_date or datetime.now(UTC).date()
    score()
    result = digest_service.DigestRunResult()
    with record_run("digest", params={"date": day.isoformat()}, work=("sent", "failed")) as run:
        run.counts = {"sent": 0, "empty": 0, "failed": 0}
        # Inside the run: a bad SMTP URL is a failed digest run with its reason on /status.
        mailer = mailer or mailer_from_settings(settings)
        encoder = encoder or optional_encoder()
        with unit_of_work() as session:
            digest_service.prepare_deliveries(session, digest_date=day)
        attempted: list[int] = []
        while True:
            # One delivery per transaction: its ledger row commits with the send it records.
            with unit_of_work() as session:
                delivered = digest_service.deliver_next(
                    session,
                    digest_date=day,
                    exclude=attempted,
                    settings=settings,
                    mailer=mailer,
                    encoder=encoder,
                )
            if delivered is None:
                break
            attempted.append(delivered.delivery_id)
            result.add(delivered)
            run.counts = {"sent": result.sent, "empty": result.empty, "failed": result.failed}
    return result


def optional_encoder() -> Encoder | None:
    """Interests need the model; without it digests still go out, ranked by trend alone."""
    try:
        return get_encoder()
    except Exception:
        log.exception("embedding model failed to load; digests use trending only")
        return None
