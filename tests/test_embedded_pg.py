"""The embedded PostgreSQL is sized to the machine: a new DATA_DIR from its first start, an old one too."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from papertide import embedded_pg
from papertide.config import get_settings
from papertide.embedded_pg import GB, MB, Machine, server_settings

# PostgreSQL 16's own values, in bytes, which a server papertide starts must not keep.
STOCK = {
    "shared_buffers": 128 * MB,
    "effective_cache_size": 4 * GB,
    "work_mem": 4 * MB,
    "maintenance_work_mem": 64 * MB,
}
SIZED = (
    *STOCK,
    "autovacuum_work_mem",
    "max_parallel_workers",
    "max_parallel_maintenance_workers",
    "max_connections",
)


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """PAPERTIDE_EMBEDDED_PG_MEMORY_MB=4096: a modest server whatever the machine, and the override read."""
    monkeypatch.setenv("PAPERTIDE_EMBEDDED_PG_MEMORY_MB", "4096")
    get_settings.cache_clear()
    yield 4096
    get_settings.cache_clear()


def shown(uri: str) -> dict[str, int]:
    """What the server runs with: sizes in bytes, counts as numbers."""
    with psycopg.connect(uri) as conn:
        rows = conn.execute(
            "SELECT name, CASE WHEN unit IS NULL THEN setting::bigint"
            " ELSE pg_size_bytes(current_setting(name)) END FROM pg_settings WHERE name = ANY(%s)",
            (list(SIZED),),
        ).fetchall()
    return dict(rows)


def expected(machine: Machine) -> dict[str, int]:
    values = server_settings(machine)
    return {
        name: int(values[name][:-2]) * MB if values[name].endswith("MB") else int(values[name])
        for name in SIZED
    }


def test_a_new_data_dir_runs_sized_from_its_first_start(tmp_path: Path, memory: int) -> None:
    data_dir = tmp_path / "data"
    try:
        values = shown(embedded_pg.admin_uri(data_dir))
    finally:
        embedded_pg.release((data_dir / "pg").resolve())

    machine = embedded_pg.this_machine()
    assert machine.memory == memory * MB
    assert values == expected(machine)
    assert (values["shared_buffers"], values["maintenance_work_mem"]) == (1 * GB, 256 * MB)
    assert [name for name, stock in STOCK.items() if values[name] == stock] == []


def test_a_server_from_before_is_restarted_sized_and_follows_a_new_setting(
    tmp_path: Path, memory: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_dir = (tmp_path / "data" / "pg").resolve()
    pg_dir.parent.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        # What an older papertide left: a server on stock settings, still running, nobody using it.
        old = pgserver.get_server(pg_dir, cleanup_mode=None)  # type: ignore[attr-defined]
    assert shown(old.get_uri())["shared_buffers"] == STOCK["shared_buffers"]
    try:
        assert shown(embedded_pg.admin_uri(pg_dir.parent))["shared_buffers"] == 1 * GB
        embedded_pg.release(pg_dir)  # stopped: the next start reads the file again

        monkeypatch.setenv("PAPERTIDE_EMBEDDED_PG_MEMORY_MB", "8192")
        get_settings.cache_clear()
        values = shown(embedded_pg.admin_uri(pg_dir.parent))
    finally:
        embedded_pg.release(pg_dir)
    assert values == expected(Machine(memory=8 * GB, cores=embedded_pg.this_machine().cores))
    assert values["shared_buffers"] == 2 * GB


def test_the_sizes_follow_memory_and_cores_within_bounds() -> None:
    laptop = server_settings(Machine(memory=8 * GB, cores=4))
    server = server_settings(Machine(memory=512 * GB, cores=64))
    tiny = server_settings(Machine(memory=512 * MB, cores=1))

    assert (laptop["shared_buffers"], laptop["effective_cache_size"]) == ("2048MB", "6144MB")
    assert laptop["max_parallel_maintenance_workers"] == "3", "the leader builds too: every core busy"
    assert server["shared_buffers"] == "16384MB", "past 16 GB the operating system's cache serves as well"
    assert server["maintenance_work_mem"] == "2048MB"
    assert server["max_parallel_maintenance_workers"] == "8"
    assert int(server["max_worker_processes"]) >= int(server["max_parallel_workers"]) == 64
    assert (tiny["shared_buffers"], tiny["work_mem"], tiny["maintenance_work_mem"]) == (
        "128MB",
        "4MB",
        "64MB",
    )
    assert tiny["max_parallel_maintenance_workers"] == "1"


def test_an_operators_alter_system_wins_over_the_sizing(tmp_path: Path, memory: int) -> None:
    data_dir = tmp_path / "data"
    pg_dir = (data_dir / "pg").resolve()
    try:
        with psycopg.connect(embedded_pg.admin_uri(data_dir), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET work_mem = '7MB'")
        embedded_pg.release(pg_dir)
        values = shown(embedded_pg.admin_uri(data_dir))
    finally:
        embedded_pg.release(pg_dir)
    assert (values["work_mem"], values["shared_buffers"]) == (7 * MB, 1 * GB)


def test_an_unreadable_user_registry_never_stops_the_server_under_someone(
    tmp_path: Path, memory: int
) -> None:
    """`papertide up` is running; pg.users is damaged (by hand, a disk); commands beside it start
    and exit. Nobody knows who uses the server, and `up` never registers again, so no later exit
    may stop it: one stopped under `up` mid digest run is restarted by nothing. Once it has been
    stopped by hand, the next start begins afresh and its last user stops it as usual."""
    data_dir = tmp_path / "data"
    pg_dir = (data_dir / "pg").resolve()
    uri = embedded_pg.admin_uri(data_dir)
    try:
        (data_dir / "pg.users").write_text('{"12')
        embedded_pg.release(pg_dir)
        for _ in range(2):  # two more commands, each the only registered user
            embedded_pg.admin_uri(data_dir)
            embedded_pg.release(pg_dir)
            with psycopg.connect(uri) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,), "still running"
        embedded_pg._stop(embedded_pg._get_server(pg_dir), pg_dir)  # the operator, once nobody runs
        embedded_pg.admin_uri(data_dir)
    finally:
        embedded_pg.release(pg_dir)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(uri, connect_timeout=2).close()
    assert json.loads((data_dir / "pg.users").read_text()) == {}


def test_a_write_of_the_registry_that_fails_midway_leaves_the_old_one_whole(tmp_path: Path) -> None:
    registry = tmp_path / "pg.users"
    registry.write_text('{"1": "100"}')
    with pytest.raises(UnicodeEncodeError):
        embedded_pg._write_atomically(registry, '{"2": "\ud800"}')  # fails after the first bytes
    assert json.loads(registry.read_text()) == {"1": "100"}
    assert [p.name for p in tmp_path.iterdir()] == ["pg.users"], "no temporary file left behind"
