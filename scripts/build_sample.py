"""Rebuild the bundled sample from recorded Hugging Face Daily Papers days.

Usage: python scripts/build_sample.py ../shared/fixtures/hf_daily_papers/daily
Items are kept exactly as the API returned them; only the per-day files are packed into one gzip.
"""

import gzip
import json
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "src/papertide/data/hf_daily_papers.json.gz"


def main(source_dir: Path) -> None:
    days = {path.stem: json.loads(path.read_text()) for path in sorted(source_dir.glob("*.json"))}
    TARGET.write_bytes(gzip.compress(json.dumps(days, separators=(",", ":")).encode(), mtime=0))
    sys.stdout.write(f"{len(days)} days, {sum(map(len, days.values()))} items -> {TARGET}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
