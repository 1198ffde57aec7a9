"""The worker loop: one step failing does not keep the others from running."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.models import PaperEmbedding
from papertide.search import keyword_index
from papertide.worker.loop import run_worker
from tests.factories import FakeEncoder, make_paper
from tests.helpers import wait_until


@contextmanager
def worker_running(encoder: FakeEncoder) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker, kwargs={"stop": stop, "encoder": encoder, "idle_seconds": 0.1, "progress": False}
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(60)


def embedded(session: Session) -> int:
    session.rollback()  # a fresh snapshot each poll
    return int(session.scalar(select(func.count()).select_from(PaperEmbedding)) or 0)


def test_a_damaged_keyword_index_does_not_stop_new_papers_being_embedded(
    database: str, session: Session, fake_encoder: FakeEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    path = keyword_index.index_path(get_settings())
    path.mkdir(parents=True)
    (path / "meta.json").write_text("{ not json")  # a disk error, a half-copied backup
    make_paper(session, id="2601.90001", abstract="Graph neural networks.")
    make_paper(session, id="2601.90002", abstract="Speech recognition.")
    session.commit()
    caplog.set_level(logging.ERROR, logger="papertide.worker.loop")

    with worker_running(fake_encoder):
        wait_until(lambda: embedded(session) == 2, timeout=60, what="both new papers embedded")

    failures = [r.getMessage() for r in caplog.records if r.name == "papertide.worker.loop"]
    assert failures, "the broken index is still reported"
    assert all("'keyword index' failed" in message for message in failures), failures
    assert "cannot open the keyword index" in failures[0]
