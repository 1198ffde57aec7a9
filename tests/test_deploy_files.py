"""What a deployment installs is pinned: dependencies in requirements.lock, images by version (issue 8)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from papertide.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock pins exact versions, not {line!r}"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + [d for deps in extras.values() for d in deps]]


def test_every_dependency_is_pinned_to_a_version_pyproject_allows() -> None:
    locked = _locked()
    for requirement in _project_requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {name}=={locked[name]}, outside pyproject's {requirement}"
        )


def test_the_lock_is_what_the_suite_runs_on() -> None:
    drift = {
        name: (version, metadata.version(name))
        for name, version in _locked().items()
        if metadata.version(name) != version
    }
    assert drift == {}, "installed versions differ from requirements.lock: run `make lock`"


def test_every_install_uses_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    project_installs = re.findall(r"pip install [^\n]*(?:-e |\.\s*$|-e '\.\[)[^\n]*", makefile, re.M)
    assert project_installs, "the Makefile installs the project"
    assert all("-c $(LOCK)" in line for line in project_installs), project_installs
    assert "LOCK := requirements.lock" in makefile
    assert "COPY pyproject.toml requirements.lock" in dockerfile
    assert "pip install -c requirements.lock ." in dockerfile


def _images() -> list[str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    images = [service["image"] for service in compose["services"].values() if "image" in service]
    images += [compose["x-papertide"]["image"]]
    dockerfile = (ROOT / "Dockerfile").read_text()
    images += re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    return images


def test_every_image_names_its_version() -> None:
    images = _images()
    assert len(images) >= 4, images
    for image in images:
        name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        assert name, image
        assert tag, f"{image} has no tag: it would pull whatever `latest` is that day"
        assert tag != "latest", f"{image}: pin a version, not `latest`"
        assert re.search(r"\d", tag), f"{image}: the tag {tag!r} names no version"


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_only_the_web_service_keeps_the_images_health_check() -> None:
    """The image's HEALTHCHECK asks :8000/healthz, which only `papertide serve` answers: any other
    papertide service would be unhealthy forever (and restarted mid-run by an orchestrator)."""
    assert "/healthz" in (ROOT / "Dockerfile").read_text()
    for name, service in _compose()["services"].items():
        if service.get("image", "").startswith("papertide:") or "build" in service:
            serves = "serve" in service.get("command", [])
            assert serves or service.get("healthcheck") == {"disable": True}, name


def test_the_composes_defaults_are_settings_papertide_accepts() -> None:
    """`docker compose up` with only the two required variables set must start: each default the
    file gives (`${VAR:-default}`) passes papertide's own checks."""
    environment = _compose()["x-papertide"]["environment"]
    values = {
        key.removeprefix("PAPERTIDE_").lower(): re.sub(
            r"\$\{[A-Z_]+:(?:-([^}]*)|\?[^}]*)\}",
            lambda m: "https://papers.example.org" if m.group(1) is None else m.group(1),
            value,
        )
        for key, value in environment.items()
    }

    settings = Settings.model_validate(values)

    assert settings.smtp_url == "smtp://mailpit:1025"
    assert settings.mail_from == "papertide <digest@localhost>"
    assert settings.dkim_key_file is None, "an empty ${VAR:-} is unset: mail goes unsigned"
