"""The house rules, checked by the machine: imports run one way, the edge owns the transaction."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from papertide.config import Settings
from papertide.ranking.service import params_from
from papertide.ranking.trending import TrendParams

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "papertide"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# Where a unit of work may begin and end: the edges, and the documented exceptions (each says why at the spot).
EDGES = ("cli.py", "db.py", "worker/", "web/")
DOCUMENTED_EXCEPTIONS = {"runs/service.py", "ingest/ratelimit.py", "search/keyword_index.py"}


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the project's contracts, over the package in `src`."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=src.parent,
        env={"PYTHONPATH": str(src.parent), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_import_contracts_hold() -> None:
    result = lint_imports(SRC)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "named"),
    [
        ("papers/repository.py", "from papertide.search import service", "papertide.papers.repository"),
        ("config.py", "from papertide.ranking import trending", "papertide.config"),
        ("ingest/sources/kaggle.py", "from papertide.ingest.sources import arxiv_rss", "kaggle"),
        ("search/service.py", "from papertide.db import unit_of_work", "papertide.search.service"),
    ],
)
def test_an_import_that_runs_back_up_fails_the_build_and_names_itself(
    tmp_path: Path, module: str, bad_import: str, named: str
) -> None:
    copy = tmp_path / "papertide"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "*.gz"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{bad_import}  # noqa\n")
    result = lint_imports(copy)
    assert result.returncode != 0
    assert named in result.stdout


def _calls(path: Path) -> set[str]:
    """Names of the functions and methods a module calls."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def test_no_service_or_repository_commits_or_opens_a_unit_of_work() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith(EDGES) or relative in DOCUMENTED_EXCEPTIONS:
            continue
        if _calls(path) & {"commit", "unit_of_work", "session_factory"}:
            offenders.append(relative)
    assert offenders == []


def test_each_documented_exception_says_why_at_the_spot() -> None:
    for relative in sorted(DOCUMENTED_EXCEPTIONS):
        text = (SRC / relative).read_text()
        assert "unit_of_work()" in text
        assert "exception" in text.lower(), relative
        assert "commit" in text.lower(), relative


def test_the_trend_defaults_in_settings_are_the_formulas_own() -> None:
    assert params_from(Settings()) == TrendParams()


def test_every_setting_is_read_somewhere() -> None:
    """A setting that nothing reads is a lie in the README: it must take effect or go."""
    read = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                read.add(node.attr)
    unread = sorted(name for name in Settings.model_fields if name not in read)
    assert unread == []
