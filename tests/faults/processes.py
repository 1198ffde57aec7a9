"""Helpers for the fault tests: papertide commands in their own processes, on a database of the test's."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from papertide.embedded_pg import to_sqlalchemy_url

_numbers = itertools.count()


def cli_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without its PAPERTIDE_ settings, pointed at `database_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env.update(
        PAPERTIDE_DATABASE_URL=database_url,
        PAPERTIDE_DATA_DIR=str(data_dir),
        PAPERTIDE_SECRET_KEY="test-secret",
        PAPERTIDE_BASE_URL="http://testserver",
        HF_HUB_OFFLINE="1",
    )
    env.update({f"PAPERTIDE_{name.upper()}": value for name, value in settings.items()})
    return env


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`papertide ARGS...` in its own process, stdout and stderr appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "papertide", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def run_cli(args: list[str], env: dict[str, str], log: Path, timeout: float = 120) -> None:
    """`papertide ARGS...` to its end; it must succeed."""
    process = start_cli(args, env, log)
    code = process.wait(timeout=timeout)
    assert code == 0, f"papertide {' '.join(args)} exited {code}:\n{log.read_text()[-4000:]}"


@contextmanager
def empty_database(admin_uri: str, template: str | None = None) -> Iterator[str]:
    """A new database with nothing in it (not even the extension), or a copy of `template`; dropped at the end."""
    name = f"fault_{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield to_sqlalchemy_url(admin_uri, name)
    finally:
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def libpq_url(url: str) -> str:
    """A SQLAlchemy psycopg URL as psycopg.connect takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class Zygote:
    """The warm process of tests/faults/zygote.py: runs papertide commands in forked children."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("zygote.py"))],
                env={**env, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=out,
                text=True,
            )
        self.log = log
        assert self._ask(None) == {"ready": True}

    def start(self, args: list[str], env: dict[str, str], log: Path) -> int:
        """`papertide ARGS...` in a forked child; its pid."""
        reply = self._ask({"run": args, "env": env, "log": str(log)})
        return int(reply["pid"])

    def wait(self, pid: int) -> int:
        """The child's exit status (negative: the signal that ended it)."""
        return int(self._ask({"wait": pid})["code"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)

    def _ask(self, request: dict[str, object] | None) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if request is not None:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the zygote died:\n{self.log.read_text()[-3000:]}"
        reply: dict[str, Any] = json.loads(line)
        return reply
