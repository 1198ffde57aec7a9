"""The worker loop: embed what is stale, rescore after new embeddings, sleep when idle."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from papertide.embeddings.encoder import Encoder
from papertide.search.keyword_index import KeywordIndexUnavailable
from papertide.worker import jobs

log = logging.getLogger(__name__)
T = TypeVar("T")


def run_worker(
    *,
    stop: threading.Event,
    encoder: Encoder | None = None,
    idle_seconds: float = 10.0,
    progress: bool = True,
) -> None:
    """Loop until `stop` is set; any number of these can run side by side (SKIP LOCKED claims)."""
    while not stop.is_set():
        # Each step fails on its own: a damaged keyword index must not keep new papers from
        # their vectors and scores, nor a failed embedding batch keep the index from filling.
        _step("keyword index", lambda: jobs.index_keywords(progress=progress), idle_seconds)
        done = _step(
            "embedding", lambda: jobs.embed(encoder=encoder, progress=progress, stop=stop), idle_seconds
        )
        if done:
            log.info("embedded %d papers", done)
            _step("scoring", jobs.score, idle_seconds)
        stop.wait(idle_seconds)


def _step(name: str, run: Callable[[], T], idle_seconds: float) -> T | None:
    """Run one step of a pass; a failure is logged with the step's name and the pass goes on."""
    try:
        return run()
    except KeywordIndexUnavailable as error:
        # Not a bug to trace: the index stays broken until someone acts, and the error says what.
        log.error("worker step %r failed; retrying in %.0f s: %s", name, idle_seconds, error)
    except Exception:
        # A database restart or a bad batch must not kill the worker: log it and try again later.
        log.exception("worker step %r failed; retrying in %.0f s", name, idle_seconds)
    return None
