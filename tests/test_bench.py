"""The benchmark scripts stay runnable: every file they read exists, every papertide name they use resolves."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def load(script: Path) -> object:
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: a script's dataclasses look their module up by name while it runs.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_path_a_bench_script_names_exists(script: Path) -> None:
    module = load(script)
    paths = {name: value for name, value in vars(module).items() if isinstance(value, Path)}
    assert paths, f"{script.name} names no files"
    assert {name: p for name, p in paths.items() if not p.exists()} == {}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_papertide_import_in_a_bench_script_resolves(script: Path) -> None:
    """The scripts import papertide lazily, inside functions: check each of those imports."""
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("papertide"):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"
                ), f"{script.name}: from {node.module} import {alias.name}"


def test_the_send_bench_refuses_senders_only_without_several_senders() -> None:
    """`--senders-only` runs the N-sender path alone: with one sender there is nothing to run."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "digest_send.py"), "--senders-only"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "--senders-only needs --senders N with N of 2 or more" in done.stderr
