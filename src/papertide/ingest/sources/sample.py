"""The bundled offline sample: real Hugging Face Daily Papers days, parsed like live hf-daily data."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import date
from pathlib import Path

from papertide import paths
from papertide.ingest.sources import hf_daily
from papertide.ingest.sources.base import ParseResult, SourceError

NAME = "sample"


def parse_sample(path: Path | None = None) -> ParseResult:
    """Every day in the sample file (`{"YYYY-MM-DD": [items...]}`, gzip), through the hf-daily parser."""
    path = path or paths.SAMPLE_FILE
    days = _read(path)
    result = ParseResult()
    for day_text, items in sorted(days.items()):
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise SourceError(
                f"{NAME}: {path.name} has a day key {day_text!r} that is not YYYY-MM-DD"
            ) from None
        if not isinstance(items, list):
            raise SourceError(f"{NAME}: {path.name} day {day_text} should hold a JSON array of papers")
        observed_at = hf_daily.recorded_observation_time(day)
        result.extend(
            hf_daily.parse_day(items, day=day, observed_at=observed_at, location=f"{path.name}:{day_text}")
        )
    return result


def _read(path: Path) -> dict[str, object]:
    try:
        raw = gzip.decompress(path.read_bytes())
        days = json.loads(raw)
    except FileNotFoundError:
        raise SourceError(f"{NAME}: sample file {path} does not exist") from None
    except (OSError, EOFError, zlib.error) as error:
        raise SourceError(f"{NAME}: {path} is not a readable gzip file: {error}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SourceError(f"{NAME}: {path} does not hold valid JSON: {error}") from None
    if not isinstance(days, dict):
        raise SourceError(f"{NAME}: {path} should map days to arrays of papers")
    return days
