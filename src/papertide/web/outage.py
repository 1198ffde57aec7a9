"""The database is down or restarting: answer 503 with Retry-After, and say so on /healthz.

Only errors about reaching the database count: a refused or lost connection, a server shutting
down or starting up, no free connection. Every other database error is a bug and stays a 500,
so this handler cannot hide one. Recovery needs nothing here: the engine's `pool_pre_ping`
replaces dead connections once the server is back.
"""

from __future__ import annotations

import logging

import psycopg
from sqlalchemy import exc
from starlette.requests import Request
from starlette.responses import Response

from papertide.web.errors import error_response

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 30
# https://www.postgresql.org/docs/current/errcodes-appendix.html
_SQLSTATES = {
    "57P01": "the server is shutting down",  # admin_shutdown: terminated by a (fast) shutdown
    "57P02": "the server crashed",  # crash_shutdown
    "57P03": "the server is starting up or shutting down",  # cannot_connect_now
    "53300": "too many connections",  # too_many_connections
}


def database_down(error: BaseException) -> str | None:
    """Why the database cannot be used right now, or None when `error` is not about reaching it."""
    if isinstance(error, exc.TimeoutError):
        return "no free connection in the pool"
    if not isinstance(error, exc.DBAPIError):
        return None
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in _SQLSTATES:
        return _SQLSTATES[sqlstate]
    if sqlstate and sqlstate.startswith("08"):  # class 08: connection exception
        return "the connection failed"
    if error.connection_invalidated:
        return "the connection was lost"
    # libpq failing to connect (refused, unreachable) raises OperationalError with no SQLSTATE.
    if isinstance(error.orig, psycopg.OperationalError) and sqlstate is None:
        return "cannot connect"
    return None


async def database_unavailable(request: Request, error: Exception) -> Response:
    """Exception handler: 503 + Retry-After when the database is out of reach; anything else re-raised."""
    reason = database_down(error)
    if reason is None:
        raise error
    log.warning("database unavailable (%s): %s", reason, error)
    return error_response(
        request,
        503,
        "The database is not reachable just now. Please try again in a minute.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
