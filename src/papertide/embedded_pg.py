"""Start (or reuse) the embedded PostgreSQL 16 + pgvector from the `pgserver` package.

The rule: the server runs while some papertide process uses it, and the last one to end stops it.
Each process that uses it records itself (pid and start time) in DATA_DIR/pg.users; at its exit,
normal, Ctrl-C or SIGTERM, it removes itself, and if no live process is left, it stops the server.
So `papertide up` stops PostgreSQL when it ends, whatever ran beside it; a command still running
then is not cut off: it keeps the server and stops it when it ends itself. A process killed too
hard to clean up (kill -9) is not counted, and the next process to end stops the server it left.

pgserver has a count of its own, but it counts pids that died without cleaning up (kill -9, a
SIGTERM the default way) as users forever, so a server outlived every papertide process.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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
        with _users(pg_dir) as users:
            _servers[pg_dir] = _get_server(pg_dir)
            users[str(os.getpid())] = _started(os.getpid()) or "alive"
        atexit.register(release, pg_dir)
    return str(_servers[pg_dir].get_uri())


def release(pg_dir: Path) -> None:
    """This process no longer uses the server; stop it if no other live papertide process does."""
    server = _servers.pop(pg_dir, None)
    if server is None:
        return
    with _users(pg_dir) as users:
        users.pop(str(os.getpid()), None)
        if users:
            log.info("PostgreSQL keeps running for papertide processes %s", ", ".join(sorted(users)))
            return
        _stop(server, pg_dir)


def _get_server(pg_dir: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

        # cleanup_mode=None: pgserver never stops it on its own; release() does, by the rule above.
        return get_server(pg_dir, cleanup_mode=None)


def _stop(server: Any, pg_dir: Path) -> None:
    from pgserver import pg_ctl  # type: ignore[attr-defined]  # made at import by pgserver._commands

    try:
        # Fast: connections still open (only ours, or no one's: every papertide user has gone) close.
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pg_dir, user=server.system_user)
    except Exception:
        log.exception("could not stop the embedded PostgreSQL in %s", pg_dir)


@contextmanager
def _users(pg_dir: Path) -> Iterator[dict[str, str]]:
    """The live papertide processes using the server, under a lock across processes; saved on exit."""
    registry = pg_dir.parent / "pg.users"
    with (pg_dir.parent / "pg.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            recorded: dict[str, str] = json.loads(registry.read_text()) if registry.exists() else {}
        except ValueError:
            recorded = {}  # a torn write by a process killed midway: the live users re-register
        users = {pid: started for pid, started in recorded.items() if _started(int(pid)) == started}
        yield users
        registry.write_text(json.dumps(users))


def _started(pid: int) -> str | None:
    """When the process `pid` started (so a reused pid is not taken for it), or None if there is none."""
    try:
        # Field 22 of /proc/PID/stat, counted after the parenthesised command name (which may hold spaces).
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except FileNotFoundError:
        return None
    except OSError:
        pass  # no /proc (macOS): the pid alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "alive"


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
