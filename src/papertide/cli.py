"""The `papertide` command."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from papertide import site_url
from papertide.config import BaseUrlError, get_settings

app = typer.Typer(help="papertide: trending papers, hybrid search and daily digests.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations (Alembic).", no_args_is_help=True)
ingest_app = typer.Typer(help="Load papers from a source.", no_args_is_help=True)
digest_app = typer.Typer(help="Send or preview digests.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ingest_app, name="ingest")
app.add_typer(digest_app, name="digest")


@app.callback()
def _every_command() -> None:
    # SIGTERM (docker stop, systemd, kill) ends a command the way Ctrl-C does: run records get
    # their outcome and the embedded PostgreSQL is released. Python's default dies on the spot.
    # SIGINT too, explicitly: a shell that starts a command in the background (`papertide worker &`,
    # nohup) makes it ignore SIGINT, and Python keeps an ignored SIGINT ignored, so `kill -INT` did nothing.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # Help needs no settings, even bad ones (click keeps a subcommand's arguments from this callback).
    if not {"--help", "-h"} & set(sys.argv[1:]):
        _check_settings()


def _check_settings() -> None:
    """A bad setting stops every command at its start, named, rather than as a traceback later."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        get_settings()
    except SettingsError as error:  # a value that is not even JSON where JSON is read (a dict setting)
        field = re.search(r'field "(\w+)"', str(error))
        name = f"PAPERTIDE_{field.group(1).upper()}" if field else "a PAPERTIDE_ setting"
        _echo(f"error: {name}: not a value papertide can read ({error}); see README's settings table")
        raise typer.Exit(_bad_settings_exit()) from None
    except ValidationError as error:
        for problem in error.errors():
            message = str(problem["msg"]).removeprefix("Value error, ")
            name = "PAPERTIDE_" + "_".join(str(part) for part in problem["loc"]).upper()
            _echo(f"error: {message}" if message.startswith(name) else f"error: {name}: {message}")
        raise typer.Exit(_bad_settings_exit()) from None


def _bad_settings_exit() -> int:
    """2, a usage error; but 75 for `digest bounce`, which a mail server runs: there "try again
    later" keeps the reports queued until the settings are fixed, where 2 would bounce them."""
    return EX_TEMPFAIL if sys.argv[1:3] == ["digest", "bounce"] else 2


