"""An installed wheel finds its templates, migrations and sample without the checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_the_wheel_carries_templates_migrations_and_the_sample(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("papertide-*.whl"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from papertide import paths; from papertide.templating import environment;"
        "environment().get_template('pages/trending.html');"
        "print(paths.TEMPLATES_DIR, paths.MIGRATIONS_DIR / 'env.py', paths.ALEMBIC_INI, paths.SAMPLE_FILE)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(target)], check=True, capture_output=True, text=True, cwd=tmp_path
    ).stdout.split()
    assert all(Path(p).is_relative_to(target) and Path(p).exists() for p in out), out
