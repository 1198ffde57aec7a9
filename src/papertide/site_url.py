"""The public URL of the site that owns a data dir: what absolute links (emails) point at.

`papertide up` / `serve` publish `http://{host}:{port}` to DATA_DIR/site_url while they run, so
that a link built anywhere on the same data (the web app, the scheduler, `papertide digest send`
from another shell) reaches the running site rather than a port nobody listens on. An explicit
PAPERTIDE_BASE_URL always wins over this file (config.Settings.base_url).

Root-level on purpose: config imports it, so it imports nothing from papertide.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import re
import secrets
import socket
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, quote, urlsplit

log = logging.getLogger(__name__)
FILE_NAME = "site_url"
DEFAULT = "http://127.0.0.1:8000"
_ANY_ADDRESS = {"", "0.0.0.0", "::"}  # listening on every interface: the machine itself is the link


def for_listener(host: str, port: int) -> str:
    """The URL a browser on this machine uses for a server bound to host:port."""
    if not 1 <= port <= 65535:  # port 0 lets the OS pick one: no URL names it in advance
        raise ValueError(f"port {port} is not one a site can be reached on (1-65535)")
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host.replace('%', '%25')}]"  # an IPv6 literal; its zone id's % escaped (RFC 6874)
    return f"http://{host}:{port}"


def read(data_dir: Path) -> str | None:
    """The URL a running site published for `data_dir`, or None (none runs, or the file is unusable).

    The newest record whose process still runs wins: a site killed with kill -9 leaves its line
    behind, and a reader must not send links to its dead port."""
    for record in _records(data_dir):
        if record.alive():
            return record.url
    return None


def resolve(data_dir: Path) -> str:
    """The base URL when PAPERTIDE_BASE_URL is unset: the running site's, else the default."""
    return read(data_dir) or DEFAULT


@contextlib.contextmanager
def published(data_dir: Path, url: str) -> Iterator[None]:
    """DATA_DIR/site_url holds `url` for the block; this site's record is removed at the end."""
    try:
        token = publish(data_dir, url)
    except OSError as error:
        # A read-only data dir must not stop the site; commands beside it then use their own
        # PAPERTIDE_BASE_URL or the default.
        log.warning("cannot write %s (%s): other commands will not know this site's URL", data_dir, error)
        yield
        return
    try:
        yield
    finally:
        withdraw(data_dir, token)


def publish(data_dir: Path, url: str) -> str:
    """Put this site's record first in the file; returns the token that withdraw() needs.

    Every site on the data dir keeps its own line, so that stopping one (or a second start that
    cannot bind the port) leaves the others' URLs in place."""
    data_dir.mkdir(parents=True, exist_ok=True)
    mine = _Record(
        url.rstrip("/"), os.getpid(), socket.gethostname(), _start_time(os.getpid()), secrets.token_hex(8)
    )
    with _locked(data_dir):
        # A line with no owner (written before records had one) can never be withdrawn: drop it.
        others = [r for r in _records(data_dir) if r.pid is not None and r.alive()]
        _write(data_dir, [mine, *others])
    return mine.token or ""


def withdraw(data_dir: Path, token: str) -> None:
    """Remove this site's record (and any left by dead processes); the file goes with the last one."""
    with contextlib.suppress(OSError), _locked(data_dir):  # a stop must not fail on this
        rest = [r for r in _records(data_dir) if r.token != token and r.alive()]
        if rest:
            _write(data_dir, rest)
        else:
            (data_dir / FILE_NAME).unlink(missing_ok=True)


@dataclass(frozen=True)
class _Record:
    """One line of the file: `URL pid N host H started T token X`; an old file has the URL alone."""

    url: str
    pid: int | None = None
    host: str | None = None
    started: str | None = None  # the process's start time: a pid reused after a kill -9 is not it
    token: str | None = None

    def line(self) -> str:
        fields = {"pid": self.pid, "host": self.host, "started": self.started, "token": self.token}
        return " ".join([self.url, *(f"{key} {value}" for key, value in fields.items() if value is not None)])

    def alive(self) -> bool:
        """Whether the process that wrote it still runs (unknowable for another host or no pid)."""
        if self.pid is None or self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: it exists
        return self.started is None or self.started == _start_time(self.pid)


