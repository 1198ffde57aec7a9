"""The `Server-Timing` header (https://www.w3.org/TR/server-timing/): where a request's time went.

Browsers show it in their network panel, and bench/search_scale.py reads it to split a search's
latency into embedding, keyword, vector, fusion, loading and rendering without a profiler.
"""

from __future__ import annotations

import time
from collections.abc import Mapping


def started() -> float:
    """A start mark for `header(..., since=...)`."""
    return time.perf_counter()


def elapsed_ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def header(steps: Mapping[str, float], *, since: float) -> str:
    """`embed;dur=7.5, keyword;dur=3.1, total;dur=12.0`: each step in milliseconds, then the total."""
    timed = {**steps, "total": elapsed_ms(since)}
    return ", ".join(f"{name};dur={ms:.1f}" for name, ms in timed.items())
