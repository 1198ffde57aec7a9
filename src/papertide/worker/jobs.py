"""Jobs at the edge: each repeats one service step, one unit of work per step, and records the run."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

from sqlalchemy import Connection
from tqdm import tqdm

from papertide.config import get_settings
from papertide.db import get_engine, unit_of_work
from papertide.digests import service as digest_service
from papertide.digests.mailer import Mailer, MailError, MailFailure, mailer_from_settings
from papertide.embeddings import service as embedding_service
from papertide.embeddings.encoder import Encoder, get_encoder
from papertide.models import DeliveryStatus
from papertide.papers import repository as paper_repository
from papertide.ranking import service as ranking_service
from papertide.runs.service import RunHandle, record_run

log = logging.getLogger(__name__)


def score(*, now: datetime | None = None) -> dict[str, int]:
    """Recompute topics and trending for every period as of the data clock, in one transaction."""
    settings = get_settings()
    moment = now or datetime.now(UTC)
    with record_run("score") as run, unit_of_work() as session:
        counts = ranking_service.rescore(session, now=moment, settings=settings)
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
    *,
    digest_date: date | None = None,
    mailer: Mailer | None = None,
    encoder: Encoder | None = None,
    now: datetime | None = None,
) -> digest_service.DigestRunResult:
    """Score, fill the ledger for `digest_date` (default: today, UTC), then send every due delivery
    of any date (new ones, retries whose backoff ended, hand-offs a dead sender left), each once."""
    day = digest_date or (now or datetime.now(UTC)).date()
    try:
        score()
    except Exception:
        # Fresh scores are a nicety, the digest is not: a rescore that fails (another one running
        # at the same minute collides on the score table) is on /status as a failed score run.
        log.exception("rescoring before the digest failed; sending on the scores as they stand")
    return _deliver(params={"date": day.isoformat()}, prepare=day, mailer=mailer, encoder=encoder, now=now)


def retry_digests(
    *, mailer: Mailer | None = None, encoder: Encoder | None = None, now: datetime | None = None
) -> digest_service.DigestRunResult | None:
    """The scheduler's retry pass (DIGEST_RETRY_CRON): what is due again; no run record when nothing is."""
    with unit_of_work() as session:
        # Closing what can no longer go needs no run record either; it must happen even when
        # nothing is due, or a delivery of someone who left would wait for their return.
        digest_service.expire_overdue(session, now=now or datetime.now(UTC), settings=get_settings())
        if digest_service.due_count(session, now=now or datetime.now(UTC)) == 0:
            return None
    return _deliver(params={"retry": True}, prepare=None, mailer=mailer, encoder=encoder, now=now)


class MailServerDown(Exception):
    """The circuit breaker: the run stopped after SMTP_BREAKER_FAILURES server failures in a row."""


def _deliver(
    *,
    params: dict[str, object],
    prepare: date | None,
    mailer: Mailer | None,
    encoder: Encoder | None,
    now: datetime | None,
) -> digest_service.DigestRunResult:
    settings = get_settings()
    result = digest_service.DigestRunResult()
    try:
        with record_run("digest", params=params, work=("sent", "deferred", "failed")) as run:
            run.counts = result.counts
            # Inside the run: a bad SMTP URL, or links that would not reach the site (production
            # with no public PAPERTIDE_BASE_URL), is a failed digest run with its reason on
            # /status, before anything is composed or sent.
            settings.require_mail_base_url()
            mailer = mailer or mailer_from_settings(settings)
            with unit_of_work() as session:
                if prepare is not None:  # (the retry pass has closed what cannot go already)
                    digest_service.prepare_deliveries(session, digest_date=prepare)
                    digest_service.expire_overdue(session, now=now or datetime.now(UTC), settings=settings)
            load = (lambda: encoder) if encoder is not None else functools.cache(optional_encoder)
            _send_due(run, result, mailer=mailer, encoder=load, now=now)
    except MailServerDown:
        pass  # recorded as the run's failure; what was sent is in `result`, the rest waits
    return result


def _send_due(
    run: RunHandle,
    result: digest_service.DigestRunResult,
    *,
    mailer: Mailer,
    encoder: Callable[[], Encoder | None],
    now: datetime | None,
) -> None:
    """One delivery at a time: commit `sending`, hand over with no transaction open, commit the outcome."""
    settings = get_settings()
    attempted: list[int] = []
    server_failures = 0
    with _hand_off_locks() as locks:
        while True:
            try:
                with unit_of_work() as session:
                    hand_off = digest_service.start_next(
                        session,
                        locks=locks,
                        now=now or datetime.now(UTC),
                        exclude=attempted,
                        settings=settings,
                        encoder=encoder,
                    )
            except digest_service.ComposeFailed as failed:
                log.exception("digest run: %s; put off, going on with the next", failed)
                attempted.append(failed.delivery_id)
                with unit_of_work() as session:
                    put_off = digest_service.put_off(
                        session,
                        delivery_id=failed.delivery_id,
                        error=str(failed),
                        now=now or datetime.now(UTC),
                        settings=settings,
                    )
                result.add(put_off)
                run.counts = result.counts
                continue
            if hand_off is None:
                return
            attempted.append(hand_off.delivery_id)
            try:
                delivered, error = _hand_over(hand_off, mailer=mailer, now=now)
            finally:
                digest_service.release(locks, hand_off)
            result.add(delivered)
            run.counts = result.counts
            server_failures = server_failures + 1 if error and error.kind == MailFailure.SERVER else 0
            if server_failures >= settings.smtp_breaker_failures:
                result.stopped = (
                    f"the mail server failed {server_failures} times in a row (last: {error}); "
                    "stopped early, the rest waits for the next run"
                )
                log.error("digest run %s", result.stopped)
                raise MailServerDown(result.stopped)


def _hand_over(
    hand_off: digest_service.HandOff, *, mailer: Mailer, now: datetime | None
) -> tuple[digest_service.Delivered, MailError | None]:
    """Give the message to the mail server (no transaction is open), then record how that ended."""
    if hand_off.message is None:
        return digest_service.Delivered(hand_off.delivery_id, DeliveryStatus.EMPTY), None
    error: MailError | None = None
    try:
        mailer.send(hand_off.message)
    except MailError as failed:
        error = failed
    with unit_of_work() as session:
        delivered = digest_service.record_outcome(
            session, hand_off=hand_off, error=error, now=now or datetime.now(UTC), settings=get_settings()
        )
    return delivered, error


@contextmanager
def _hand_off_locks() -> Iterator[Connection]:
    """The run's own autocommit connection, outside the pool: the advisory lock it holds while a
    message is with the mail server is not a transaction, and goes when it closes or the process dies."""
    connection = get_engine().connect().execution_options(isolation_level="AUTOCOMMIT")
    connection.detach()
    try:
        yield connection
    finally:
        connection.close()


def optional_encoder() -> Encoder | None:
    """Interests need the model; without it digests still go out, ranked by trend alone."""
    try:
        return get_encoder()
    except Exception:
        log.exception("embedding model failed to load; digests use trending only")
        return None
