"""One BLAS thread while digest runs send: two runs of one process (the scheduler's digest and
digest-retry passes fire together) overlap, and the limit holds until the last has left, then the
process gets back its threads."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from papertide.worker.blas import one_blas_thread


def blas_threads() -> set[int]:
    return {int(pool["num_threads"]) for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_overlapping_runs_keep_one_thread_until_the_last_leaves_then_restore_the_processs() -> None:
    assert np.ones(2) @ np.ones(2) == 2  # numpy's BLAS loaded
    with threadpool_limits(limits=2, user_api="blas"):  # a process with two, whatever the machine
        assert blas_threads() == {2}
        first, second = ExitStack(), ExitStack()
        first.enter_context(one_blas_thread())
        second.enter_context(one_blas_thread())
        assert blas_threads() == {1}
        first.close()  # the first run ends while the second still sends
        assert blas_threads() == {1}
        second.close()
        assert blas_threads() == {2}, "the process's own threads back, not the 1 a run saw"
