"""Two commands started together on a fresh database both migrate it, one after the other (issue 8, item 8)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory

from papertide.db import alembic_config
from tests.faults.processes import cli_env, empty_database, libpq_url, start_cli

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", range(5))
def test_two_upgrades_at_once_on_a_fresh_database_both_succeed(
    pg_admin_uri: str, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    with empty_database(pg_admin_uri) as url:
        env = cli_env(url, tmp_path / "data")
        logs = [tmp_path / "first.log", tmp_path / "second.log"]
        first = start_cli(["db", "upgrade"], env, logs[0])
        time.sleep(rng.uniform(0, 0.3))  # seeded: the second starts anywhere in the first's run
        second = start_cli(["db", "upgrade"], env, logs[1])

        codes = [first.wait(timeout=120), second.wait(timeout=120)]

        assert codes == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)
        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        with psycopg.connect(libpq_url(url)) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
            assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone() == (
                1,
            )
