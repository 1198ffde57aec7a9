"""Several sender processes for one digest run (DIGEST_SENDERS, `papertide digest send --senders N`).

A sender spends much of each message waiting: on the mail server's replies and on the database's
commits. While it waits, a second process composes its own batch; on 2 cores three senders kept
both busy (bench/digest_send.py, docs/benchmarks.md). The run's own process prepares the ledger and
readies the phrase vectors first (so the others load no model), then lets the others go. They may
be started earlier, to import while the run's process rescores and prepares (one core is idle
then), and wait for the word. Each is a full sender of its own (its own run record, its own
hand-off locks and mail connection): the ledger already lets any number of senders share a run
(docs/operations.md#digests), so one that dies costs what a dead sender costs, and the others go on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from papertide.config import get_settings

log = logging.getLogger(__name__)
# Fewer due digests than this per sender: another process is not worth its start (about a second
# of imports) and its mail connection.
DIGESTS_PER_SENDER = 100
GO, STOP = "go", "stop"
STOP_GRACE_SECONDS = 30  # for an interrupted sender to put its batch back before it is killed


def extra_senders(wanted: int, *, due: int) -> int:
    """How many processes to start besides this one, for `due` digests and `wanted` senders in all."""
    return max(0, min(wanted, due // DIGESTS_PER_SENDER) - 1)


@dataclass(frozen=True)
class Outcome:
    """What one of the other senders did: its counts, and why it stopped early (None: it did not)."""

    counts: dict[str, int]
    stopped: str | None = None


@dataclass
class Senders:
    """The processes started for a run; `orders` tells each to go or stop, `results` is where each
    puts its counts when it ends."""

    processes: list[BaseProcess] = field(default_factory=list)
    orders: Any = None  # multiprocessing Queues, made with the first process
    results: Any = None
    released: bool = False
    _starting: threading.Thread | None = None

    def start(self, count: int, target: Callable[..., None], *, args: tuple[Any, ...]) -> None:
        """`count` processes, each running target(*args, orders, number, results), where
        `orders.wait()` blocks until the run says go (True) or stop (False); number 2, 3, ... (the
        run's own process is 1). Never forked from this process, which may hold database
        connections and a model's threads: forked from a fork server (`_context`) that has only
        imported the sender's code, so a process starts without a second of imports each (and in
        the scheduler, which sends every day, without any after the first run). They are started
        on a thread of this process's own: the first start waits for the fork server's imports,
        which so overlap what this process does meanwhile (the run's rescore)."""
        if count <= 0:
            return
        self._wait_for_start()
        self._starting = threading.Thread(
            target=self._start, args=(count, target, args), name="papertide-digest-senders", daemon=True
        )
        self._starting.start()

    @property
    def started(self) -> bool:
        """Whether processes were asked for (and, once `_wait_for_start` has run, did start)."""
        return self._starting is not None or bool(self.processes)

    def _start(self, count: int, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        context = _context()
        if self.orders is None:
            self.orders, self.results = context.Queue(), context.Queue()
        for number in range(len(self.processes) + 2, len(self.processes) + count + 2):
            process = context.Process(
                target=_with_environment,
                args=(dict(os.environ), target, *args, Orders(self.orders), number, self.results),
                name=f"papertide-digest-sender-{number}",
            )
            try:
                process.start()
            except Exception:  # (a mailer that cannot go to another process, no memory for one)
                log.exception("could not start digest sender %d; the run goes on with %d", number, number - 1)
                return
            self.processes.append(process)

    def _wait_for_start(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None

    def release(self, count: int) -> None:
        """Let `count` of the processes send; the others end without sending."""
        self._wait_for_start()
        for n in range(len(self.processes)):
            self.orders.put(GO if n < count else STOP)
        self.released = True

    def finish(self) -> list[Outcome]:
        """Wait for every process to end; what each did. One that died (an error, a kill) is an
        outcome that stopped early, without counts: what it had claimed waits for the next pass,
        as after any dead sender, and its digests sent are in the ledger."""
        self._wait_for_start()
        if not self.processes:
            return []
        if not self.released:
            self.release(0)
        outcomes: list[Outcome] = []
        while len(outcomes) < len(self.processes) and (
            any(p.is_alive() for p in self.processes) or not self.results.empty()
        ):
            try:
                outcomes.append(self.results.get(timeout=0.5))
            except queue.Empty:
                continue
        for process in self.processes:
            process.join()
            if process.exitcode != 0:
                log.error("digest sender %s ended with exit code %s", process.name, process.exitcode)
                outcomes.append(Outcome({}, f"{process.name} ended with exit code {process.exitcode}"))
        self.processes = []
        return outcomes

    def stop(self) -> None:
        """End every process (SIGTERM): for a run interrupted itself. Each puts its untried batch
        back, one short transaction; one that has not ended within STOP_GRACE_SECONDS (its
        database out of reach) is killed, so an interrupted run always ends."""
        self._wait_for_start()
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error(
                    "digest sender %s did not end within %d s of SIGTERM; killed",
                    process.name,
                    STOP_GRACE_SECONDS,
                )
                process.kill()
                process.join()
        self.processes = []


def _context() -> Any:  # a ForkServerContext, or a SpawnContext
    """The fork server where this platform has one (Linux, macOS), with the senders' code imported
    once; else spawned processes, which import it each."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # The run's main module too: each process would import it again otherwise (as a spawned one does).
    context.set_forkserver_preload(["__main__", SENDER_CODE])
    return context


SENDER_CODE = "papertide.worker.jobs"  # what a sender runs; the fork server imports it before forking


def _with_environment(environment: dict[str, str], target: Callable[..., None], *args: Any) -> None:
    """target(*args) with the environment the run's process has now. The fork server was started
    with the environment of the first run of this process, and settings (the database, the mail
    server, the site's URL) are read from it.

    SIGTERM (the run's `stop()` when the run is interrupted, `docker stop`) ends a sender as Ctrl-C
    does: it puts the untried rest of its batch back and ends. Python's default would end it on the
    spot, leaving its whole batch `sending`, to be resent as if the server might have it. The
    interruption is the run's process to report: a sender ends quietly (exit 130, as after Ctrl-C)."""
    signal.signal(signal.SIGTERM, _interrupt_once)
    signal.signal(signal.SIGINT, _interrupt_once)
    os.environ.clear()
    os.environ.update(environment)
    if hasattr(time, "tzset"):
        time.tzset()  # TZ as the run has it
    get_settings.cache_clear()
    try:
        target(*args)
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)


INTERRUPTED = 130  # a sender's exit code after Ctrl-C or SIGTERM, as a shell reports Ctrl-C


def _interrupt_once(_signum: int, _frame: object) -> None:
    """The first Ctrl-C or SIGTERM interrupts the sender; later ones are ignored, so the put-back
    that the first begins is not cut short. Ctrl-C reaches every process of the terminal's group
    (systemd's stop every process of the service), and the run's process then sends SIGTERM too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


@dataclass
class Orders:
    """A started sender's side of `orders`."""

    orders: Any

    def wait(self) -> bool:
        """True once the run says go; False when it says stop, or when the run's process is gone
        (killed before it said either: nobody is left to ask)."""
        parent = multiprocessing.parent_process()
        while True:
            try:
                return bool(self.orders.get(timeout=1.0) == GO)
            except queue.Empty:
                if parent is not None and not parent.is_alive():
                    return False
