"""/docs, the interactive API documentation, served whole from this site: it works with no internet.

FastAPI's own /docs loads Swagger UI from a CDN, so a self-hosted instance without internet showed
a blank page (issue 11). The files come from the `fastapi-offline` package (Swagger UI 5, Apache
2.0, in an MIT wrapper) and are served under /static/docs; the page's one inline script, which
starts Swagger UI, is allowed by its hash (headers.docs_policy), so the policy needs neither a
CDN nor 'unsafe-inline'.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = "/static/docs"
OPENAPI_URL = "/openapi.json"
# No online validator: Swagger UI would otherwise ask validator.swagger.io about our schema.
SWAGGER_PARAMETERS = {"validatorUrl": None}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def assets_dir() -> Path:
    """Where the installed package keeps swagger-ui-bundle.js, swagger-ui.css and the favicon."""
    return Path(str(files("fastapi_offline") / "static"))


def swagger_page() -> HTMLResponse:
    """The /docs page: Swagger UI from our own /static/docs, reading our /openapi.json."""
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title="papertide API",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )


def start_script_hashes() -> list[str]:
    """CSP sources for the inline script(s) of the /docs page (sha256 of their exact text)."""
    html = bytes(swagger_page().body).decode()
    digests = (hashlib.sha256(script.encode()).digest() for script in _INLINE_SCRIPT.findall(html))
    return [f"'sha256-{base64.b64encode(digest).decode()}'" for digest in digests]


def add_docs(app: FastAPI) -> None:
    """Serve /docs and its files (the app is made with docs_url=None, redoc_url=None)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> HTMLResponse:
        return swagger_page()
