"""Engine, sessions, the request session dependency and unit_of_work() for jobs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from papertide import embedded_pg, paths
from papertide.config import get_settings


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def error_line(error: SQLAlchemyError) -> str:
    """The first line of the database's own words for `error` ("connection refused", "terminating
    connection due to administrator command"): what a command prints, without SQLAlchemy's statement
    and link lines."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    return (str(cause).strip().splitlines() or [""])[0]


@lru_cache
def database_url() -> str:
    """PAPERTIDE_DATABASE_URL, or the embedded server's URL (starting it if needed)."""
    settings = get_settings()
    if settings.database_url:
        return normalize_url(settings.database_url)
    return embedded_pg.start(settings.data_dir)


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine."""
    return create_engine(database_url(), pool_pre_ping=True, pool_size=10, max_overflow=10)


@lru_cache
def session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def unit_of_work(connection: Connection | None = None) -> Iterator[Session]:
    """A session for one step: commit on success, roll back on any error. The edge owns it.

    On `connection` when given (a connection a job holds for its length), else from the pool."""
    opened = Session(bind=connection, expire_on_commit=False) if connection else session_factory()()
    with opened as session:
        try:
            yield session
            session.commit()
        except BaseException:
            _roll_back(session)
            raise


def _roll_back(session: Session) -> None:
    """Roll back after an error, which stays the one raised: a Ctrl-C in the middle of a query
    leaves its connection unable to roll back, and that error raised instead would turn the
    worker's "stop" into "log and retry". Closing the session then discards the connection."""
    with contextlib.suppress(SQLAlchemyError):
        session.rollback()


class CommitError(RuntimeError):
    """The request's changes could not be committed; nothing of them was saved."""


def get_session() -> Iterator[Session]:
    """FastAPI dependency: one unit of work per request, committed at the edge.

    Declared with `scope="function"` (web/deps.py), so the commit runs before the response is
    sent: a success page means the change is saved, and a failed commit becomes an error page.
    """
    with session_factory()() as session:
        try:
            yield session
        except BaseException:
            _roll_back(session)
            raise
        try:
            session.commit()
        except SQLAlchemyError as error:
            session.rollback()
            raise CommitError(str(error).splitlines()[0]) from error


@lru_cache
def read_session_factory() -> sessionmaker[Session]:
    # BEGIN READ ONLY (psycopg sends it with the BEGIN: no extra round trip): a write slipped into a
    # read-only request fails loudly instead of being rolled back unseen.
    return sessionmaker(bind=get_engine().execution_options(postgresql_readonly=True))


@contextmanager
def read_session() -> Iterator[Session]:
    """A session for reading only, never committed: closing it hands the connection back to the pool,
    which rolls the transaction back. No COMMIT for a transaction that wrote nothing, and what it
    loaded stays readable (a closed session detaches its objects; a rollback would expire them).

    Lazy like every session: a block that runs no query never takes a connection."""
    with read_session_factory()() as session:
        yield session


def get_read_session() -> Iterator[Session]:
    """FastAPI dependency for read-only routes: read_session() per request."""
    with read_session() as session:
        yield session


def alembic_config(url: str | None = None) -> Config:
    """Alembic config pointing at the bundled migrations and at `url` (default: ours)."""
    config = Config(str(paths.ALEMBIC_INI))
    config.set_main_option("script_location", str(paths.MIGRATIONS_DIR))
    config.attributes["database_url"] = url or database_url()
    return config


def upgrade(url: str | None = None) -> None:
    """`alembic upgrade head` against `url` (default: ours); processes that start together take
    turns (an advisory lock in migrations/env.py), so the second finds the schema at head."""
    command.upgrade(alembic_config(url), "head")


def reset() -> None:
    """Forget the engine and settings (tests point each case at a fresh database)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    for cached in (read_session_factory, session_factory, get_engine, database_url, get_settings):
        cached.cache_clear()
