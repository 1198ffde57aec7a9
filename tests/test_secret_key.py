"""The secret key the embedded default generates: private from its creation, one key for racing processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Runs in a fresh interpreter with a permissive umask. An audit hook looks at the key file at every
# audited step (each open, write, chmod, link, ...) and records its mode whenever it exists.
_WATCHED = """
import json, os, stat, sys
from pathlib import Path
key_file = Path(sys.argv[1]) / "secret_key"
modes = set()
def watch(event, args):
    if key_file.exists():
        modes.add(stat.S_IMODE(key_file.stat().st_mode))
os.umask(0o022)
sys.addaudithook(watch)
from papertide.config import Settings
Settings(data_dir=Path(sys.argv[1]), database_url=None, secret_key=None).resolved_secret_key()
print(json.dumps(sorted(modes)))
"""

_RACER = """
import sys, time
from pathlib import Path
from papertide.config import Settings
settings = Settings(data_dir=Path(sys.argv[1]), database_url=None, secret_key=None)
while time.time() < float(sys.argv[2]):
    pass
print(settings.resolved_secret_key())
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}


def test_the_generated_key_is_never_readable_by_others(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _WATCHED, str(tmp_path / "data")],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [0o600], "the key file was seen with other permissions"


def test_processes_that_start_together_all_use_one_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    start_at = time.time() + 2  # every racer imports first, then all generate at once
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(data_dir), str(start_at)],
            env=_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    keys = {racer.communicate(timeout=60)[0].strip() for racer in racers}

    assert keys == {(data_dir / "secret_key").read_text().strip()}
    assert len(next(iter(keys))) > 40
    assert sorted(p.name for p in data_dir.iterdir()) == ["secret_key"], "no drafts are left behind"
