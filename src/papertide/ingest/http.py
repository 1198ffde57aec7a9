"""Polite HTTP for sources: a User-Agent naming papertide, a shared rate limit, bounded retries.

Retries use exponential backoff with full jitter (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/)
on 429, 5xx and network errors, and honour `Retry-After`, which arXiv's OAI-PMH endpoint sends
with 503 as flow control. Anything else that is not 200 fails at once: retrying a 400 helps nobody.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from papertide.ingest.ratelimit import ARXIV_INTERVAL, Clock, wait_turn
from papertide.ingest.sources.base import USER_AGENT, SourceError
from papertide.papers.dates import email_date

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class RetryPolicy:
    attempts: int = 5
    base_seconds: float = 2.0
    cap_seconds: float = 120.0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Full jitter: a random wait up to base * 2^(attempt-1), capped."""
        return self.rng.uniform(0, min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1)))


@dataclass
class Fetcher:
    """GETs for one source; `limit_key` names the shared schedule (one per host), None for no limit."""

    source: str
    limit_key: str | None = None
    limit_interval: timedelta = ARXIV_INTERVAL  # the spacing the host behind `limit_key` asks for
    clock: Clock = field(default_factory=Clock)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 60.0
    client: httpx.Client | None = None

    def get(self, url: str, params: Mapping[str, str | int] | None = None) -> bytes:
        """The body of a 200 response, after retries; SourceError names the source, URL and last error."""
        # One client (one kept-alive connection) for the whole run, as arXiv asks.
        if self.client is None:
            self.client = httpx.Client(headers={"User-Agent": USER_AGENT}, timeout=self.timeout)
        return self._get(self.client, url, params)

    def _get(self, client: httpx.Client, url: str, params: Mapping[str, str | int] | None) -> bytes:
        last_error = ""
        for attempt in range(1, self.policy.attempts + 1):
            if self.limit_key:
                wait_turn(self.limit_key, interval=self.limit_interval, clock=self.clock)
            retry_after: float | None = None
            try:
                response = client.get(url, params=params, headers={"User-Agent": USER_AGENT})
            except httpx.TransportError as error:
                last_error = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 200:
                    return response.content
                last_error = f"HTTP {response.status_code}: {response.text[:200].strip()}"
                if response.status_code not in RETRY_STATUSES:
                    raise SourceError(f"{self.source}: {response.request.url} answered {last_error}")
                retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self.clock.now())
            if attempt < self.policy.attempts:
                self.clock.sleep(retry_after if retry_after is not None else self.policy.backoff(attempt))
        raise SourceError(
            f"{self.source}: gave up on {url} after {self.policy.attempts} attempts; last error: {last_error}"
        )


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), capped at an hour."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), 3600.0)
    try:
        when = email_date(value, utc=True)
    except ValueError:
        return None
    return min(max((when - now).total_seconds(), 0.0), 3600.0)


ARXIV_LIMIT_KEY = "arxiv"


def arxiv_fetcher(source: str) -> Fetcher:
    """A fetcher on arXiv's shared schedule: every arXiv source, in every process, takes turns."""
    return Fetcher(source=source, limit_key=ARXIV_LIMIT_KEY, limit_interval=ARXIV_INTERVAL)
