"""`papertide up` end to end: embedded Postgres, sample, site, Ctrl-C, and a second start on the same data;
no PostgreSQL is left once the papertide processes that used it have ended (issue 8, item 12)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import SAMPLE_PAPERS, csrf_from, free_port

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


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes a test starts; any still running at its end (a failed check) is stopped."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def cli(data_dir: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """Another papertide command on the same embedded database, beside `up`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env["PAPERTIDE_DATA_DIR"] = str(data_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "papertide", *args], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def postgres_processes(data_dir: Path) -> list[int]:
    """Every PostgreSQL process serving DATA_DIR/pg (the postmaster and its children)."""
    pg_dir = str((data_dir / "pg").resolve())
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and pg_dir.encode() in argv:
            found.append(int(proc.name))
    return found


def attached(worker_log: Path) -> bool:
    """A worker has used the database (its first pass) and loaded the model."""
    return worker_log.exists() and "loaded embedding model" in worker_log.read_text()


def papers_file(tmp_path: Path) -> Path:
    path = tmp_path / "papers.jsonl"
    lines = [
        json.dumps({"id": f"2611.{n:05d}", "title": f"Paper {n}", "abstract": f"About thing {n}."})
        for n in range(8)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_stops_postgres_whatever_ran_beside_it(
    tmp_path: Path, signum: int, spawned: list[subprocess.Popen[bytes]]
) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "up.log", free_port()
    loader = cli(data_dir, log, "ingest", "jsonl", str(papers_file(tmp_path)))
    assert loader.wait(timeout=120) == 0, log.read_text()
    assert postgres_processes(data_dir) == [], "a command alone stops the server it started"

    up = start(data_dir, port, log)
    spawned.append(up)
    wait_healthy(f"http://127.0.0.1:{port}", up, log)
    # One command ends normally beside `up`, one is killed without a chance to clean up.
    assert cli(data_dir, log, "digest", "send").wait(timeout=120) == 0, log.read_text()
    killed_log = tmp_path / "killed.log"
    killed = cli(data_dir, killed_log, "worker")
    spawned.append(killed)
    wait_for(lambda: [1] if attached(killed_log) else [], up, log, timeout=120)
    killed.kill()
    killed.wait()

    up.send_signal(signum)

    assert up.wait(timeout=180) == 0, log.read_text()[-3000:]
    assert "papertide stopped." in log.read_text()
    assert postgres_processes(data_dir) == [], log.read_text()[-3000:]
    assert not (data_dir / "pg" / "postmaster.pid").exists()


def test_a_command_still_running_when_up_stops_keeps_working_then_stops_postgres(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "up.log", free_port()
    worker_log = tmp_path / "worker.log"
    assert cli(data_dir, log, "ingest", "jsonl", str(papers_file(tmp_path))).wait(timeout=120) == 0
    up = start(data_dir, port, log)
    spawned.append(up)
    wait_healthy(f"http://127.0.0.1:{port}", up, log)
    worker = cli(data_dir, worker_log, "worker", "--idle-seconds", "0.5")
    spawned.append(worker)
    wait_for(lambda: [1] if attached(worker_log) else [], up, log, timeout=120)

    up.send_signal(signal.SIGTERM)
    assert up.wait(timeout=180) == 0, log.read_text()[-3000:]

    assert worker.poll() is None, worker_log.read_text()[-3000:]
    status = cli(data_dir, log, "status")
    assert status.wait(timeout=120) == 0, "the server still runs for the worker"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=120) == 0, worker_log.read_text()[-3000:]
    assert "worker pass failed" not in worker_log.read_text(), "the worker was not cut off midway"
    assert postgres_processes(data_dir) == [], "the last papertide process stopped the server"


def outbox(data_dir: Path) -> list[str]:
    """The emails `up` and the commands beside it wrote (no SMTP server configured), oldest first."""
    return [path.read_text() for path in sorted((data_dir / "outbox").glob("*.eml"))]


def test_emails_link_to_the_port_up_runs_on_also_when_sent_from_another_shell(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "up.log", free_port()
    url = f"http://127.0.0.1:{port}"
    assert cli(data_dir, log, "ingest", "jsonl", str(papers_file(tmp_path))).wait(timeout=120) == 0
    up = start(data_dir, port, log)  # no PAPERTIDE_BASE_URL: the port decides the links
    spawned.append(up)
    wait_healthy(url, up, log)

    with httpx.Client(base_url=url, timeout=10) as http:
        form = http.get("/subscribe").text
        http.post("/subscribe", data={"email": "reader@example.org", "csrf": csrf_from(form)})
        [confirmation] = outbox(data_dir)
        found = re.search(rf"{re.escape(url)}/confirm/([A-Za-z0-9_\-]+)", confirmation)
        assert found, confirmation
        page = http.get(f"/confirm/{found.group(1)}").text
        assert http.post(f"/confirm/{found.group(1)}", data={"csrf": csrf_from(page)}).status_code == 200
    # `digest send` from another shell, on the same data dir, without the port.
    assert cli(data_dir, log, "digest", "send").wait(timeout=120) == 0, log.read_text()[-3000:]
    digest = outbox(data_dir)[-1]

    assert re.search(rf"^List-Unsubscribe: <{re.escape(url)}/unsubscribe/[A-Za-z0-9_\-]+>$", digest, re.M)
    assert f"{url}/unsubscribe/" in digest
    assert "127.0.0.1:8000" not in digest
    assert stop(up) == 0
    assert not (data_dir / "site_url").exists(), "a stopped site leaves no URL for later commands"


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(proc.name))
    return found


def test_up_with_two_web_processes_serves_cached_pages_and_stops_cleanly(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "up.log", free_port()
    url = f"http://127.0.0.1:{port}"
    assert cli(data_dir, log, "ingest", "jsonl", str(papers_file(tmp_path))).wait(timeout=120) == 0
    up = cli(data_dir, log, "up", "--port", str(port), "--web-workers", "2")
    spawned.append(up)
    wait_healthy(url, up, log)
    # The two web processes are uvicorn's spawned children (besides them: PostgreSQL is pgserver's).
    web = [pid for pid in children(up.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]

    with httpx.Client(base_url=url, timeout=10) as http:
        pages = [http.get("/") for _ in range(6)]
        etag = pages[0].headers["etag"]
        again = http.get("/", headers={"If-None-Match": etag})

    assert len(web) == 2, log.read_text()[-3000:]
    assert all(page.status_code == 200 for page in pages)
    assert {page.headers["etag"] for page in pages} == {etag}, "every process validates by the same run"
    assert again.status_code == 304
    assert stop(up) == 0
    assert "papertide stopped." in log.read_text()
    assert postgres_processes(data_dir) == [], log.read_text()[-3000:]
    assert not any(Path(f"/proc/{pid}").exists() for pid in web), "the web processes ended with up"


def site_urls(data_dir: Path) -> list[str]:
    """The URLs in DATA_DIR/site_url, newest first (each line: URL, then whose it is)."""
    try:
        return [line.split()[0] for line in (data_dir / "site_url").read_text().splitlines()]
    except OSError:
        return []


def test_a_second_up_on_a_busy_port_fails_and_the_running_site_keeps_its_url(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "up.log", free_port()
    url = f"http://127.0.0.1:{port}"
    assert cli(data_dir, log, "ingest", "jsonl", str(papers_file(tmp_path))).wait(timeout=120) == 0
    first = start(data_dir, port, log)
    spawned.append(first)
    wait_healthy(url, first, log)

    second = start(data_dir, port, tmp_path / "second.log")  # `make run` again by mistake
    spawned.append(second)
    assert second.wait(timeout=120) != 0, "the port is taken"
    assert site_urls(data_dir) == [url], "the first site's URL is still published"
    other = subprocess.run(
        [sys.executable, "-c", "from papertide.config import Settings; print(Settings().base_url)"],
        env={k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
        | {"PAPERTIDE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert other.stdout.strip() == url, "a command beside it still links to the running site"

    assert stop(first) == 0
    assert site_urls(data_dir) == []
