"""Write requirements.lock: the exact versions installed in this environment of everything
pyproject.toml needs (its dependencies and the dev extra, with their dependencies, extras included).

Usage: .venv/bin/python scripts/lock_requirements.py   (after `make install-dev` on a working venv)
torch and its CUDA libraries are left out: the Makefile and the Dockerfile install the build that
fits the machine first (TORCH_SPEC), and `pip install -c requirements.lock` keeps it.
"""

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "requirements.lock"
LEFT_OUT = ("torch", "nvidia-", "triton")
HEADER = """\
# Exact versions of everything papertide installs (pyproject.toml's dependencies and the dev extra).
# Used as constraints: pip install -c requirements.lock -e '.[dev]'  (make install / the Dockerfile).
# Regenerate after changing pyproject.toml: .venv/bin/python scripts/lock_requirements.py
# torch is not here: the Makefile and Dockerfile install the build that fits the machine first.
"""


def closure(roots: list[Requirement]) -> dict[str, str]:
    """Every installed distribution the roots need, by canonical name, with its version."""
    pinned: dict[str, str] = {}
    todo = [(req, frozenset(req.extras)) for req in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if (name, extras) in seen or name == "papertide":
            continue
        seen.add((name, extras))
        dist = metadata.distribution(req.name)
        pinned[name] = dist.version
        for dep in map(Requirement, dist.requires or []):
            if _wanted(dep, extras):
                todo.append((dep, frozenset(dep.extras)))
    return pinned


def _wanted(dep: Requirement, extras: frozenset[str]) -> bool:
    if dep.marker is None:
        return True
    return any(dep.marker.evaluate({**default_environment(), "extra": e}) for e in extras or {""})


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    roots = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    pinned = closure(roots)
    lines = [
        f"{name}=={version}" for name, version in sorted(pinned.items()) if not name.startswith(LEFT_OUT)
    ]
    TARGET.write_text(HEADER + "\n".join(lines) + "\n")
    sys.stdout.write(f"{len(lines)} pins -> {TARGET}\n")


if __name__ == "__main__":
    main()
