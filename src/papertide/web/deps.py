"""Request dependencies: the session, settings, templates, encoder, CSRF and rate limits."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from papertide.config import Settings, get_settings
from papertide.db import get_session
from papertide.embeddings.encoder import Encoder
from papertide.templating import environment

SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
templates = Jinja2Templates(env=environment())

CSRF_MAX_AGE_SECONDS = 2 * 3600


def get_encoder_provider(request: Request) -> Callable[[], Encoder | None]:
    """The app's lazy encoder: the model loads on the first semantic query, not at startup."""
    provider: Callable[[], Encoder | None] = request.app.state.encoder_provider
    return provider


EncoderProviderDep = Annotated[Callable[[], Encoder | None], Depends(get_encoder_provider)]


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.resolved_secret_key(), salt="papertide-csrf")


def csrf_token(settings: Settings, form: str) -> str:
    """A signed, timed token for one form; stateless, so any web replica can check it."""
    return _serializer(settings).dumps(form)


def check_csrf(settings: Settings, token: str | None, form: str) -> None:
    """Reject a form post whose token is missing, forged, for another form, or too old."""
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


class RateLimiter:
    """At most `limit` events per key in a sliding hour (per process; put a proxy limit in front at scale)."""

    def __init__(self, limit: int, window_seconds: float = 3600.0) -> None:
        self.limit = limit
        self.window = window_seconds
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and now - events[0] > self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True