def _echo(message: str) -> None:
    typer.echo(message, err=True)


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Lines that say nothing an operator acts on: each job added to the scheduler, alembic's plugins.
    noisy = ("httpx", "sentence_transformers", "apscheduler.executors", "apscheduler.scheduler")
    for name in (*noisy, "uvicorn.access", "pgserver", "alembic.runtime.plugins"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def _site(host: str, port: int) -> Iterator[None]:
    """While the site runs, DATA_DIR/site_url holds its public URL: PAPERTIDE_BASE_URL if set, else
    where it listens. Links in emails, built here or by another command on the same data
    (`digest send` from another shell), then reach this site, not a port nobody listens on."""
    settings = get_settings()
    explicit = "base_url" in settings.model_fields_set
    url = settings.base_url if explicit else site_url.for_listener(host, port)
    with site_url.published(settings.data_dir, url):
        get_settings.cache_clear()  # this process's own settings read the URL just published
        if problem := get_settings().base_url_problem():
            # The pages work; only digests are refused (jobs._deliver), so start and say why.
            logging.getLogger(__name__).warning("digests will not be sent: %s", problem)
        yield


def _prepare_database(*, unreachable_exit: int = 1) -> None:
    """Start the embedded database or reach the configured one, and bring it to the latest
    migration; a database that cannot be reached ends the command with one line saying so (exit
    `unreachable_exit`)."""
    from sqlalchemy.exc import OperationalError

    from papertide import db

    settings = get_settings()
    if settings.uses_embedded_db:
        _echo(f"Using the embedded PostgreSQL in {settings.data_dir / 'pg'}")
    try:
        db.upgrade()
    except OperationalError as error:
        _echo(
            f"error: cannot reach the database ({db.error_line(error)}); check PAPERTIDE_DATABASE_URL"
            " and that it runs"
        )
        raise typer.Exit(unreachable_exit) from None


# Checked before any work: port 0 would publish http://127.0.0.1:0 (uvicorn picks a port nobody
# is told), and a port past 65535 fails only at the bind, after the sample was loaded and scored.
PortOption = Annotated[
    int, typer.Option(envvar="PORT", min=1, max=65535, help="TCP port to listen on, 1-65535")
]
MAX_DEFAULT_WEB_WORKERS = 4  # past this a small site gains little and each process holds its own memory


def default_web_workers() -> int:
    """One web process per core this process may use, at least 1, at most MAX_DEFAULT_WEB_WORKERS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WEB_WORKERS))


@app.command()
def up(
    host: str = "127.0.0.1",
    port: PortOption = 8000,
    web_workers: Annotated[
        int | None,
        typer.Option(min=1, help="web processes (default: one per core, at most 4)", show_default=False),
    ] = None,
) -> None:
    """Everything in one command: database, migrations, sample data, web, worker and scheduler."""
    _setup_logging()
    with _site(host, port):
        _run_everything(host, port, web_workers or default_web_workers())


def _run_everything(host: str, port: int, web_workers: int) -> None:
    import uvicorn

    from papertide.db import unit_of_work
    from papertide.papers import repository as paper_repository
    from papertide.web.app import create_app
    from papertide.worker import ingest, jobs
    from papertide.worker.loop import run_worker
    from papertide.worker.scheduler import run_as_leader

    settings = get_settings()
    _prepare_database()
    with unit_of_work() as session:
        empty = paper_repository.count_papers(session) == 0
    if empty:
        _echo("The database is empty: loading the bundled sample (real Hugging Face Daily Papers days).")
        summary = ingest.ingest_sample(progress=True)
        _echo(f"Sample loaded: {summary.counts}")
    jobs.score()
    stop = threading.Event()
    threads = [
        threading.Thread(target=run_worker, kwargs={"stop": stop}, name="worker", daemon=True),
        threading.Thread(
            target=run_as_leader, args=(settings,), kwargs={"stop": stop}, name="scheduler", daemon=True
        ),
    ]
    for thread in threads:
        thread.start()
    _echo(f"\n  papertide is running at http://{host}:{port}  (Ctrl-C stops it)\n")
    try:
        if web_workers == 1:
            uvicorn.run(
                # No warm-up here: the worker shares this process, and the query model caps torch
                # at one thread for the whole process (it would embed the sample on one thread).
                create_app(),
                host=host,
                port=port,
                log_level="warning",
                access_log=settings.access_log,
            )
        else:
            # Each web process is a spawned child that builds its own app (and joins the embedded
            # PostgreSQL as one more user, embedded_pg.py); the worker and scheduler stay here, once.
            uvicorn.run(
                "papertide.web.app:app_factory",
                factory=True,
                host=host,
                port=port,
                workers=web_workers,
                log_level="warning",
                access_log=settings.access_log,
            )
    except KeyboardInterrupt:
        pass  # uvicorn stopped on Ctrl-C or SIGTERM and passes the signal on: a normal end
    finally:
        # uvicorn's supervisor of several processes leaves its own signal handlers (a queue nobody
        # reads any more) and returns: a second Ctrl-C while the worker finishes must still stop us.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.default_int_handler)
        stop.set()
        _echo("stopping: the worker finishes its current batch")
        for thread in threads:
            thread.join(timeout=120)
        _echo("papertide stopped.")


@app.command()
def serve(host: str = "127.0.0.1", port: PortOption = 8000, workers: int = 1) -> None:
    """The web app only."""
    import uvicorn

    _setup_logging()
    # uvicorn stops on Ctrl-C or SIGTERM, then passes the signal on: a normal end, exit 0.
    with _site(host, port), contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            "papertide.web.app:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            access_log=get_settings().access_log,
        )


@app.command()
def worker(idle_seconds: float = 10.0) -> None:
    """The embedding + scoring loop; run as many as you like, on GPU or CPU."""
    from papertide.worker.loop import run_worker

    _setup_logging()
    stop = threading.Event()
    _stop_on_signal(stop)
    try:
        run_worker(stop=stop, idle_seconds=idle_seconds)
    except KeyboardInterrupt:
        stop.set()


def _stop_on_signal(stop: threading.Event) -> None:
    """Ctrl-C and SIGTERM set `stop`, then interrupt what runs. Set first: a KeyboardInterrupt raised
    inside a database call can be lost in its clean-up (SQLAlchemy's pool ping raised a
    ProgrammingError over it, the loop logged that as a failed step and went on), and the loop looks
    at `stop` after every step, so it ends all the same."""

    def interrupt(_signum: int, _frame: object) -> None:
        stop.set()
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, interrupt)


@app.command()
def scheduler(
    check_seconds: Annotated[
        float, typer.Option(help="how often the leader checks it still holds the lock (a new one waits 2x)")
    ] = 10.0,
) -> None:
    """The cron jobs (score, digests); several may run, one leads."""
    from papertide.worker.scheduler import run_as_leader

    _setup_logging()
    stop = threading.Event()
    _stop_on_signal(stop)
    try:
        run_as_leader(get_settings(), stop=stop, check_seconds=check_seconds)
    except KeyboardInterrupt:
        stop.set()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (alembic upgrade head)."""
    _prepare_database()
    _echo("Database is at the newest migration.")


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision."""
    from alembic import command

    from papertide import db

    command.current(db.alembic_config())


def _report(summary: object) -> None:
    typer.echo(f"{summary.status}: {summary.counts}")  # type: ignore[attr-defined]


@ingest_app.command("sample")
def ingest_sample(
    path: Annotated[Path | None, typer.Argument(help="another file in the sample's format")] = None,
) -> None:
    """The bundled offline sample."""
    from papertide.worker import ingest

    _run_ingest(lambda: ingest.ingest_sample(path=path, progress=True))


@ingest_app.command("hf-daily")
def ingest_hf_daily(
    files: Annotated[list[Path] | None, typer.Argument(help="saved responses named YYYY-MM-DD.json")] = None,
    on: Annotated[str | None, typer.Option("--date", help="one day, YYYY-MM-DD")] = None,
    since: Annotated[str | None, typer.Option(help="first day, YYYY-MM-DD")] = None,
    until: Annotated[str | None, typer.Option(help="last day (default today)")] = None,
) -> None:
    """Hugging Face Daily Papers: from saved files, or live for --date / --since."""
    from papertide.worker import ingest

    if files:
        _run_ingest(lambda: ingest.ingest_hf_files(files, progress=True))
    else:
        days = _days(on, since, until)
        _run_ingest(lambda: ingest.ingest_hf_days(days, progress=True))


def _days(on: str | None, since: str | None, until: str | None) -> list[date]:
    try:
        if on:
            return [date.fromisoformat(on)]
        if since:
            first, last = (
                date.fromisoformat(since),
                date.fromisoformat(until) if until else datetime.now(UTC).date(),
            )
            return [first + timedelta(days=n) for n in range((last - first).days + 1)]
    except ValueError as error:
        raise typer.BadParameter(f"dates are YYYY-MM-DD: {error}") from None
    raise typer.BadParameter("give saved files, --date D, or --since D [--until D]")


@ingest_app.command("jsonl")
def ingest_jsonl(path: Path) -> None:
    """papertide's own JSONL records (docs/ingest.md)."""
    from papertide.worker import ingest

    _run_ingest(lambda: ingest.ingest_jsonl(path, progress=True))


def _run_ingest(run: Callable[[], object]) -> None:
    """Run one ingestion, print its outcome, exit 1 with the reason when it failed."""
    from papertide.ingest.service import IngestError

    _setup_logging()
    _prepare_database()
    try:
        _report(run())
    except IngestError as error:
        _echo(f"error: {error}")
        raise typer.Exit(1) from None


def _date_option(value: str | None, name: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise typer.BadParameter(f"{name} must be YYYY-MM-DD, got {value!r}") from None


@ingest_app.command("arxiv-oai")
def ingest_arxiv_oai(
    set_spec: Annotated[str, typer.Option("--set", help="OAI set: cs, math, physics:hep-th, ...")] = "cs",
    since: Annotated[
        str | None, typer.Option("--from", help="records changed on or after YYYY-MM-DD")
    ] = None,
) -> None:
    """arXiv OAI-PMH ListRecords; resumes an interrupted harvest from its saved token."""
    from papertide.worker import ingest

    from_date = _date_option(since, "--from")
    _run_ingest(lambda: ingest.harvest_oai(set_spec=set_spec, from_date=from_date, progress=True))


@ingest_app.command("arxiv-api")
def ingest_arxiv_api(
    query: Annotated[
        str | None, typer.Option(help="an arXiv search_query, e.g. 'cat:cs.CL AND ti:speech'")
    ] = None,
    ids: Annotated[str | None, typer.Option(help="comma-separated arXiv ids")] = None,
    max_results: Annotated[int | None, typer.Option(help="stop a query after this many")] = None,
) -> None:
    """The arXiv API: a search query (paged) or a list of ids (batches of 100)."""
    from papertide.worker import ingest

    if bool(query) == bool(ids):
        raise typer.BadParameter("give exactly one of --query or --ids")
    id_list = [i.strip() for i in (ids or "").split(",") if i.strip()]
    _run_ingest(
        lambda: ingest.query_api(query=query, ids=id_list or None, max_results=max_results, progress=True)
    )


@ingest_app.command("arxiv-rss")
def ingest_arxiv_rss(
    categories: Annotated[str, typer.Option(help="comma-separated, e.g. cs.CL,cs.LG")] = "cs.CL,cs.LG",
) -> None:
    """Today's arXiv announcements (new / cross / replace); unseen ids get their full record."""
    from papertide.worker import ingest

    wanted = [c.strip() for c in categories.split(",") if c.strip()]
    _run_ingest(lambda: ingest.fetch_rss(categories=wanted, progress=True))


@ingest_app.command("kaggle")
def ingest_kaggle(
    path: Path,
    categories: Annotated[str | None, typer.Option(help="keep only these (prefixes): cs,stat.ML")] = None,
    since: Annotated[str | None, typer.Option(help="keep records updated on or after YYYY-MM-DD")] = None,
    defer_index: Annotated[bool, typer.Option(help="leave the keyword index to the worker")] = False,
) -> None:
    """The arXiv metadata snapshot (JSON lines): streamed, COPY-loaded, merged."""
    from papertide.worker import ingest, jobs

    wanted = {c.strip() for c in categories.split(",") if c.strip()} if categories else None
    since_date = _date_option(since, "--since")
    _run_ingest(lambda: ingest.load_snapshot(path, categories=wanted, since=since_date, progress=True))
    if not defer_index:
        typer.echo(f"keyword index: {jobs.index_keywords(progress=True)} papers")


@app.command()
def embed(max_batches: int | None = None) -> None:
    """Embed every stale paper, then exit."""
    from papertide.worker import jobs

    _setup_logging()
    _prepare_database()
    typer.echo(f"embedded {jobs.embed(max_batches=max_batches, progress=True)} papers")


@app.command()
def reindex() -> None:
    """Rebuild the keyword index from the database; searches use the old one until it is done."""
    from papertide.search import keyword_index
    from papertide.worker import jobs

    _setup_logging()
    _prepare_database()
    try:
        try:
            done = jobs.rebuild_keyword_index(progress=True)
        except keyword_index.KeywordIndexDamaged:
            # Nothing in an index that cannot be opened is worth keeping: the database holds it all.
            keyword_index.discard_if_damaged(get_settings())
            done = jobs.rebuild_keyword_index(progress=True)
    except keyword_index.KeywordIndexBusy:
        _echo("another process is writing the keyword index; try again when it has finished")
        raise typer.Exit(1) from None
    except keyword_index.KeywordIndexUnavailable as error:  # e.g. a read-only DATA_DIR
        _echo(f"error: {error}")
        raise typer.Exit(1) from None
    typer.echo(f"keyword index rebuilt: {done} papers")


@app.command()
def score() -> None:
    """Recompute trending scores, then exit."""
    from papertide.worker import jobs

    _prepare_database()
    typer.echo(f"scored: {jobs.score()}")


@digest_app.command("send")
def digest_send(
    on: Annotated[
        str | None,
        typer.Option("--date", help="digest date, YYYY-MM-DD (default: each reader's own local date now)"),
    ] = None,
    senders: Annotated[
        int | None,
        typer.Option(
            min=1, max=16, help="sender processes when many digests are due (default: DIGEST_SENDERS)"
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="send a --date older than the retry window (a backfill)"),
    ] = False,
) -> None:
    """Send every digest due on the date; a second run on the same date sends nothing."""
    from sqlalchemy.exc import OperationalError

    from papertide.worker import jobs

    _setup_logging()
    day = _digest_date(on, force=force)  # before the database starts: a typo is told at once
    _prepare_database()
    try:
        result = jobs.send_digests(digest_date=day, senders=senders)
    except BaseUrlError as error:  # recorded as the digest run's failure; nothing was sent
        _echo(f"error: {error}")
        raise typer.Exit(1) from None
    except OperationalError as error:  # a database restart, a cut connection: not a bug to trace
        from papertide.db import error_line

        reason = error_line(error)
        _echo(
            f"error: lost the database connection during the digest run ({reason}); run `papertide"
            " digest send` again to send the rest (a digest recorded as sent does not go again; after"
            " a database crash the last few may, as the same message)"
        )
        raise typer.Exit(1) from None
    typer.echo(
        f"sent {result.sent}, nothing new for {result.empty}, failed {result.failed},"
        f" retried later {result.deferred}"
    )
    if result.stopped:
        _echo(f"stopped early: {result.stopped}")
    if result.failed or result.stopped:
        raise typer.Exit(1)


def _digest_date(on: str | None, *, force: bool) -> date | None:
    """--date as a date, refused (exit 2) when it is not one, when it has begun for no reader
    anywhere (no reader would get it: each gets a date once their own local date reaches it), or
    when it is older than the retry window and --force is not given: every confirmed reader whose
    send days include it would get a digest of that old date today."""
    from papertide.digests.schedule import dates_a_reader_can_be_due

    try:
        day = date.fromisoformat(on) if on else None
    except ValueError:
        raise typer.BadParameter(f"--date must be YYYY-MM-DD, got {on!r}") from None
    if day is None:
        return day
    hours = get_settings().digest_retry_hours
    first, last = dates_a_reader_can_be_due(now=datetime.now(UTC), window=timedelta(hours=hours))
    if day > last:
        raise typer.BadParameter(
            f"--date {day} has not begun anywhere yet (the latest date on Earth is {last}): no reader"
            " gets a date before their own local date reaches it, and each gets it at their send hour"
        )
    if day < first and not force:
        raise typer.BadParameter(
            f"--date {day} is before {first}, the first date a reader can be due on now"
            f" (DIGEST_RETRY_HOURS is {hours:g}): every reader whose send days include it would get a"
            " digest of that old date today; give --force to send it all the same"
        )
    return day


@digest_app.command("preview")
def digest_preview(
    email: str,
    out: Annotated[
        Path | None, typer.Option(help="write the .eml here instead of printing the text part")
    ] = None,
) -> None:
    """Render the digest one subscriber would get now, without sending or recording anything."""
    from papertide.db import session_factory
    from papertide.digests.build import build_digest
    from papertide.digests.candidates import DigestRun
    from papertide.digests.schedule import local_time
    from papertide.subscribers import repository as subscriber_repository
    from papertide.worker import jobs

    _prepare_database()
    # The scores as they stand: a preview writes nothing, not even fresh scores.
    with session_factory()() as session:
        subscriber = subscriber_repository.get_by_email(session, email.strip().lower())
        if subscriber is None:
            _echo(f"error: no subscriber with the address {email!r}")
            raise typer.Exit(1)
        if (standing := _not_receiving(subscriber)) is not None:
            _echo(
                f"note: {subscriber.email} {standing}, so no digest goes to them now; this is what one would hold"
            )
        now = datetime.now(UTC)
        local = local_time(subscriber.time_zone, now)  # the date the reader's own digest would carry
        built = build_digest(
            session,
            subscriber=subscriber,
            digest_date=local.day if local else now.date(),
            settings=get_settings(),
            run=DigestRun(encoder=functools.cache(jobs.optional_encoder)),
        )
        session.rollback()  # the preview's tokens, and a model it retrained, are not kept
    if built is None:
        typer.echo("Nothing new to send to this subscriber.")
        return
    message = built.message
    # Its links' tokens were rolled back with the rest: they would answer 404 if clicked. Its vote
    # links sign the whole vote instead (no delivery to name), so they do work: say so.
    _echo(
        "a preview: nothing was stored, so its manage, unsubscribe and view links do not work;"
        " its vote links do, and would teach the reader's profile"
    )
    if out:
        out.write_bytes(bytes(message))
        typer.echo(f"wrote {out}")
    else:
        body = message.get_body(preferencelist=("plain",))
        typer.echo(body.get_content() if body else "")


def _not_receiving(subscriber: Any) -> str | None:
    """Why a subscriber gets no digest now (not confirmed, unsubscribed, paused), or None."""
    if subscriber.status == "pending":
        return "has not confirmed yet"
    if subscriber.status == "unsubscribed":
        return (
            f"unsubscribed on {subscriber.unsubscribed_at:%Y-%m-%d %H:%M} UTC"
            if subscriber.unsubscribed_at
            else "unsubscribed"
        )
    if subscriber.paused_at is not None:
        return f"paused the digest on {subscriber.paused_at:%Y-%m-%d %H:%M} UTC"
    return None


# sysexits.h, as a mail server reads a piped command's status: "try again later" keeps the message
# queued, where any other failure would bounce the bounce.
EX_NOINPUT = 66
EX_TEMPFAIL = 75


@digest_app.command("bounce")
def digest_bounce(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="files that each hold one message (a maildir's); none: one message on standard input"
        ),
    ] = None,
) -> None:
    """Act on bounces and complaints that came back by mail (RFC 3464 reports, ARF): a bad address
    is suppressed, a complaint unsubscribes. Pipe the envelope sender's mail into it, or give it
    files (docs/operations.md#bounces-and-complaints-that-come-back-later). Exit 0 when every
    message was read (acted on or ignored, each with a line saying why); 75 when one could not be
    handled now (the database unreachable or not preparable, a bad setting, an error while handling
    it), so the mail server keeps the message and tries again; 66 when a file could not be read.
    Running it twice on the same messages changes nothing more."""
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from papertide.db import error_line, unit_of_work
    from papertide.digests.feedback import handle_report
    from papertide.digests.reports import MAX_REPORT_BYTES

    messages: list[tuple[str, bytes | None]] = []
    for path in paths or []:
        try:
            with path.open("rb") as file:
                messages.append((str(path), file.read(MAX_REPORT_BYTES + 1)))
        except OSError as error:
            _echo(f"error: {path}: cannot read it ({error.strerror or error})")
            messages.append((str(path), None))
    if not paths:
        messages.append(("stdin", sys.stdin.buffer.read(MAX_REPORT_BYTES + 1)))
        while sys.stdin.buffer.read(1 << 20):  # the rest of an oversized one: the mail server must
            pass  # see it all taken, not a broken pipe
    try:
        _prepare_database(unreachable_exit=EX_TEMPFAIL)
    except typer.Exit:  # said why already
        raise
    except Exception as error:  # a read-only standby, a newer migration, a DATA_DIR this user may not open
        reason = (
            error_line(error) if isinstance(error, SQLAlchemyError) else f"{type(error).__name__}: {error}"
        )
        _echo(f"error: the database cannot be prepared ({reason}); nothing was handled: run again")
        raise typer.Exit(EX_TEMPFAIL) from None
    failed = False
    for name, raw in messages:
        if raw is None:
            continue
        try:
            with unit_of_work() as session:
                handled = handle_report(session, raw, now=datetime.now(UTC))
        except OperationalError as error:
            _echo(
                f"error: lost the database ({error_line(error)}); {name} and the rest were not handled: run again"
            )
            raise typer.Exit(EX_TEMPFAIL) from None
        except Exception:  # a bug, not the report: keep it (75) for a fixed release, go on with the rest
            logging.getLogger(__name__).exception("handling %s failed; it changed nothing", name)
            _echo(
                f"error: {name}: handling it failed (the traceback above); nothing of it was kept: run again"
            )
            failed = True
            continue
        typer.echo(f"{name}: {handled.outcome}: {handled.detail}")
    if failed:
        raise typer.Exit(EX_TEMPFAIL)
    if any(raw is None for _, raw in messages):
        raise typer.Exit(EX_NOINPUT)


