"""Kaggle snapshot ingest: the per-record ORM path against the bulk COPY + merge path, same run;
then the keyword index pass against the tsvector pass it replaced (issue 10), on the same papers.

    .venv/bin/python bench/ingest.py [--n 200000] [--baseline-n 20000]

Generates N lines in the snapshot's format (from the 200 real lines in tests/fixtures, with new ids
and shuffled text), loads them into a fresh embedded Postgres through both paths, and prints
papers/s for each and the ratio. The per-record path is slow, so by default it loads the first
`--baseline-n` lines only; rates are comparable because both paths start from an empty table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests/fixtures/kaggle_arxiv_snapshot/arxiv-metadata-oai-snapshot.first200.jsonl"
SNAPSHOT_LINES = 2_800_000


def generate(path: Path, n: int, seed: int = 0) -> None:
    """N snapshot lines: real records with unique new-style ids and reshuffled abstract sentences."""
    rng = random.Random(seed)
    real = [json.loads(line) for line in SOURCE.read_text().splitlines()]
    sentences = [s.strip() for r in real for s in r["abstract"].split(". ") if s.strip()]
    with path.open("w") as out:
        for i in range(n):
            record = dict(real[i % len(real)])
            record["id"] = f"{2000 + i // 99999 % 99:04d}.{i % 99999 + 1:05d}"
            record["abstract"] = ". ".join(rng.sample(sentences, 6)) + "."
            record["title"] = f"{record['title']} ({i})"
            out.write(json.dumps(record) + "\n")


def per_record(path: Path, limit: int) -> tuple[int, float]:
    """The baseline: parse each line, then one ORM get + insert/update + flush per paper."""
    from papertide.db import unit_of_work
    from papertide.ingest.sources import kaggle
    from papertide.models import Paper
    from papertide.papers.schemas import PaperIn

    start = time.perf_counter()
    done = 0
    with path.open() as lines, unit_of_work() as session:
        for item in kaggle.iter_records(
            (line for _, line in zip(range(limit), lines, strict=False)), location=path.name
        ):
            if not isinstance(item, PaperIn):
                continue
            row = item.row("kaggle")
            paper = session.get(Paper, item.id)
            if paper is None:
                session.add(Paper(**row))
            else:
                for key, value in row.items():
                    setattr(paper, key, value)
            session.flush()
            done += 1
            if done % 1000 == 0:
                session.commit()
    return done, time.perf_counter() - start


def bulk(path: Path, parsers: int | None) -> tuple[int, float]:
    from papertide.worker.ingest import load_snapshot

    start = time.perf_counter()
    summary = load_snapshot(path, progress=True, parsers=parsers)
    return summary.counts["new"], time.perf_counter() - start


def keyword_index() -> tuple[int, float]:
    """The keyword index fed from what the bulk load queued, as the worker does it (tantivy BM25)."""
    from papertide.worker.jobs import index_keywords

    start = time.perf_counter()
    done = index_keywords(progress=True)
    return done, time.perf_counter() - start


# The pass before issue 10: one to_tsvector per row in a single backend, 5,000 rows a transaction.
_OLD_PASS = """
    UPDATE paper SET bench_search_vector =
        setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
        setweight(to_tsvector('english', coalesce(abstract, '')), 'B')
    WHERE id IN (SELECT id FROM paper WHERE bench_search_vector IS NULL LIMIT 5000 FOR UPDATE SKIP LOCKED)
"""


def old_keyword_pass() -> tuple[int, float]:
    """The baseline: the deferred tsvector pass (into a scratch column, then dropped)."""
    from sqlalchemy import text

    from papertide.db import unit_of_work

    with unit_of_work() as session:
        session.execute(text("ALTER TABLE paper ADD COLUMN bench_search_vector tsvector"))
    done, start = 0, time.perf_counter()
    while True:
        with unit_of_work() as session:
            count = session.execute(text(_OLD_PASS)).rowcount  # type: ignore[attr-defined]
        if count == 0:
            break
        done += count
    elapsed = time.perf_counter() - start
    with unit_of_work() as session:
        session.execute(text("ALTER TABLE paper DROP COLUMN bench_search_vector"))
    return done, elapsed


def fresh_database(data_dir: Path, name: str) -> None:
    """Point papertide at a new, migrated database on the embedded server."""
    from papertide import db, embedded_pg

    os.environ["PAPERTIDE_DATA_DIR"] = str(data_dir)
    db.reset()
    admin = embedded_pg.admin_uri(data_dir)
    embedded_pg.ensure_database(admin, name)
    url = embedded_pg.to_sqlalchemy_url(admin, name)
    os.environ["PAPERTIDE_DATABASE_URL"] = url
    db.reset()
    db.upgrade(url)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--baseline-n", type=int, default=20_000)
    parser.add_argument(
        "--parsers", type=int, default=None, help="parser processes (default: papertide's choice)"
    )
    args = parser.parse_args()
    # The embedded server runs in the folder until this process exits: leave what it holds open.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        data = Path(tmp)
        lines = data / "snapshot.jsonl"
        generate(lines, args.n)
        fresh_database(data, "bench_orm")
        orm_n, orm_s = per_record(lines, min(args.baseline_n, args.n))
        fresh_database(data, "bench_bulk")
        bulk_n, bulk_s = bulk(lines, args.parsers)
        index_n, index_s = keyword_index()
        old_n, old_s = old_keyword_pass()
    orm_rate, bulk_rate = orm_n / orm_s, bulk_n / bulk_s
    print(f"{'path':<24}{'papers':>10}{'seconds':>10}{'papers/s':>12}")
    print(f"{'per-record ORM':<24}{orm_n:>10,}{orm_s:>10.1f}{orm_rate:>12,.0f}")
    print(f"{'bulk COPY + merge':<24}{bulk_n:>10,}{bulk_s:>10.1f}{bulk_rate:>12,.0f}")
    print(f"{'tsvector pass (before)':<24}{old_n:>10,}{old_s:>10.1f}{old_n / old_s:>12,.0f}")
    print(f"{'keyword index (after)':<24}{index_n:>10,}{index_s:>10.1f}{index_n / index_s:>12,.0f}")
    print(f"ratio keyword index / tsvector pass: {(index_n / index_s) / (old_n / old_s):.1f}x")
    print(f"ratio bulk / per-record: {bulk_rate / orm_rate:.1f}x")
    print(
        f"full snapshot ({SNAPSHOT_LINES:,} lines) at the bulk rate: about {SNAPSHOT_LINES / bulk_rate / 60:.1f} min"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
