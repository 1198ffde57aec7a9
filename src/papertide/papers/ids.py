"""Canonical paper ids: an arXiv id without its version, or a stable id derived from the title."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# New-style ids (0704.0001, 2401.12345) and old-style ids (hep-th/9901001, math.GT/0309136).
_ARXIV_NEW = re.compile(r"^(?P<id>\d{4}\.\d{4,5})(?:v(?P<version>\d+))?$")
_ARXIV_OLD = re.compile(r"^(?P<id>[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<version>\d+))?$")
_PREFIXES = ("arxiv:", "https://arxiv.org/abs/", "http://arxiv.org/abs/")


def split_arxiv_id(raw: str) -> tuple[str, int | None] | None:
    """`2401.12345v2` -> (`2401.12345`, 2); None when `raw` is not an arXiv id."""
    value = raw.strip()
    for prefix in _PREFIXES:
        if value.lower().startswith(prefix):
            value = value[len(prefix) :]
    for pattern in (_ARXIV_NEW, _ARXIV_OLD):
        match = pattern.match(value)
        if match:
            version = match.group("version")
            return match.group("id"), int(version) if version else None
    return None


def canonical_id(raw: str) -> tuple[str, int | None]:
    """An arXiv id loses only its version suffix; any other id is kept exactly as written."""
    parsed = split_arxiv_id(raw)
    return parsed if parsed else (raw, None)


def normalize_title(title: str) -> str:
    """Lowercase, accents and punctuation removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def id_from_title(title: str) -> str:
    """A stable id for records that carry none: the same title always gives the same id."""
    digest = hashlib.sha256(normalize_title(title).encode()).hexdigest()[:16]
    return f"t-{digest}"
