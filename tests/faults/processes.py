"""Helpers for the fault tests: papertide commands in their own processes, on a database of the test's."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
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
        # SIGABRT then prints every thread's stack into the log: `stop_cli` uses it when a process hangs.
        PYTHONFAULTHANDLER="1",
    )
    env.update({f"PAPERTIDE_{name.upper()}": value for name, value in settings.items()})
    return env


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`papertide ARGS...` in its own process, stdout and stderr appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "papertide", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop_cli(process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> int:
    """Ctrl-C `process` and wait for its exit code; if it hangs, abort it and fail with its threads' stacks."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # faulthandler (PYTHONFAULTHANDLER, see cli_env) dumps the stacks
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise AssertionError(
            f"papertide did not stop within {timeout:.0f} s of Ctrl-C; its log and stacks:\n{log.read_text()[-8000:]}"
        ) from None


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


def log_tail(log: Path, chars: int = 4000) -> str:
    return f"--- the end of {log.name} ---\n{log.read_text(errors='replace')[-chars:]}"


def database_activity(url: str) -> str:
    """For a failure message: the database's other sessions, what each runs or waits on, who blocks it."""
    try:
        with psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=10) as conn:
            conn.execute("SET statement_timeout = '10s'")
            rows = conn.execute(
                "SELECT pid, state, wait_event_type, wait_event, pg_blocking_pids(pid),"
                " round(extract(epoch FROM now() - xact_start)::numeric, 1), left(query, 200)"
                " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " ORDER BY pid"
            ).fetchall()
    except psycopg.Error as error:  # the diagnosis must not hide the failure it explains
        return f"--- pg_stat_activity: not available ({error}) ---"
    header = "pid, state, wait_event_type, wait_event, blocked by, transaction age (s), query"
    return "\n".join([f"--- pg_stat_activity ({header}) ---", *(repr(row) for row in rows)])


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
        assert "pid" in reply, reply["error"]
        return int(reply["pid"])

    def stacks(self, pid: int, log: Path) -> str:
        """The end of a running child's log, after the Python stack of each of its threads (SIGUSR1
        makes it write them there): where it is stuck."""
        size = log.stat().st_size
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)
            deadline = time.monotonic() + 5
            while log.stat().st_size == size and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the rest of the dump
        return log_tail(log, chars=8000)

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
