"""The worker loop: embed what is stale, rescore after new embeddings, sleep when idle."""

from __future__ import annotations

import logging
import threading

from papertide.embeddings.encoder import Encoder
from papertide.worker import jobs

log = logging.getLogger(__name__)


def run_worker(
    *,
    stop: threading.Event,
    encoder: Encoder | None = None,
    idle_seconds: float = 10.0,
    progress: bool = True,
) -> None:
    """Loop until `stop` is set; any number of these can run side by side (SKIP LOCKED claims)."""
    while not stop.is_set():
        try:
            jobs.index_keywords(progress=progress)
            done = jobs.embed(encoder=encoder, progress=progress, stop=stop)
            if done:
                log.info("embedded %d papers", done)
                jobs.score()
        except Exception:
            # A database restart or a bad batch must not kill the worker: log it and try again later.
            log.exception("worker pass failed; retrying in %.0f s", idle_seconds)
        stop.wait(idle_seconds)
