"""Fixtures for the web tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from papertide import db


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs from here on (a cached answer must run none)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    engine = db.get_engine()
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)