def _records(data_dir: Path) -> list[_Record]:
    try:
        text = (data_dir / FILE_NAME).read_text()
    except (OSError, UnicodeDecodeError):
        return []
    records = []
    for line in text.splitlines():
        url, *rest = line.split() or [""]
        if not _is_http_url(url) or len(rest) % 2:
            continue
        fields = dict(zip(rest[::2], rest[1::2], strict=True))
        pid = fields.get("pid", "")
        records.append(
            _Record(
                url.rstrip("/"),
                int(pid) if pid.isdigit() else None,
                fields.get("host"),
                fields.get("started"),
                fields.get("token"),
            )
        )
    return records


def _write(data_dir: Path, records: list[_Record]) -> None:
    """Write the file whole (a draft renamed into place): a reader never sees half of it."""
    target = data_dir / FILE_NAME
    draft = target.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        draft.write_text("".join(record.line() + "\n" for record in records))
        os.replace(draft, target)
    finally:
        draft.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """Two sites starting or stopping at once must not each drop the other's line."""
    with open(data_dir / f".{FILE_NAME}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 of stat; the command name (field 2) may hold spaces, so count after its ")".
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def problem(url: str) -> str | None:
    """What is wrong with `url` as the site's base URL, or None: an absolute http(s) URL with a
    host, a port in 1-65535 if any, and a path prefix at most (links are built by appending)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:  # a bad [IPv6] literal, a port that is no number or past 65535
        if "port" in str(error).lower():
            return "has a port out of range (1-65535)"
        return f"is not an http(s) URL ({error})"
    if parts.scheme not in ("http", "https") or any(c.isspace() or ord(c) < 32 for c in url):
        return "is not an http(s) URL: give the site's address, e.g. https://papers.example.org"
    if not parts.hostname:
        return "has no host name"
    if parts.username is not None or parts.password is not None:
        return "has a user name or password in it (user@host): give the address readers open"
    if port == 0:
        return "has a port out of range (1-65535)"
    if "?" in url:
        return "has a query string (?...): links are built by appending paths to it"
    if "#" in url:
        return "has a fragment (#...): links are built by appending paths to it"
    if not url.isascii():
        return _beyond_ascii(parts)
    if outside := sorted(set(url) - _URI_CHARACTERS):
        # `>` would end the List-Unsubscribe header's <URL> early; `"` and `<` break out of places too.
        return f"has characters a URL cannot hold ({' '.join(outside)}): write them %-escaped"
    if _STRAY_PERCENT.search(url):
        return "has a % that is not a %-escape (%XX)"
    return None


# RFC 3986 §2: what a URI may hold as written (unreserved, reserved, and % for escapes).
_URI_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _beyond_ascii(parts: SplitResult) -> str:
    """Why a URL with letters beyond ASCII is refused, and its ASCII spelling to give instead.

    Links go into email headers (List-Unsubscribe) that must stay ASCII: a mail library
    RFC 2047-encodes a header with anything else, and mail providers then offer no unsubscribe.
    The same address in ASCII (IDNA for the host, %-escapes for the path) opens the same site."""
    try:
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except UnicodeError:
        return "has a host name beyond ASCII that is no valid international domain name"
    port = f":{parts.port}" if parts.port else ""
    spelled = f"{parts.scheme}://{host}{port}{quote(parts.path, safe='/%')}"
    return f"has letters beyond ASCII; give the same address in ASCII: {spelled}"


def is_loopback(url: str) -> bool:
    """localhost, 127.0.0.0/8, ::1, 0.0.0.0 in any spelling (127.1, 0, ::ffff:127.0.0.1), or no
    host at all: a link only this machine can follow."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host in ("", "localhost") or host.endswith(".localhost") or host in _ANY_ADDRESS:
        return True
    address = _ip_address(host)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host literal names, including the short IPv4 forms (127.1, 0, 0x7f.1) that
    ipaddress refuses but the C resolver, and so a mail reader's browser, accepts."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _is_http_url(text: str) -> bool:
    return problem(text) is None