@digest_app.command("dkim-record")
def digest_dkim_record() -> None:
    """The DNS TXT record that publishes the DKIM key emails are signed with (docs/operations.md)."""
    from papertide.digests.mailer import dkim_signer

    signer = dkim_signer(get_settings())
    if signer is None:
        _echo(
            "error: DKIM is off: set PAPERTIDE_DKIM_KEY_FILE and PAPERTIDE_DKIM_SELECTOR"
            " (docs/operations.md#reaching-inboxes-dkim-spf-and-dmarc)"
        )
        raise typer.Exit(1)
    name, value = signer.dns_record()
    # A TXT string holds at most 255 characters (RFC 1035 §3.3); a 2,048-bit key needs two, which
    # DNS servers join back into one value.
    strings = " ".join(f'"{value[start : start + 255]}"' for start in range(0, len(value), 255))
    typer.echo(f"{name}. IN TXT ( {strings} )")
    _echo(f"publish this record at {name}, then send a digest to a mailbox you can read and check its")
    _echo(f"Authentication-Results for dkim=pass header.d={signer.domain}")


@app.command()
def status() -> None:
    """The last runs of each job and source."""
    from papertide.db import unit_of_work
    from papertide.runs.repository import last_runs_by_source
    from papertide.runs.service import abandon_dead_runs

    _prepare_database()
    with unit_of_work() as session:
        abandon_dead_runs(session, now=datetime.now(UTC))  # a killed run shows as abandoned, not running
        for (job, source), runs in last_runs_by_source(session, per_source=3).items():
            typer.echo(f"{job} {source or ''}".strip())
            for run in runs:
                counts = ", ".join(f"{k} {v}" for k, v in run.counts.items())
                typer.echo(
                    f"  {run.started_at:%Y-%m-%d %H:%M} {run.status:<9} {counts} {run.error or ''}".rstrip()
                )
