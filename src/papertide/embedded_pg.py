"""Start (or reuse) the embedded PostgreSQL 16 + pgvector from the `pgserver` package.

The rule: the server runs while some papertide process uses it, and the last one to end stops it.
Each process that uses it records itself (pid and start time) in DATA_DIR/pg.users; at its exit,
normal, Ctrl-C or SIGTERM, it removes itself, and if no live process is left, it stops the server.
So `papertide up` stops PostgreSQL when it ends, whatever ran beside it; a command still running
then is not cut off: it keeps the server and stops it when it ends itself. A process killed too
hard to clean up (kill -9) is not counted, and the next process to end stops the server it left.

pgserver has a count of its own, but it counts pids that died without cleaning up (kill -9, a
SIGTERM the default way) as users forever, so a server outlived every papertide process.

PostgreSQL's stock settings (128 MB of shared buffers, 64 MB for an index build) suit a toy; the
server is sized to the machine instead (`server_settings`), through DATA_DIR/pg/papertide.conf,
which postgresql.conf includes. pgserver takes no settings of its own, so a new DATA_DIR is
restarted once right after initdb; an existing one gets them at its next start.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from papertide.config import get_settings

log = logging.getLogger(__name__)

DATABASE_NAME = "papertide"
SETTINGS_FILE = "papertide.conf"
_INCLUDE = f"include_if_exists = '{SETTINGS_FILE}'"
_servers: dict[Path, Any] = {}

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class Machine:
    """What the server may use: memory in bytes and CPU cores."""

    memory: int
    cores: int


def this_machine() -> Machine:
    """This machine's memory (a cgroup limit counts; PAPERTIDE_EMBEDDED_PG_MEMORY_MB overrides) and cores."""
    override = get_settings().embedded_pg_memory_mb
    memory = override * MB if override else _physical_memory()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return Machine(memory=memory, cores=max(1, cores))


