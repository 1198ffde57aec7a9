"""Start (or reuse) the embedded PostgreSQL 16 + pgvector from the `pgserver` package."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger(__name__)

DATABASE_NAME = "papertide"
_servers: dict[Path, Any] = {}


def start(data_dir: Path) -> str:
    """Start the server in DATA_DIR/pg (or attach to the running one) and return papertide's database URL."""
    uri = admin_uri(data_dir)
    ensure_database(uri, DATABASE_NAME)
    return to_sqlalchemy_url(uri, DATABASE_NAME)


def admin_uri(data_dir: Path) -> str:
    """Start (or attach to) the server in DATA_DIR/pg; its libpq URI for the `postgres` database."""
    pg_dir = (data_dir / "pg").resolve()
    if pg_dir not in _servers:
        pg_dir.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

            # cleanup_mode="stop": the last papertide process attached to this data dir stops
            # the server on exit, so a second `papertide up` finds the data and starts it again.
            _servers[pg_dir] = get_server(pg_dir, cleanup_mode="stop")
    return str(_servers[pg_dir].get_uri())


def ensure_database(admin_uri: str, name: str) -> None:
    """Create database `name` on the server behind admin_uri unless it exists."""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            log.info("creating database %s", name)
            conn.execute(f'CREATE DATABASE "{name}"')


def to_sqlalchemy_url(uri: str, database: str) -> str:
    """Turn pgserver's `postgresql://postgres:@/postgres?host=/sock` into a psycopg 3 URL for `database`."""
    prefix, _, query = uri.partition("?")
    base = prefix.rsplit("/", 1)[0]
    url = f"{base}/{database}".replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{url}?{query}" if query else url
