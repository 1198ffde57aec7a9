"""Bulk writes by binary COPY, inside the caller's transaction (the edge still owns it: nothing here
opens or commits one). Ingest's staging rows, the embedding worker's vectors and a digest batch's
papers and link tokens all go this way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def driver_connection(session: Session) -> Any:
    """The psycopg connection under the session's connection (in its transaction)."""
    return session.connection().connection.driver_connection


def copy_rows(
    session: Session, table: str, columns: Sequence[str], types: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """`rows` (values in `columns` order) into `table` by one binary COPY, in the session's
    transaction, its pending changes flushed first as an execute would. Thousands of rows in one
    round trip, with no per-row statement on the server and no text to write and parse per value.
    A driver error is raised as SQLAlchemy raises it (a cut connection is an OperationalError),
    so callers handle one kind."""
    session.flush()
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    try:
        with driver_connection(session).cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as error:
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error