def server_settings(machine: Machine) -> dict[str, str]:
    """postgresql.conf values for `machine`; the reasons are in docs/operations.md (PostgreSQL for a million papers)."""
    memory, cores = machine.memory, machine.cores
    return {
        # A quarter of memory holds the hot indexes (HNSW: ~2 KB a 384-d vector); past 16 GB the
        # operating system's cache serves as well.
        "shared_buffers": _mb(_clamp(memory // 4, 128 * MB, 16 * GB)),
        "effective_cache_size": _mb(memory * 3 // 4),
        "work_mem": _mb(_clamp(memory // 512, 4 * MB, 64 * MB)),
        # The session that builds an HNSW index raises it to the graph's size (embeddings.repository).
        "maintenance_work_mem": _mb(_clamp(memory // 16, 64 * MB, 2 * GB)),
        "autovacuum_work_mem": _mb(_clamp(memory // 64, 64 * MB, 1 * GB)),
        # Each process holds a pool of up to 20 connections (db.py): `papertide up`'s web processes
        # (one per core, at most 4), its worker and scheduler, and any command run beside them;
        # PostgreSQL's default of 100 is used up by five such processes.
        "max_connections": "200",
        "max_worker_processes": str(max(8, cores + 4)),
        "max_parallel_workers": str(cores),
        # The leader builds too: leader + (cores - 1) workers keep every core busy.
        "max_parallel_maintenance_workers": str(_clamp(cores - 1, 1, 8)),
        "max_parallel_workers_per_gather": str(_clamp(cores // 2, 1, 4)),
    }


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
            if not (pg_dir / "postmaster.pid").exists():
                users.pop(UNKNOWN_USERS, None)  # nobody uses a server that is not running
            settings = server_settings(this_machine())
            configure(pg_dir, settings)  # an existing DATA_DIR: in place before it starts
            server = _get_server(pg_dir)
            # A new DATA_DIR (initdb has just made postgresql.conf), or a server left running from
            # before: it runs on other settings. Restart it, unless another papertide process uses it.
            changed = configure(pg_dir, settings)
            if not users and (changed or _settings_newer(server, pg_dir)):
                _restart(server, pg_dir)
            _servers[pg_dir] = server
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
        if UNKNOWN_USERS in users:
            log.warning(
                "PostgreSQL keeps running: %s was damaged, so who uses it is unknown. Once no papertide"
                " process runs, stop it with `pg_ctl stop -D %s`; the next start begins afresh",
                pg_dir.parent / "pg.users",
                pg_dir,
            )
            return
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
        server = get_server(pg_dir, cleanup_mode=None)
    if not (pg_dir / "postmaster.pid").exists():
        # pgserver keeps one handle per directory: this process released (stopped) it before.
        server.ensure_postgres_running()
    return server


def _stop(server: Any, pg_dir: Path) -> None:
    from pgserver import pg_ctl  # type: ignore[attr-defined]  # made at import by pgserver._commands

    try:
        # Fast: connections still open (only ours, or no one's: every papertide user has gone) close.
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pg_dir, user=server.system_user)
    except Exception:
        log.exception("could not stop the embedded PostgreSQL in %s", pg_dir)


def configure(pg_dir: Path, settings: dict[str, str]) -> bool:
    """Write `settings` to pg_dir/papertide.conf and include it; True if either changed (a restart applies it).

    Nothing before initdb. postgresql.auto.conf is read after the include, so an operator's
    ALTER SYSTEM SET still wins over any value here."""
    main = pg_dir / "postgresql.conf"
    if not main.exists():
        return False
    body = "# Written by papertide at each start: sized to this machine (embedded_pg.py).\n" + "".join(
        f"{name} = '{value}'\n" for name, value in settings.items()
    )
    ours = pg_dir / SETTINGS_FILE
    changed = not ours.exists() or ours.read_text() != body
    if changed:
        ours.write_text(body)
    text = main.read_text()
    if _INCLUDE not in text.splitlines():
        main.write_text(text + f"\n{_INCLUDE}\n")
        changed = True
    return changed


def _settings_newer(server: Any, pg_dir: Path) -> bool:
    """papertide.conf changed after the running server started (one left by an older papertide, say)."""
    with psycopg.connect(str(server.get_uri()), autocommit=True) as conn:
        row = conn.execute("SELECT extract(epoch FROM pg_postmaster_start_time())").fetchone()
    return row is not None and (pg_dir / SETTINGS_FILE).stat().st_mtime > float(row[0])


def _restart(server: Any, pg_dir: Path) -> None:
    from pgserver import pg_ctl  # type: ignore[attr-defined]  # made at import by pgserver._commands

    log.info("restarting the embedded PostgreSQL in %s with settings sized to this machine", pg_dir)
    # pg_ctl restarts with the options the server was started with (socket, no TCP); -l as pgserver's start.
    pg_ctl(["-w", "-m", "fast", "-l", str(pg_dir / "log"), "restart"], pgdata=pg_dir, user=server.system_user)
    server.ensure_postgres_running()  # pgserver reads the new postmaster's pid


def _physical_memory() -> int:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            total = min(total, int(Path(limit).read_text()))
        except (OSError, ValueError):
            continue  # absent, or "max": no limit
    return total


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


def _mb(size: int) -> str:
    return f"{size // MB}MB"


# Among the users once the registry could not be read: someone may use the server, so it stays up
# until a start finds it stopped.
UNKNOWN_USERS = "unknown"


@contextmanager
def _users(pg_dir: Path) -> Iterator[dict[str, str]]:
    """The live papertide processes using the server, under a lock across processes; saved on exit."""
    registry = pg_dir.parent / "pg.users"
    with (pg_dir.parent / "pg.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            recorded = json.loads(registry.read_text()) if registry.exists() else {}
            users = {
                pid: started
                for pid, started in recorded.items()
                if pid == UNKNOWN_USERS or _started(int(pid)) == started
            }
        except (OSError, ValueError, AttributeError):
            # Written atomically, so only damage from outside gets here. Who uses the server is
            # unknown, and a running `papertide up` never registers again: the marker stays, and
            # nobody stops or restarts the server, until a start finds it stopped (admin_uri). A
            # server left running is harmless; one stopped under `up` mid digest run is not.
            log.warning("%s is unreadable: the embedded PostgreSQL will be left running", registry)
            users = {UNKNOWN_USERS: "unreadable registry"}
        yield users
        _write_atomically(registry, json.dumps(users))


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text`: a kill or a full disk midway leaves the old file whole."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        with temporary.open("w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


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
