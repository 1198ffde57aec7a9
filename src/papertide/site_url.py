"""The public URL of the site that owns a data dir: what absolute links (emails) point at.

`papertide up` / `serve` publish `http://{host}:{port}` to DATA_DIR/site_url while they run, so
that a link built anywhere on the same data (the web app, the scheduler, `papertide digest send`
from another shell) reaches the running site rather than a port nobody listens on. An explicit
PAPERTIDE_BASE_URL always wins over this file (config.Settings.base_url).

Root-level on purpose: config imports it, so it imports nothing from papertide.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)
FILE_NAME = "site_url"
DEFAULT = "http://127.0.0.1:8000"
_ANY_ADDRESS = {"", "0.0.0.0", "::"}  # listening on every interface: the machine itself is the link


def for_listener(host: str, port: int) -> str:
    """The URL a browser on this machine uses for a server bound to host:port."""
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{port}"


def read(data_dir: Path) -> str | None:
    """The URL a running site published for `data_dir`, or None (none runs, or the file is unusable)."""
    try:
        text = (data_dir / FILE_NAME).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text.rstrip("/") if _is_http_url(text) else None


def resolve(data_dir: Path) -> str:
    """The base URL when PAPERTIDE_BASE_URL is unset: the running site's, else the default."""
    return read(data_dir) or DEFAULT


@contextlib.contextmanager
def published(data_dir: Path, url: str) -> Iterator[None]:
    """DATA_DIR/site_url holds `url` for the block; removed at the end if it is still ours."""
    try:
        publish(data_dir, url)
    except OSError as error:
        # A read-only data dir must not stop the site; commands beside it then use their own
        # PAPERTIDE_BASE_URL or the default.
        log.warning("cannot write %s (%s): other commands will not know this site's URL", data_dir, error)
        yield
        return
    try:
        yield
    finally:
        withdraw(data_dir, url)


def publish(data_dir: Path, url: str) -> None:
    """Write the URL whole (a draft renamed into place): a reader never sees half of it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / FILE_NAME
    draft = target.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        draft.write_text(url + "\n")
        os.replace(draft, target)
    finally:
        draft.unlink(missing_ok=True)


def withdraw(data_dir: Path, url: str) -> None:
    """Remove the file, unless another site on the same data has published its own URL since."""
    if read(data_dir) == url.rstrip("/"):
        with contextlib.suppress(OSError):  # a stop must not fail on this; the next start replaces it
            (data_dir / FILE_NAME).unlink(missing_ok=True)


def is_loopback(url: str) -> bool:
    """localhost, 127.0.0.0/8, ::1 (or no host at all): a link only this machine can follow."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host in ("", "localhost") or host.endswith(".localhost") or host in _ANY_ADDRESS:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "\n" not in text
