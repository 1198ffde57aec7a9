"""Which database errors are an outage (503 + Retry-After) and which stay bugs (500): issue 8, item 10.

tests/faults/test_database_restart_web.py stops a real Postgres under a running server; these
cases cover the errors a stop does not produce, and make sure a real bug is never hidden as a 503.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import exc

from papertide.web.app import create_app
from papertide.web.outage import database_down


def wrapped(orig: Exception, *, invalidated: bool = False) -> exc.DBAPIError:
    """The error SQLAlchemy raises for a driver error `orig`."""
    error = exc.DBAPIError.instance("SELECT 1", {}, orig, psycopg.Error, connection_invalidated=invalidated)
    assert isinstance(error, exc.DBAPIError)
    return error


OUTAGES = [
    wrapped(psycopg.OperationalError("connection failed: No such file or directory")),
    wrapped(psycopg.errors.AdminShutdown("terminating connection due to administrator command")),
    wrapped(psycopg.errors.CannotConnectNow("the database system is starting up")),
    wrapped(psycopg.errors.TooManyConnections("sorry, too many clients already")),
    wrapped(psycopg.errors.ConnectionFailure("connection failure")),
    wrapped(psycopg.InterfaceError("the connection is closed"), invalidated=True),
    exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
]
BUGS = [
    wrapped(psycopg.errors.UndefinedTable('relation "nope" does not exist')),
    wrapped(psycopg.errors.UniqueViolation("duplicate key value violates unique constraint")),
    wrapped(psycopg.errors.StringDataRightTruncation("value too long")),
    wrapped(psycopg.errors.NumericValueOutOfRange("integer out of range")),
    wrapped(psycopg.errors.QueryCanceled("canceling statement due to statement timeout")),
]


@pytest.mark.parametrize("error", OUTAGES, ids=lambda e: type(getattr(e, "orig", e)).__name__)
def test_errors_about_reaching_the_database_are_an_outage(error: Exception) -> None:
    assert database_down(error)


@pytest.mark.parametrize("error", BUGS, ids=lambda e: type(getattr(e, "orig", e)).__name__)
def test_every_other_database_error_is_not(error: Exception) -> None:
    assert database_down(error) is None


@pytest.fixture
def app(database: str) -> FastAPI:
    app = create_app(encoder_provider=lambda: None)
    errors = {"outage": OUTAGES[0], "bug": BUGS[0]}

    @app.get("/api/v1/raise/{kind}")
    @app.get("/raise/{kind}")
    def raise_error(kind: str) -> None:
        raise errors[kind]

    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_an_outage_is_a_503_with_retry_after_on_pages_and_api(client: TestClient) -> None:
    page = client.get("/raise/outage")
    api = client.get("/api/v1/raise/outage")

    assert page.status_code == api.status_code == 503
    assert page.headers["retry-after"] == api.headers["retry-after"] == "30"
    assert "The database is not reachable just now" in page.text
    assert api.json() == {"detail": "The database is not reachable just now. Please try again in a minute."}


def test_a_bug_stays_a_500(client: TestClient) -> None:
    assert client.get("/raise/bug").status_code == 500
    assert client.get("/api/v1/raise/bug").status_code == 500
