"""Jobs at the edge: each repeats one service step, one unit of work per step, and records the run."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, Literal, NoReturn

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError
from tqdm import tqdm

from papertide.config import Settings, current_base_url, get_settings
from papertide.db import error_line, get_engine, unit_of_work
from papertide.digests import service as digest_service
from papertide.digests.candidates import DigestRun
from papertide.digests.mailer import (
    BulkMailer,
    Envelope,
    MailError,
    MailFailure,
    MailSession,
    mailer_from_settings,
)
from papertide.embeddings import service as embedding_service
from papertide.embeddings.encoder import Encoder, get_encoder
from papertide.models import DeliveryStatus
from papertide.ranking import service as ranking_service
from papertide.runs.service import RunHandle, abandon_dead_runs, record_run
from papertide.search import keyword_index
from papertide.search import service as search_service
from papertide.search.keyword_index import KeywordIndexBusy
from papertide.subscribers import service as subscriber_service
from papertide.worker import senders as senders_module
from papertide.worker.blas import one_blas_thread

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
    params = {"model": encoder.name, "batch_size": size}
    with unit_of_work() as session:
        total = embedding_service.pending_count(session, encoder=encoder)
    if total == 0:
        # Nothing to embed: no run record. An idle worker asks every 10 s, and a row each time
        # (8,640 a day) pushed the last real embed run off /status and `papertide status` within a
        # minute. It still marks dead runs abandoned (what those rows' start did), and keeps the
        # index up (a build a killed worker left undone): a failure there is a failed run.
        with unit_of_work() as session:
            abandon_dead_runs(session, now=datetime.now(UTC))
        if stop is None or not stop.is_set():
            try:
                _ensure_index(encoder)
                _refresh_index(encoder, settings.embedding_fresh_limit)
            except Exception:
                with record_run("embed", params=params):
                    raise
        return 0
    with record_run("embed", params=params) as run:
        _ensure_index(encoder)
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
        if stop is None or not stop.is_set():
            # After the batches, not between them: a backlog lands as fresh vectors at COPY speed
            # and gets one index build at its end.
            _refresh_index(encoder, settings.embedding_fresh_limit)
    return done


def _ensure_index(encoder: Encoder) -> None:
    """The model's HNSW index made if missing (an upgraded database, a new model), and one a newer
    index replaced dropped (a killed run's, or the one index from before watermarks)."""
    with unit_of_work() as session:  # committed on its own: the index lock goes at once
        embedding_service.ensure_index(session, encoder=encoder)
    _drop_replaced_indexes(encoder)


def _refresh_index(encoder: Encoder, fresh_limit: int) -> None:
    """Rebuild the model's HNSW index once `fresh_limit` vectors came after it (or finish a build a
    killed worker left undone), then drop the index it replaced."""
    with unit_of_work() as session:
        built = embedding_service.refresh_index(session, encoder=encoder, fresh_limit=fresh_limit)
    if built is not None:
        log.info("rebuilt the %s HNSW index over %d vectors", encoder.name, built)
        _drop_replaced_indexes(encoder)


def _drop_replaced_indexes(encoder: Encoder) -> None:
    # Autocommit, for DROP INDEX CONCURRENTLY: searches on the old index end, new ones go on.
    with get_engine().connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        with unit_of_work(connection) as session:
            embedding_service.drop_old_indexes(session, encoder=encoder)


def index_keywords(*, batch_size: int = 20_000, progress: bool = False) -> int:
    """Feed the keyword index what the database queued (new, changed and deleted papers), one
    committed batch at a time. When another process is feeding it, this one leaves it (returns 0)."""
    index = keyword_index.shared(get_settings())
    with unit_of_work() as session:
        if index.num_docs() == 0 and search_service.paper_count(session) > search_service.pending_count(
            session
        ):
            # An empty index beside a full database: a new DATA_DIR, or a new index layout.
            log.info("the keyword index is empty: queueing every paper for it")
            search_service.queue_everything(session)
        total = search_service.pending_count(session)
    if total == 0:
        return 0
    done = 0
    try:
        with index.writer() as writer, _bar(total, "keyword index", progress) as bar:
            # The writer's lock is ours, so the latest commit is all the index holds: when that is
            # nothing, the papers are added, not replaced (see index_pending).
            index.reload()
            filling: set[str] | None = set() if index.num_docs() == 0 else None
            while True:
                with unit_of_work() as session:
                    count = search_service.index_pending(session, writer, limit=batch_size, filling=filling)
                    writer.commit()  # the index first: the queue rows go only once it holds them
                if count == 0:
                    break
                done += count
                bar.update(count)
    except KeywordIndexBusy:
        log.info("another process is feeding the keyword index; leaving it to that one")
    index.reload()  # searches in this process see it now, not in a moment
    return done


def rebuild_keyword_index(*, batch_size: int = 5000, progress: bool = False) -> int:
    """`papertide reindex`: the keyword index rebuilt from every paper in the database. Searches see
    the old index until the new one commits, at once."""
    index = keyword_index.shared(get_settings())
    with record_run("reindex") as run, index.writer() as writer:
        with unit_of_work() as session:
            queued = search_service.pending_snapshot(session)  # the rebuild reads all of these too
            total = search_service.paper_count(session)
            with _bar(total, "reindex", progress) as bar:
                done = search_service.rebuild(session, writer, batch_size=batch_size, progress=bar.update)
            writer.commit()  # searches switch to the rebuilt index here, at once
        with unit_of_work() as session:
            search_service.forget_pending(session, queued)
        run.counts = {"indexed": done}
    index.reload()
    return done


def _bar(total: int, desc: str, progress: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="paper", disable=not progress or total == 0)


def send_digests(
    *,
    digest_date: date | None = None,
    mailer: BulkMailer | None = None,
    encoder: Encoder | None = None,
    now: datetime | None = None,
    senders: int | None = None,
) -> digest_service.DigestRunResult:
    """Score, fill the ledger for `digest_date` for every subscriber whose send days include it,
    whatever their send hour (no date: each subscriber's own local date now, so a reader west of
    UTC is not sent tomorrow's digest tonight), then send every due delivery of any date (new ones,
    retries whose backoff ended, hand-offs a dead sender left), each once; with `senders` processes
    (default DIGEST_SENDERS) when enough are due."""
    params: dict[str, object] = {"date": digest_date.isoformat() if digest_date else LOCAL_DATE}
    # The other senders (if any) start now: their fork server imports while this process rescores.
    wanted = senders or get_settings().digest_senders
    others = _start_senders(senders_module.Senders(), wanted - 1, params=params, mailer=mailer, now=now)
    try:
        _rescore()
    except BaseException:  # (Ctrl-C, SystemExit: the others must not wait for a word that never comes)
        others.stop()
        raise
    return _deliver(
        params=params,
        prepare=digest_date or LOCAL_DATE,
        mailer=mailer,
        encoder=encoder,
        now=now,
        senders=wanted,
        others=others,
    )


# `prepare` for _deliver: each reader's own local date now, whatever their hour.
LOCAL_DATE: Final = "local"


def send_scheduled_digests(
    *, mailer: BulkMailer | None = None, encoder: Encoder | None = None, now: datetime | None = None
) -> digest_service.DigestRunResult | None:
    """The scheduler's digest pass (DIGEST_CRON, every 15 minutes): each subscriber whose local send
    hour has come on one of their send days gets the digest of their local date, once; then every
    other due delivery goes too. No run record when nothing is due."""
    at = now or datetime.now(UTC)
    with unit_of_work() as session:
        settings = get_settings()
        added = digest_service.prepare_deliveries(session, now=at, settings=settings)
        expired = digest_service.expire_overdue(session, now=at, settings=settings)
        subscriber_service.prune_tokens(session, now=at)
        due = digest_service.due_count(session, now=at)
    _prune_phrase_vectors()
    if due == 0 and expired == 0:
        return None
    if added:
        _rescore()
    return _deliver(
        params={"scheduled": True}, prepare=None, mailer=mailer, encoder=encoder, now=now, expired=expired
    )


def _prune_phrase_vectors() -> None:
    try:
        with unit_of_work() as session:
            digest_service.prune_phrase_vectors(session)
    except Exception:
        # A chore: the vectors of phrases nobody holds cost disk, not digests. The next pass tries again.
        log.exception("forgetting the vectors of phrases no profile holds failed")


def _rescore() -> None:
    try:
        score()
    except Exception:
        # Fresh scores are a nicety, the digest is not: a rescore that fails (another one running
        # at the same minute collides on the score table) is on /status as a failed score run.
        log.exception("rescoring before the digest failed; sending on the scores as they stand")


def retry_digests(
    *, mailer: BulkMailer | None = None, encoder: Encoder | None = None, now: datetime | None = None
) -> digest_service.DigestRunResult | None:
    """The scheduler's retry pass (DIGEST_RETRY_CRON): what is due again; no run record when nothing is."""
    with unit_of_work() as session:
        # Closing what can no longer go must happen even when nothing is due, or a delivery of
        # someone who left would wait for their return; digests the window closed are a run's
        # failures (on /status), even in a run with nothing left to send.
        expired = digest_service.expire_overdue(
            session, now=now or datetime.now(UTC), settings=get_settings()
        )
        if digest_service.due_count(session, now=now or datetime.now(UTC)) == 0 and expired == 0:
            return None
    return _deliver(
        params={"retry": True}, prepare=None, mailer=mailer, encoder=encoder, now=now, expired=expired
    )


def _settings_with_the_sites_url() -> Settings:
    """The settings, read again if a site has published another URL since they were cached: a
    scheduler started before `papertide up --port P`, or still running after the site moved, must
    link to where the site answers now (config.current_base_url)."""
    settings = get_settings()
    if current_base_url(settings) != settings.base_url:
        get_settings.cache_clear()
        settings = get_settings()
    return settings


class RunStopped(Exception):
    """The run stopped early on purpose; `result.stopped` says why, the rest waits for the next run."""


class MailServerDown(RunStopped):
    """The circuit breaker: the run stopped after SMTP_BREAKER_FAILURES server failures in a row."""


class HandOffLocksLost(RunStopped):
    """The session holding the run's hand-off locks ended: another sender may take its deliveries."""


def _deliver(
    *,
    params: dict[str, object],
    prepare: date | Literal["local"] | None,
    mailer: BulkMailer | None,
    encoder: Encoder | None,
    now: datetime | None,
    senders: int | None = None,
    others: senders_module.Senders | None = None,
    expired: int = 0,
) -> digest_service.DigestRunResult:
    """One digest run in this process, with `senders` processes in all (default DIGEST_SENDERS)
    when enough digests are due (worker/senders.py; `others`: started already, waiting for the
    word); the result counts every sender's digests, and as failed the `expired` ones the retry
    window closed just before."""
    result = digest_service.DigestRunResult(failed=expired)
    others = others if others is not None else senders_module.Senders()
    try:
        _run_and_send(
            result,
            params=params,
            prepare=prepare,
            mailer=mailer,
            encoder=encoder,
            now=now,
            senders=senders,
            others=others,
        )
    except RunStopped:
        pass  # recorded as the run's failure; what was sent is in `result`, the rest waits
    except (KeyboardInterrupt, SystemExit):
        others.stop()  # interrupted: the others end now too (each leaves at most one message unknown)
        raise
    finally:
        # Otherwise the other senders are waited for (told to stop if never told to go); one that
        # stopped early or died makes the whole run one that stopped early.
        for outcome in others.finish():
            result.merge(outcome.counts)
            result.stopped = result.stopped or outcome.stopped
    return result


def _run_and_send(
    result: digest_service.DigestRunResult,
    *,
    params: dict[str, object],
    prepare: date | Literal["local"] | None,
    mailer: BulkMailer | None,
    encoder: Encoder | None,
    now: datetime | None,
    senders: int | None,
    others: senders_module.Senders,
) -> None:
    settings = _settings_with_the_sites_url()
    with record_run("digest", params=params, work=("sent", "deferred", "failed")) as run:
        run.counts = result.counts
        # Inside the run: links that would not reach the site (production with no public
        # PAPERTIDE_BASE_URL) are a failed digest run with its reason on /status, before anything
        # is composed or sent. (A bad SMTP_URL never gets here: the settings refuse it at start.)
        settings.require_mail_base_url()
        given, mailer = mailer, mailer or mailer_from_settings(settings)
        with unit_of_work() as session:
            if isinstance(prepare, date):
                digest_service.prepare_deliveries(session, now=now or datetime.now(UTC), digest_date=prepare)
            elif prepare == LOCAL_DATE:
                digest_service.prepare_deliveries_now(session, now=now or datetime.now(UTC))
            if prepare is not None:  # (the retry pass has closed what cannot go already)
                result.failed += digest_service.expire_overdue(
                    session, now=now or datetime.now(UTC), settings=settings
                )
                run.counts = result.counts
            wanted = senders or settings.digest_senders
            # (How many are due matters only to a run that may share them with other senders.)
            due = digest_service.due_count(session, now=now or datetime.now(UTC)) if wanted > 1 else 0
        load = (lambda: encoder) if encoder is not None else functools.cache(optional_encoder)
        # The model the settings name, known without loading it (a given encoder names its own).
        digests = DigestRun(encoder=load, model=settings.embedding_model if encoder is None else None)
        _warm_up(digests, now=now)  # stored before the other senders go: they load no model
        extra = senders_module.extra_senders(wanted, due=due)
        if not others.started:  # none started early: start those this run wants now
            _start_senders(others, extra, params=params, mailer=given, now=now)
        others.release(extra)
        _send_due(run, result, mailer=mailer, digests=digests, now=now)


def _start_senders(
    others: senders_module.Senders,
    count: int,
    *,
    params: dict[str, object],
    mailer: BulkMailer | None,
    now: datetime | None,
) -> senders_module.Senders:
    """`count` more senders in `others`, waiting for the word. `mailer`: the one the run was given,
    else None: each sender makes its own from the settings, inside its own run record (whose
    failure is on /status, not a crash here)."""
    others.start(count, _another_sender, args=(params, mailer, now))
    return others


def _another_sender(
    params: dict[str, object],
    mailer: BulkMailer | None,
    now: datetime | None,
    orders: senders_module.Orders,
    number: int,
    results: Any,
) -> None:
    """A sender process's whole life (worker/senders.py): when the run says go, send what is due
    and report the counts."""
    if not orders.wait():
        return
    try:
        result = _deliver(
            params=params | {"sender": number}, prepare=None, mailer=mailer, encoder=None, now=now, senders=1
        )
    except OperationalError as error:
        # The database went away (a restart, a cut connection) or refused what it was asked: one
        # line in the database's own words, as the run's own process prints for itself, not a
        # traceback from each sender.
        why = f"sender {number} stopped on a database error: {error_line(error)}"
        log.error("%s; the rest waits for the next run", why)
        results.put(senders_module.Outcome({}, why))
        return
    results.put(
        senders_module.Outcome(result.counts, result.stopped and f"sender {number}: {result.stopped}")
    )


def _send_due(
    run: RunHandle,
    result: digest_service.DigestRunResult,
    *,
    mailer: BulkMailer,
    digests: DigestRun,
    now: datetime | None,
) -> None:
    """Batch after batch, in id order: claim, compose and commit `sending` together; hand each
    message over on the run's one mail session with no transaction open; commit each outcome as
    soon as the server has answered (so a killed sender leaves at most that one message unknown)."""
    settings = get_settings()
    breaker = _Breaker(limit=settings.smtp_breaker_failures)
    with (
        one_blas_thread(),  # small matrix products: spinning BLAS threads cost more than they gave
        _hand_off_locks() as locks,
        _outcomes() as outcomes,
        mailer.session() as post,
    ):
        line = _Line(post=post, outcomes=outcomes, locks=locks)
        # The first pass leaves `sending` rows alone, so two live senders never row-lock each
        # other's hand-offs (a claim holding them made the other's `sent` wait for its commit);
        # later passes, from the start again, take those a dead sender left.
        after, progress, in_hand_off = 0, False, False
        while True:
            try:
                with unit_of_work() as session:
                    batch = digest_service.start_batch(
                        session,
                        locks=locks,
                        now=now or datetime.now(UTC),
                        after=after,
                        size=DIGEST_BATCH,
                        settings=settings,
                        run=digests,
                        in_hand_off=in_hand_off,
                    )
            except digest_service.LockSessionEnded:  # with the last message: nothing else to put back
                _stop([], result=result, stop=HandOffLocksLost(_LOCKS_LOST))
            except digest_service.ComposeFailed as failed:
                if (put_off := _put_off(failed, now=now)) is not None:
                    result.add(put_off)
                run.counts = result.counts
                progress = True  # it is deferred now: claiming from the same cursor skips it
                continue
            if batch.last_id is None:
                if not progress and in_hand_off:
                    return
                # Once more from the start, for what another sender had row-locked as the cursor
                # passed, and for what a dead sender left in hand-off.
                after, progress, in_hand_off = 0, False, True
                continue
            after, progress = batch.last_id, progress or bool(batch.hand_offs)
            try:
                _hand_over_batch(batch, line=line, result=result, run=run, breaker=breaker, now=now)
            finally:
                digest_service.release(locks, batch)


DIGEST_BATCH = 50  # deliveries claimed, composed and committed `sending` in one transaction


@dataclass
class _Breaker:
    """Server failures in a row (docs/operations.md#digests): the run stops at `limit`."""

    limit: int
    failures: int = 0

    def trips(self, error: MailError | None) -> bool:
        """Count a hand-off's outcome. Only the server's own answer (an acceptance, or a reply
        with a code) shows it is up and resets the count; an outcome decided without asking it
        (an address it cannot take, known from its EHLO) leaves the count as it was."""
        if error is not None and error.kind == MailFailure.SERVER:
            self.failures += 1
        elif error is None or error.code is not None:
            self.failures = 0
        return self.failures >= self.limit


def _warm_up(digests: DigestRun, *, now: datetime | None) -> None:
    try:
        with unit_of_work() as session:
            digest_service.warm_up(session, run=digests, now=now or datetime.now(UTC))
    except Exception:
        # The digests of readers with interests then try the model one by one (what was read or
        # encoded before the failure is kept for the run), and are put off if it still fails; the
        # others go out. Vectors not stored are encoded again by the next run.
        log.exception("loading or encoding the readers' interest phrases failed")


def _put_off(
    failed: digest_service.ComposeFailed, *, now: datetime | None
) -> digest_service.Delivered | None:
    log.exception("digest run: %s; put off, going on with the next", failed)
    with unit_of_work() as session:
        return digest_service.put_off(
            session, failed=failed, now=now or datetime.now(UTC), settings=get_settings()
        )


@dataclass(frozen=True)
class _Line:
    """Where a run's messages go, and where their outcomes are written, one commit per message:
    `sent` by one autocommitted statement on `locks`, the session that holds the hand-off locks (so
    the record also shows that session is still there, with no round trip of its own); anything
    else, and a `sent` that session could not record, in a transaction on `outcomes`."""

    post: MailSession
    outcomes: Connection
    locks: Connection


def _hand_over_batch(
    batch: digest_service.Batch,
    *,
    line: _Line,
    result: digest_service.DigestRunResult,
    run: RunHandle,
    breaker: _Breaker,
    now: datetime | None,
) -> None:
    # Before each message the sender knows that the session holding its locks has answered since
    # the last message went out: the last `sent` was recorded on it, or it answers a check now.
    answered = False
    n = -1
    try:
        for n, hand_off in enumerate(batch.hand_offs):
            if hand_off.envelope is None:  # nothing new for this reader: no mail, no word from the server
                result.add(digest_service.Delivered(hand_off.delivery_id, DeliveryStatus.EMPTY))
                run.counts = result.counts
                continue
            if not answered and not digest_service.holds_hand_off_locks(line.locks):
                _stop(batch.hand_offs[n:], result=result, stop=HandOffLocksLost(_LOCKS_LOST))
            delivered, error, answered = _hand_over(hand_off, hand_off.envelope, line=line, now=now)
            result.add(delivered)
            run.counts = result.counts
            if breaker.trips(error):
                why = (
                    f"the mail server failed {breaker.failures} times in a row (last: {error}); "
                    "stopped early, the rest waits for the next run"
                )
                _stop(batch.hand_offs[n + 1 :], result=result, stop=MailServerDown(why))
    except (KeyboardInterrupt, SystemExit):
        # Ctrl-C or SIGTERM (docker stop): message n may be with the server (the unknown case); the
        # rest of the batch never was. It goes back to how it was, as after the breaker, rather than
        # wait as a dead sender's hand-off (and, past the window, be failed as one the server "may
        # have taken").
        _put_back_on_the_way_out(batch.hand_offs[n + 1 :])
        raise


def _put_back_on_the_way_out(unsent: list[digest_service.HandOff]) -> None:
    try:
        with unit_of_work() as session:
            digest_service.put_back(session, unsent)
    except Exception as error:  # the interruption is what the caller must see; these wait as hand-offs
        log.warning("interrupted: could not put %d untried digests back: %s", len(unsent), error)


_LOCKS_LOST = (
    "lost the database session that held this run's hand-off locks (terminated, or an idle"
    " timeout); stopped before the next message so that no other sender and this one both send"
    " it, the rest waits for the next run"
)


def _stop(
    unsent: list[digest_service.HandOff], *, result: digest_service.DigestRunResult, stop: RunStopped
) -> NoReturn:
    with unit_of_work() as session:
        # Never handed over: back to how they were, so they wait for the next run.
        digest_service.put_back(session, unsent, locks_lost=isinstance(stop, HandOffLocksLost))
    result.stopped = str(stop)
    log.error("digest run %s", stop)
    raise stop


def _hand_over(
    hand_off: digest_service.HandOff, envelope: Envelope, *, line: _Line, now: datetime | None
) -> tuple[digest_service.Delivered, MailError | None, bool]:
    """Give the message to the mail server (no transaction is open), then record how that ended;
    the last item says whether the hand-off locks' session recorded it (and so is still there)."""
    error: MailError | None = None
    try:
        line.post.send(envelope)
    except MailError as failed:
        error = failed
    if error is None:
        sent = digest_service.record_sent_holding_locks(
            line.locks, hand_off=hand_off, now=now or datetime.now(UTC)
        )
        if sent is not None:
            return sent, None, True
    with unit_of_work(line.outcomes) as session:
        delivered = digest_service.record_outcome(
            session, hand_off=hand_off, error=error, now=now or datetime.now(UTC), settings=get_settings()
        )
    return delivered, error, False


@contextmanager
def _hand_off_locks() -> Iterator[Connection]:
    """The run's own autocommit connection, outside the pool: the advisory lock it holds while a
    message is with the mail server is not a transaction, and goes when it closes or the process dies.
    It also records each `sent`, committing without waiting for the disk as `_outcomes` does."""
    connection = get_engine().connect().execution_options(isolation_level="AUTOCOMMIT")
    connection.detach()
    try:
        connection.exec_driver_sql("SET synchronous_commit TO off")
        digest_service.keep_open(connection)
        yield connection
    finally:
        connection.close()


@contextmanager
def _outcomes() -> Iterator[Connection]:
    """A connection of the run's own for recording outcomes, outside the pool (no checkout and ping
    per message), committing without waiting for the disk (synchronous_commit off): a database crash
    can lose the last outcomes committed, which leaves those deliveries `sending`, resent as the
    same bytes (the unknown case, docs/operations.md#digests); a crash of the sender loses none."""
    connection = get_engine().connect()
    connection.detach()  # its settings must not go back to the pool with it
    try:
        connection.exec_driver_sql("SET synchronous_commit TO off")
        digest_service.keep_open(connection)  # it may wait long between two failures to record
        connection.commit()
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
