"""The database stopped and restarted under a running web server (issue 8, item 10).

While Postgres is down every page and API route answers 503 with Retry-After (not 500), and
/healthz says the database is down; once it is back the same server answers 200 again without a
restart of its own (the engine's pool_pre_ping replaces the dead connections). The suite's shared
Postgres cannot be stopped, so this test runs its own throwaway server.
"""

from __future__ import annotations

import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from papertide import db, embedded_pg
from papertide.web.app import create_app
from papertide.worker import jobs
from tests.factories import make_paper

# (path, what answers: a page or the JSON API) for routes that all need the database.
ROUTES = [
    ("/", "page"),
    ("/papers/2601.00042", "page"),
    ("/search?q=restart&mode=keyword", "page"),
    ("/topics", "page"),
    ("/api/v1/trending", "api"),
    ("/api/v1/papers/2601.00042", "api"),
    ("/api/v1/search?q=restart&mode=keyword", "api"),
    ("/api/v1/topics", "api"),
]


class Postgres:
    """A pgserver Postgres of this test's own, stopped and started again at the same data dir."""

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

        self.server = pgserver.get_server(data_dir, cleanup_mode="delete")  # type: ignore[attr-defined]
        self.socket_dir = self.server.get_postmaster_info().socket_dir
        self.uri: str = self.server.get_uri()

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    def stop(self) -> None:
        """A fast shutdown: open connections are terminated, as in a restart or failover."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        """Start again on the same socket, so the app's URL stays valid."""
        log = str(self.server.pgdata / "log")
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start")

    def cleanup(self) -> None:
        self.server.cleanup()


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Postgres]:
    server = Postgres(tmp_path / "pg")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def app_url(postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database with one paper on the throwaway server, and papertide serving it over HTTP."""
    embedded_pg.ensure_database(postgres.uri, "papertide")
    url = embedded_pg.to_sqlalchemy_url(postgres.uri, "papertide")
    db.upgrade(url)
    monkeypatch.setenv("PAPERTIDE_DATABASE_URL", url)
    monkeypatch.setenv("PAPERTIDE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PAPERTIDE_SECRET_KEY", "test-secret")
    db.reset()
    with db.unit_of_work() as session:
        make_paper(session, id="2601.00042", title="Restart-proof serving", abstract="A restart test.")
    jobs.index_keywords()  # keyword search finds it, then loads it from the database
    server = uvicorn.Server(uvicorn.Config(create_app(encoder_provider=lambda: None), port=free_port()))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the web server to start")
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        db.reset()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(probe: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_database_down_answers_503_and_recovers_after_a_restart(postgres: Postgres, app_url: str) -> None:
    with httpx.Client(base_url=app_url, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok", "papers": 1}
        for path, _ in ROUTES:
            assert http.get(path).status_code == 200, path

        postgres.stop()
        health = http.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["database"].startswith("down: ")
        assert int(health.headers["retry-after"]) > 0
        for path, kind in ROUTES:
            response = http.get(path)
            assert response.status_code == 503, f"{path}: {response.status_code} {response.text[:200]}"
            assert int(response.headers["retry-after"]) > 0, path
            if kind == "api":
                assert "database is not reachable" in response.json()["detail"], path
            else:
                assert response.headers["content-type"].startswith("text/html"), path
                assert "The database is not reachable just now" in response.text, path

        postgres.start()
        # The first request after the restart already succeeds: pre-ping drops the dead connections.
        assert http.get("/healthz").json() == {"status": "ok", "papers": 1}
        for path, _ in ROUTES:
            assert http.get(path).status_code == 200, path
