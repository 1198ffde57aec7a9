"""Several sender processes for one digest run (DIGEST_SENDERS, `papertide digest send --senders N`).

A sender spends much of each message waiting: on the mail server's replies and on the database's
commits. While it waits, a second process composes its own batch; on 2 cores three senders kept
both busy (bench/digest_send.py, docs/benchmarks.md). The run's own process prepares the ledger and
readies the phrase vectors first (so the others load no model), then starts the others. Each is a
full sender of its own (its own run record, its own hand-off locks and mail connection): the ledger
already lets any number of senders share a run (docs/operations.md#digests), so one that dies costs
what a dead sender costs, and the others go on.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger(__name__)
# Fewer due digests than this per sender: another process is not worth its start (about a second
# of imports) and its mail connection.
DIGESTS_PER_SENDER = 100


def extra_senders(wanted: int, *, due: int) -> int:
    """How many processes to start besides this one, for `due` digests and `wanted` senders in all."""
    return max(0, min(wanted, due // DIGESTS_PER_SENDER) - 1)


@dataclass
class Senders:
    """The processes started for a run, and where each puts its counts when it ends."""

    processes: list[BaseProcess] = field(default_factory=list)
    results: Any = None  # a multiprocessing Queue of count dicts

    def finish(self) -> list[dict[str, int]]:
        """Wait for every process to end; the counts of those that ended normally. A process that
        died is logged: what it had claimed waits for the next pass, as after any dead sender."""
        counts: list[dict[str, int]] = []
        while len(counts) < len(self.processes) and (
            any(p.is_alive() for p in self.processes) or not self.results.empty()
        ):
            try:
                counts.append(self.results.get(timeout=0.5))
            except queue.Empty:
                continue
        for process in self.processes:
            process.join()
            if process.exitcode != 0:
                log.error("digest sender %s ended with exit code %s", process.name, process.exitcode)
        return counts


def start(count: int, target: Callable[..., None], *, args: tuple[Any, ...]) -> Senders:
    """`count` processes, each running target(*args, number, results); number 2, 3, ... (the run's
    own process is 1). Spawned, not forked: a fork would copy this process's database connections
    and model threads."""
    if count <= 0:
        return Senders()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes: list[BaseProcess] = []
    for number in range(2, count + 2):
        process = context.Process(
            target=target, args=(*args, number, results), name=f"papertide-digest-sender-{number}"
        )
        try:
            process.start()
        except Exception:  # (a mailer that cannot be sent to another process, no memory for one)
            log.exception("could not start digest sender %d; the run goes on with %d", number, number - 1)
            break
        processes.append(process)
    return Senders(processes, results)
