"""Request dependencies: the session, settings, templates, encoder, keyword index, CSRF and the client's address."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from papertide.config import Settings, get_settings
from papertide.db import CommitError, get_read_session, get_session
from papertide.embeddings.encoder import Encoder
from papertide.search import keyword_index
from papertide.search.keyword_index import KeywordIndex
from papertide.templating import environment

log = logging.getLogger(__name__)
CSRF_MAX_AGE_SECONDS = 2 * 3600
COMMIT_RETRY_AFTER_SECONDS = 5


def get_request_session() -> Iterator[Session]:
    """The request's unit of work; a commit that fails answers 503 (nothing was saved), never a success page."""
    try:
        yield from get_session()
    except CommitError as error:
        log.error("the request's commit failed: %s", error)
        raise HTTPException(
            status_code=503,
            detail="We could not save that just now, so nothing was changed. Please try again in a moment.",
            headers={"Retry-After": str(COMMIT_RETRY_AFTER_SECONDS)},
        ) from error


@contextmanager
def saved_now() -> Iterator[Session]:
    """A unit of work inside a request that commits when the block ends (503 if it cannot): for a
    change that must be saved before the request talks to the network (an email), so that no
    transaction stays open while a slow mail server answers."""
    with contextmanager(get_request_session)() as session:
        yield session


# scope="function": the session's exit (the commit) runs before the response is sent, not after
# (https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/).
SessionDep = Annotated[Session, Depends(get_request_session, scope="function")]
# For routes that only read: rolled back, never committed (a COMMIT of nothing is a round trip and a
# transaction for Postgres to count); BEGIN READ ONLY, so a write that slips in fails loudly.
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
templates = Jinja2Templates(env=environment())


def get_encoder_provider(request: Request) -> Callable[[], Encoder | None]:
    """The app's lazy encoder: the model loads on the first semantic query, not at startup."""
    provider: Callable[[], Encoder | None] = request.app.state.encoder_provider
    return provider


EncoderProviderDep = Annotated[Callable[[], Encoder | None], Depends(get_encoder_provider)]


def get_keyword_index(settings: SettingsDep) -> KeywordIndex:
    """DATA_DIR's keyword index, opened once per process (KeywordIndexUnavailable if it cannot be)."""
    return keyword_index.shared(settings)


KeywordIndexDep = Annotated[KeywordIndex, Depends(get_keyword_index)]


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.resolved_secret_key(), salt="papertide-csrf")


def csrf_token(settings: Settings, form: str) -> str:
    """A signed, timed token for one form; stateless, so any web replica can check it."""
    return _serializer(settings).dumps(form)


def check_csrf(request: Request, settings: Settings, token: str | None, form: str) -> None:
    """Reject a form post that a browser says came from another site, or whose token is missing,
    forged, for another form, or too old."""
    _check_own_site(request, settings)
    if not token:
        raise HTTPException(
            status_code=400, detail="The form's security token is missing. Reload the page and try again."
        )
    try:
        signed_for = _serializer(settings).loads(token, max_age=CSRF_MAX_AGE_SECONDS)
    except SignatureExpired:
        raise HTTPException(
            status_code=400, detail="The form has expired. Reload the page and try again."
        ) from None
    except BadSignature:
        raise HTTPException(
            status_code=400, detail="The form's security token is not valid. Reload the page and try again."
        ) from None
    if signed_for != form:
        raise HTTPException(status_code=400, detail="The form's security token belongs to another form.")


# A form's token is the same for every visitor (stateless, so any replica checks it), so a page
# elsewhere could fetch one and post the form from its own visitors' browsers: sign-ups in their
# names, from their addresses. Browsers say where a request comes from: Sec-Fetch-Site (Fetch
# Metadata, every current browser), else Origin. Only papertide's own pages carry its forms, so a
# post from another site, even a sibling subdomain, is refused. A client that says neither (curl,
# an old browser) is left to the token.
_FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
FOREIGN_FORM = "This form was sent from another site. Open the page on this site and send it from there."


def _check_own_site(request: Request, settings: Settings) -> None:
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        if fetch_site.strip().lower() in _FOREIGN_FETCH_SITES:
            raise HTTPException(status_code=403, detail=FOREIGN_FORM)
        return
    origin = request.headers.get("origin")
    if origin is None:
        return
    own = {_origin(settings.base_url)}
    host = request.headers.get("host")
    if host:  # the address the browser used, whatever the base URL says (a second name, a port)
        own |= {_origin(f"{scheme}://{host}") for scheme in _DEFAULT_PORTS}
    if _origin(origin) not in own - {None}:
        raise HTTPException(status_code=403, detail=FOREIGN_FORM)


def _origin(url: str) -> str | None:
    """scheme://host[:port] as browsers write an Origin (lower case, no default port); None for
    anything else, the opaque origin "null" included."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}")


# Headers a reverse proxy adds: a request carrying one did not come straight from its peer.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
IPV6_CLIENT_PREFIX = 64  # one IPv6 client holds a whole /64, so a limit counts the /64


def client_address(request: Request, settings: Settings) -> str:
    """The client a limit counts: the peer, or, only when the peer is a trusted proxy, the right-most
    X-Forwarded-For address that is not a trusted proxy (everything left of it the client could forge).
    """
    peer = request.client.host if request.client else "unknown"
    trusted = settings.trusted_proxy_networks
    address = _ip(peer)
    if address is None or not _within(address, trusted):
        return _limit_key(peer, address)
    hops = ",".join(request.headers.getlist("x-forwarded-for")).split(",")
    for hop in reversed([h.strip() for h in hops if h.strip()]):
        forwarded = _ip(hop)
        if forwarded is None:
            break  # not an address: stop at the last hop we could read
        if not _within(forwarded, trusted):
            return _limit_key(hop, forwarded)
        address = forwarded
    return _limit_key(str(address), address)


def comes_straight_from_loopback(request: Request) -> bool:
    """The peer is this machine (127.0.0.0/8 or ::1) and no proxy relayed the request."""
    address = _ip(request.client.host) if request.client else None
    relayed = any(name in request.headers for name in FORWARDING_HEADERS)
    return address is not None and address.is_loopback and not relayed


def browser_on_this_machine(request: Request, settings: Settings) -> bool:
    """The request comes straight from this machine (no proxy) and asks for it by one of its own
    names: what may read the dev outbox, and be told where it is."""
    return comes_straight_from_loopback(request) and _names_this_machine(request, settings.base_url)


def _names_this_machine(request: Request, base_url: str) -> bool:
    """The Host the browser asked for is this machine's: localhost (RFC 6761: never from DNS), a
    loopback address, or the site's own host. A page on another site whose name an attacker points
    at 127.0.0.1 (DNS rebinding) sends its own name, and reads nothing."""
    host = (request.url.hostname or "").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = _ip(host)
    if address is not None:
        return address.is_loopback
    return host == (urlsplit(base_url).hostname or "").lower()


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _within(address: IPAddress, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def _limit_key(text: str, address: IPAddress | None) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address) if address is not None else text[:64]
