"""A warm papertide process that forks a child per command, so kill -9 trials cost a fork, not an import.

Importing sentence-transformers takes 5-7 s; twenty trials of `papertide embed` would spend minutes
loading. This process imports the CLI, the jobs and torch and loads the model once, then runs each
requested command in a forked child: the same `papertide ...` code path in a process of its own,
with its own environment and database connections, that the test kills with SIGKILL.

Protocol, one JSON line each way on stdin/stdout:
  {"run": ["embed"], "env": {...}, "log": "/path"}  ->  {"pid": 1234}
  {"wait": 1234}                                     ->  {"code": -9}
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def main() -> None:
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
            pid = os.fork()
            if pid == 0:
                _child(app, request)
            _reply({"pid": pid})
        else:
            _, status = os.waitpid(int(request["wait"]), 0)
            _reply({"code": os.waitstatus_to_exitcode(status)})


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _child(app: Any, request: dict[str, Any]) -> None:
    """Become `papertide ARGS...` with the request's environment and log; never returns."""
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.environ.clear()
    os.environ.update(request["env"])
    from papertide import db

    db.reset()  # settings and engine from this child's environment; the model stays loaded
    app(request["run"], prog_name="papertide")  # exits with the command's status
    sys.exit(0)


if __name__ == "__main__":
    main()
