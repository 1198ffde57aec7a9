"""Serving throughput, measured: the trending page and /api/v1/trending as `papertide serve` runs them.

    .venv/bin/python bench/serve.py [--seconds 20] [--connections 32] [--workers 1 2] [--quick]

Loads the bundled sample into a fresh database on the embedded server and scores it, then starts
`papertide serve --workers N` (a real subprocess) for each N, twice: with the page cache off
(PAPERTIDE_PAGE_CACHE=0: every request renders from the database, as before the cache; the
validators and 304s stay) and on (the default). Each run drives one URL with `--connections`
keep-alive connections for `--seconds` and prints requests/s and p50/p95 latency; with the cache
on, also with a warm `If-None-Match` (every answer a 304). The load generator is `wrk` when it is
on PATH (apt-get install wrk), else a small asyncio HTTP/1.1 keep-alive client in this script;
the output names the one that ran. Both run on this machine, beside the server: on a 2-core box
they share the cores, so the numbers are a floor for a server with its own machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingest import fresh_database  # noqa: E402  (bench/ingest.py: a migrated database on pgserver)

PATHS = ["/", "/api/v1/trending"]
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), e.connect + e.read + e.write + e.timeout + e.status))
end
"""


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load_sample(data_dir: Path) -> dict[str, str]:
    """A fresh database with the sample, scored; the environment a server on it needs."""
    fresh_database(data_dir, "bench_serve")
    from papertide.worker import ingest, jobs

    ingest.ingest_sample()
    jobs.score()
    return {
        "PAPERTIDE_DATA_DIR": str(data_dir),
        "PAPERTIDE_DATABASE_URL": os.environ["PAPERTIDE_DATABASE_URL"],
        "PAPERTIDE_SECRET_KEY": "bench",
    }


def start_server(
    env: dict[str, str], *, port: int, workers: int, cache: bool, log: Path
) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    clean.update(env, PAPERTIDE_PAGE_CACHE="1" if cache else "0")
    command = [sys.executable, "-m", "papertide", "serve", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(command, env=clean, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_ready(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the server exited:\n" + log.read_text()[-3000:])
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("the server did not answer in time:\n" + log.read_text()[-3000:])


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def warm(base: str, path: str) -> str | None:
    """Fetch `path` a few times (every worker renders it once) and return its ETag, checking the 304."""
    import httpx

    with httpx.Client(base_url=base, timeout=30) as http:
        for _ in range(8):
            response = http.get(path)
            response.raise_for_status()
        etag: str | None = response.headers.get("etag")
        if etag is not None:
            assert http.get(path, headers={"If-None-Match": etag}).status_code == 304, path
        return etag


def run_wrk(url: str, *, seconds: float, connections: int, headers: dict[str, str], script: Path) -> Result:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    requests, micros, p50, p95, errors = (int(part) for part in line.split()[1:])
    return Result(requests, micros / 1e6, p50 / 1000, p95 / 1000, errors)


async def _client(host: str, port: int, request: bytes, until: float, latencies: list[float]) -> int:
    """One keep-alive connection sending `request` back to back until `until`; returns its errors."""
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while time.perf_counter() < until:
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            errors += status >= 400
    finally:
        writer.close()
    return errors


async def _drive(
    host: str, port: int, path: str, seconds: float, connections: int, headers: dict[str, str]
) -> Result:
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    latencies: list[float] = []
    started = time.perf_counter()
    errors = await asyncio.gather(
        *(_client(host, port, request, started + seconds, latencies) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return Result(len(latencies), elapsed, cuts[49] * 1000, cuts[94] * 1000, sum(errors))


def run_asyncio(url: str, *, seconds: float, connections: int, headers: dict[str, str]) -> Result:
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return asyncio.run(_drive(host, int(port), "/" + path, seconds, connections, headers))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="per URL and setting")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="3 s per run, one worker count (a smoke run)")
    parser.add_argument("--generator", choices=["auto", "wrk", "asyncio"], default="auto")
    args = parser.parse_args()
    seconds, workers = (3.0, args.workers[:1]) if args.quick else (args.seconds, args.workers)
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk") is not None)
    generator = "wrk (2 threads)" if use_wrk else "asyncio keep-alive client (this script)"

    print(f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs,")
    print(f"python {platform.python_version()}, load generator: {generator}, {args.connections} connections")
    rows: list[tuple[int, str, str, str, Result, float]] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        data = Path(tmp)
        env = load_sample(data / "data")
        script = data / "report.lua"
        script.write_text(WRK_REPORT)
        for count in workers:
            for cache in (False, True):
                port, log = free_port(), data / f"serve-{count}-{cache}.log"
                server = start_server(env, port=port, workers=count, cache=cache, log=log)
                base = f"http://127.0.0.1:{port}"
                try:
                    wait_ready(base, server, log)
                    for path in PATHS:
                        etag = warm(base, path)
                        variants: list[tuple[str, dict[str, str]]] = [("plain", {})]
                        if cache and etag:
                            variants.append(("If-None-Match (304)", {"If-None-Match": etag}))
                        for label, headers in variants:
                            load = os.getloadavg()[0]
                            if use_wrk:
                                result = run_wrk(
                                    base + path,
                                    seconds=seconds,
                                    connections=args.connections,
                                    headers=headers,
                                    script=script,
                                )
                            else:
                                result = run_asyncio(
                                    base + path,
                                    seconds=seconds,
                                    connections=args.connections,
                                    headers=headers,
                                )
                            row = (count, "on" if cache else "off", path, label, result, load)
                            rows.append(row)
                            print_row(row, flush=True)
                finally:
                    stop_server(server)
        release_database(data / "data")
    print_table(rows, seconds=seconds)


def release_database(data_dir: Path) -> None:
    """Stop the embedded server before its folder goes (release pops it, so exit does nothing more)."""
    from papertide import db, embedded_pg

    db.reset()
    embedded_pg.release((data_dir / "pg").resolve())


def print_row(row: tuple[int, str, str, str, object, float], *, flush: bool = False) -> None:
    count, cache, path, label, result, load = row
    assert isinstance(result, Result)
    print(
        f"workers {count}  cache {cache:<3}  {path:<17} {label:<20} {result.rate:8.0f} req/s"
        f"  p50 {result.p50_ms:6.1f} ms  p95 {result.p95_ms:6.1f} ms  errors {result.errors}  load {load:.2f}",
        flush=flush,
    )


def print_table(rows: list[tuple[int, str, str, str, Result, float]], *, seconds: float) -> None:
    print(
        f"\n| workers | page cache | URL | request | req/s | p50 ms | p95 ms | load avg before |  ({seconds:g} s each)"
    )
    print("|---|---|---|---|---|---|---|---|")
    for count, cache, path, label, result, load in rows:
        print(
            f"| {count} | {cache} | `{path}` | {label} | {result.rate:,.0f} | {result.p50_ms:.1f}"
            f" | {result.p95_ms:.1f} | {load:.2f} |"
        )
    baseline = {(r[0], r[2]): r[4].rate for r in rows if r[1] == "off"}
    for count, cache, path, label, result, _ in rows:
        if cache == "on" and (count, path) in baseline:
            ratio = result.rate / baseline[(count, path)]
            print(f"workers {count} {path} {label}: {ratio:.1f}x the cache-off rate")


if __name__ == "__main__":
    main()
