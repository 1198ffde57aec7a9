"""Where templates, migrations and bundled data live, from a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent.parent


def _resource(name: str) -> Path:
    # The wheel carries templates/, migrations/ and alembic.ini inside the package
    # (pyproject force-include); a checkout or editable install has them at the top level.
    installed = PACKAGE_DIR / name
    return installed if installed.exists() else CHECKOUT_DIR / name


TEMPLATES_DIR = _resource("templates")
MIGRATIONS_DIR = _resource("migrations")
ALEMBIC_INI = _resource("alembic.ini")
SAMPLE_FILE = PACKAGE_DIR / "data" / "hf_daily_papers.json.gz"
