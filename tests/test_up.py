"""`papertide up` end to end: embedded Postgres, sample, site, Ctrl-C, and a second start on the same data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers import SAMPLE_PAPERS, free_port

pytestmark = pytest.mark.slow


def start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env["PAPERTIDE_DATA_DIR"] = str(data_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "papertide", "up", "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_healthy(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(url + "/healthz", timeout=2).json()  # type: ignore[no-any-return]
        except httpx.HTTPError:
            time.sleep(0.5)
    raise AssertionError("papertide up did not answer in time:\n" + log.read_text())


def wait_for(
    probe: Callable[[], list[object]], process: subprocess.Popen[bytes], log: Path, timeout: float = 240
) -> list[object]:
    """Poll until `probe` returns something non-empty (the worker embeds in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        if found := probe():
            return found
        time.sleep(2)
    raise AssertionError("the worker did not finish in time:\n" + log.read_text()[-3000:])


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def test_up_serves_the_sample_stops_cleanly_and_restarts_on_the_same_data(tmp_path: Path) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "up.log", free_port()
    url = f"http://127.0.0.1:{port}"

    first = start(data_dir, port, log)
    assert wait_healthy(url, first, log) == {"status": "ok", "papers": SAMPLE_PAPERS}
    trending = httpx.get(url + "/").text
    assert "EnvHarness: Awakening Static Worlds for Agent Learning" in trending
    topics = wait_for(lambda: httpx.get(url + "/api/v1/topics", timeout=5).json()["results"], first, log)
    similar = httpx.get(url + "/api/v1/papers/2608.19880/similar", timeout=5).json()["results"]
    assert len(topics) > 5, "the worker embedded the sample and clustered it"
    assert len(similar) == 10
    assert stop(first) == 0
    assert "papertide stopped." in log.read_text()

    second = start(data_dir, port, log)
    assert wait_healthy(url, second, log) == {"status": "ok", "papers": SAMPLE_PAPERS}
    assert stop(second) == 0
    output = log.read_text()
    assert output.count("loading the bundled sample") == 1, "the second start reuses the data"
    assert not list((data_dir / "pg").glob("postmaster.pid")), "Postgres stopped with papertide"
