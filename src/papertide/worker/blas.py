"""One BLAS thread while any digest run of this process sends.

A digest's matrix products are small (a pool of 500 against a few phrases): BLAS threads woken and
left spinning for each cost a third of a sender's CPU, and two senders' threads fought for the
cores (docs/benchmarks.md#digest-sending). The limit is process-wide, and the worker's scheduler
can run two digest passes at once in two threads, so it is counted: set by the first run to come
in, restored by the last to leave (each restoring what it saw would leave a run unlimited, or the
process at one thread for good).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits


class _Shared:
    """The limit and how many runs are inside it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.limits: threadpool_limits | None = None


_shared = _Shared()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS limited to one thread until every run inside this context has left it."""
    with _shared.lock:
        if _shared.users == 0:
            _shared.limits = threadpool_limits(limits=1, user_api="blas")
        _shared.users += 1
    try:
        yield
    finally:
        with _shared.lock:
            _shared.users -= 1
            if _shared.users == 0 and _shared.limits is not None:
                _shared.limits.restore_original_limits()
                _shared.limits = None
