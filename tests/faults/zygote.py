"""A warm papertide process that forks a child per command, so kill -9 trials cost a fork, not an import.

Importing sentence-transformers takes 5-7 s; twenty trials of `papertide embed` would spend minutes
loading. This process imports the CLI, the jobs and torch and loads the model once, then runs each
requested command in a forked child: the same `papertide ...` code path in a process of its own,
with its own environment and database connections, that the test kills with SIGKILL.

A fork copies every lock as it is, held or not, but only the thread that forked: so this process
forks only while it runs no other thread, and shares no lock with its children (see _own_tqdm_lock).
On SIGUSR1 a child writes every thread's Python stack into its log (for a test that waited in vain).

Protocol, one JSON line each way on stdin/stdout:
  {"run": ["embed"], "env": {...}, "log": "/path"}  ->  {"pid": 1234}, or {"error": "..."} (no fork)
  {"wait": 1234}                                     ->  {"code": -9}
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import threading
from typing import Any


def main() -> None:
    _own_tqdm_lock()
    import torch

    # One intra-op thread: a fork after OpenMP started its pool could hang the child.
    torch.set_num_threads(1)
    from papertide.cli import app
    from papertide.embeddings.encoder import get_encoder
    from papertide.worker import ingest, jobs, loop  # noqa: F401  (imported once, for every child)

    get_encoder()  # no database needed; each child starts with the model loaded
    _reply({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        if "run" in request:
            if threads := _other_threads():
                _reply(
                    {"error": f"the zygote runs other threads, a fork could copy a lock they hold: {threads}"}
                )
                continue
            pid = os.fork()
            if pid == 0:
                _child(app, request)
            _reply({"pid": pid})
        else:
            _, status = os.waitpid(int(request["wait"]), 0)
            _reply({"code": os.waitstatus_to_exitcode(status)})


def _own_tqdm_lock() -> None:
    """Every progress bar (the model's loading, ingest's, embed's) takes tqdm's write lock, which by
    default is a multiprocessing semaphore made by the first bar and shared with every process forked
    after it. A child SIGKILLed while it draws a bar leaves that semaphore taken, and each later child
    then hangs at its first bar: a worker before it records its run. So one in-process lock instead,
    inherited free (nothing holds it at a fork), and no monitor thread, which takes it every 10 s."""
    from tqdm import tqdm

    tqdm.monitor_interval = 0
    tqdm.set_lock(threading.RLock())


def _other_threads() -> list[str]:
    """The names of this process's threads other than the calling one, native ones included."""
    me = threading.get_native_id()
    tasks = [int(task) for task in os.listdir("/proc/self/task")]
    return [_thread_name(task) for task in tasks if task != me]


def _thread_name(task: int) -> str:
    try:
        with open(f"/proc/self/task/{task}/comm") as comm:
            return f"{task} {comm.read().strip()}"
    except FileNotFoundError:
        return f"{task} (ended)"


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _child(app: Any, request: dict[str, Any]) -> None:
    """Become `papertide ARGS...` with the request's environment and log; never returns."""
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    os.environ.clear()
    os.environ.update(request["env"])
    from papertide import db

    db.reset()  # settings and engine from this child's environment; the model stays loaded
    app(request["run"], prog_name="papertide")  # exits with the command's status
    sys.exit(0)


if __name__ == "__main__":
    main()
