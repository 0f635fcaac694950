"""Typed settings, read only from the environment.

Three profiles share one shape: ``development`` (the default), ``test`` and ``production``.
Profiles differ only in defaults (fast password hashing in tests, short relay timers in tests,
loopback callbacks allowed outside production). Secrets never have defaults: ``make run`` and
``make test`` generate development keys and pass them in. Production additionally refuses to
start when a secret or a URL is missing or is recognisably a development value, so a
misconfigured deploy fails loudly at boot instead of running with guessable keys.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

PROFILES = ("development", "test", "production")

#: URLs of the embedded servers that ``make run`` starts; development falls back to them.
DEV_DATABASE_URL = "postgresql://postgres@127.0.0.1:25432/estacionate"
DEV_REDIS_URL = "redis://127.0.0.1:26379/0"

#: Development tooling marks everything it generates with this prefix (key ids, secret keys),
#: which is how production recognises a development value it must refuse.
DEV_MARKER = "dev"

#: Values people paste from examples; production refuses them too.
PLACEHOLDERS = frozenset({"", "change-me", "changeme", "secret", "password", "development", "test", "example"})

#: The callback task's soft time limit is 60 s; an attempt must end well before it.
MAX_WEBHOOK_DEADLINE_SECONDS = 45.0
#: ``secrets.token_urlsafe(32)`` gives 43 characters.
MIN_METRICS_TOKEN_LENGTH = 32

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_WHATSAPP_ADDRESS = re.compile(r"^whatsapp:\+[1-9]\d{6,14}$")

#: Where the real Twilio REST API lives; ``TWILIO_API_BASE`` replaces it (tests: a local fake).
TWILIO_DEFAULT_API_BASE = "https://api.twilio.com"


class ConfigurationError(SystemExit):
    """Raised when settings are unusable.

    It is a ``SystemExit`` on purpose: wherever it escapes (gunicorn boot, the Celery worker, the
    ``flask`` CLI) the process prints this one clear sentence and exits non-zero, with no
    traceback that could be mistaken for a bug.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Estacionate refuses to start: " + "; ".join(problems))


def _b64decode(value: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError("not valid base64") from exc


def parse_keyring_spec(spec: str) -> list[tuple[str, bytes]]:
    """Parse ``ENCRYPTION_KEYS="id2:base64,id1:base64"`` into ``[(id, 32-byte key), ...]``."""
    entries: list[tuple[str, bytes]] = []
    for raw in spec.split(","):
        raw = raw.strip()
        if not raw:
            continue
        key_id, sep, material = raw.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ValueError("each entry must be '<id>:<base64 key>' with an id of [A-Za-z0-9_-]{1,32}")
        key = _b64decode(material)
        if len(key) != 32:
            raise ValueError(f"key {key_id!r} must be 32 bytes (AES-256), got {len(key)}")
        if key_id in {k for k, _ in entries}:
            raise ValueError(f"key id {key_id!r} appears twice")
        entries.append((key_id, key))
    if not entries:
        raise ValueError("at least one key is required")
    return entries


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


#: Defaults that differ from the field's own default in one profile (the field holds the
#: production value). Tests wait out real lockouts and leases, log in hundreds of times a minute
#: from one address and hash many passwords, so their clocks and costs are shrunk; outside
#: production, callbacks may go to loopback receivers.
PROFILE_DEFAULTS: dict[str, dict[str, object]] = {
    "development": {"allow_loopback_callbacks": True},
    "test": {
        "allow_loopback_callbacks": True,
        "login_lock_base_seconds": 1,
        "login_lock_max_seconds": 15,
        # The rate-limit tests build an app with the production limits instead.
        "rate_limit_auth": "100000/minute",
        "rate_limit_register": "100000/minute",
        "rate_limit_default": "100000/minute",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "argon2_parallelism": 1,
        "job_republish_after_seconds": 2.0,
        "job_lease_seconds": 4.0,
        "relay_interval_seconds": 1.0,
        "event_relay_after_seconds": 1.0,
        "webhook_retry_scale": 0.002,
        "notification_retry_scale": 0.002,
    },
    "production": {},
}

#: The environment ``Settings`` reads; ``Settings.from_env(mapping)`` swaps in a mapping for one
#: construction (tests build many apps side by side from dictionaries, never from os.environ).
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("settings_environ", default=None)

#: pydantic error types, said the way an operator reads them.
_ERROR_SENTENCES = {
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false (1/0, yes/no, on/off)",
}


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (os.environ unless told)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        return parse_env_vars(
            os.environ if environ is None else environ,
            self.case_sensitive,
            self.env_ignore_empty,
            self.env_parse_none_str,
        )


def default_longpoll_cap(web_threads: int) -> int:
    """``LONGPOLL_MAX_PER_PROCESS`` unless set: the threads minus a reserve of a quarter (at least 4)."""
    return max(1, web_threads - max(4, web_threads // 4))


class Settings(BaseSettings):
    """Every setting once: its type and (production) default here, profile deviations above.

    Each field is read from the upper-cased field name (``SESSION_IDLE_SECONDS``) unless an
    alias says otherwise; an empty variable counts as unset. Construction refuses unusable
    values with a ``ConfigurationError`` naming the variable.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=False,
        env_ignore_empty=True,
        populate_by_name=True,
        extra="ignore",
    )

    env: str = Field("development", validation_alias="APP_ENV")
    #: Development falls back to the embedded servers' URLs; test and production have none.
    database_url: str = ""
    redis_url: str = ""
    #: The Celery broker; ``REDIS_URL`` unless set.
    broker_url: str = Field("", validation_alias="CELERY_BROKER_URL")
    secret_key: str = Field("", repr=False)
    encryption_keys: str = Field("", repr=False)
    blind_index_key: str = Field("", repr=False)

    log_level: str = "INFO"
    max_content_length: int = 1024 * 1024
    proxy_fix_hops: int = 0
    #: gunicorn's threads per process (config/gunicorn.py reads the same variable).
    web_threads: int = 16

    jwt_issuer: str = "estacionate"
    jwt_audience: str = "estacionate-api"
    session_idle_seconds: int = 3600
    session_absolute_seconds: int = 12 * 3600

    max_sessions_per_user: int = 5
    #: Lifetime of the short ``mfa_token`` handed out between password and second factor.
    mfa_token_seconds: int = 300
    mfa_max_attempts: int = 5
    totp_issuer: str = "Estacionate"

    #: Brute-force guard: after ``login_lock_threshold`` consecutive failures an account is locked
    #: for ``login_lock_base_seconds``, doubling with every further failure up to the maximum.
    login_lock_threshold: int = 5
    login_lock_base_seconds: int = 60
    login_lock_max_seconds: int = 900
    #: Wrong second-factor codes per account (across every mfa_token) that lock it the same way.
    mfa_lock_threshold: int = 10

    #: flask-limiter limits (per IP for the auth endpoints, per user elsewhere).
    rate_limit_auth: str = "20/minute"
    rate_limit_register: str = "10/minute"
    rate_limit_default: str = "600/minute"

    #: argon2-cffi's recommended cost.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    #: Password hashes computed at once per process; a request finding none free answers 503.
    password_hash_concurrency: int = 2

    #: A queued job whose message has not been consumed after this long is published again.
    job_republish_after_seconds: float = 60.0
    #: A running job's lease: renewed every third of it while its worker lives (a heartbeat in
    #: the worker process, and every progress commit), so a job whose worker died is taken over
    #: within about this long, whatever its time limit.
    job_lease_seconds: float = 60.0
    job_max_attempts: int = 5
    #: Queued or running jobs one user may have; beyond it submitting answers 429 (system jobs exempt).
    job_max_unfinished_per_user: int = 100
    #: The relay fails a job it has published this many times without any worker claiming it while
    #: its queue is empty (a job type no worker knows); re-publishes back off from
    #: JOB_REPUBLISH_AFTER_SECONDS up to 16x.
    job_max_dispatches: int = 10
    #: Finished jobs (and their webhook deliveries) are purged this long after they finished.
    job_retention_days: int = 30
    relay_interval_seconds: float = 5.0
    #: The domain-event bus (app/events/dispatch.py): ``celery`` (durable subscribers as Celery
    #: tasks on any worker) or ``inprocess`` (they run synchronously after commit; unit tests).
    event_bus: Literal["celery", "inprocess"] = "celery"
    #: The relay hands over events still unpublished this long after they occurred (their
    #: after-commit hand-over failed or the process died), and re-sends deliveries with no receipt.
    event_relay_after_seconds: float = 5.0
    #: Events (and their receipts) are purged this long after they occurred (the catch-up API's window).
    event_retention_days: int = 30
    #: People anonymized per committed batch of a ``gdpr.anonymize`` job (progress after each).
    anonymization_batch_size: int = Field(default=200, ge=1, le=5000)
    #: Personal data kept for the platform's own records (visitor data of ended bookings, plates
    #: seen at the gate, notification destinations) is scrubbed this long after (the nightly
    #: ``gdpr.retention`` task). ``gdpr.export`` results are purged ``EXPORT_RETENTION_DAYS`` after.
    personal_data_retention_months: int = Field(default=24, ge=1)
    export_retention_days: int = Field(default=7, ge=1)
    celery_visibility_timeout_seconds: int = 2 * 3600

    #: Total wall-clock budget of one callback attempt: resolving, connecting, TLS, sending and
    #: reading the answer. Below the delivery task's soft time limit (60 s), so a slow receiver
    #: costs one failed attempt, never a worker stuck until Celery kills the task.
    webhook_deadline_seconds: float = 15.0
    #: PEM file of the certificate authorities trusted for outbound HTTPS; empty: certifi's bundle.
    outbound_ca_bundle: str = ""
    #: Multiplies the webhook retry schedule; tests shrink a day of backoff into seconds.
    webhook_retry_scale: float = 1.0
    allow_loopback_callbacks: bool = False

    idempotency_ttl_seconds: int = 24 * 3600

    #: WhatsApp through Twilio (API.md "Notifications (WhatsApp)"). Without an account sid,
    #: development and test only record messages.
    twilio_account_sid: str = ""
    twilio_auth_token: str = Field("", repr=False)
    twilio_whatsapp_from: str = ""
    twilio_api_base: str = TWILIO_DEFAULT_API_BASE
    #: Where Twilio reaches this API: status callbacks go to, and are signed over, this + path.
    public_base_url: str = ""
    #: ``TWILIO_CONTENT_SIDS='{"booking_confirmed": "HX..."}'``: approved WhatsApp templates by name.
    twilio_content_sids: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    #: Multiplies the WhatsApp delivery policy's backoff (app/domain/notifications.py); tests shrink
    #: minutes of retries into milliseconds.
    notification_retry_scale: float = 1.0
    #: Bearer token a Prometheus scrape must present; without one ``/metrics`` is open in
    #: development and test and absent (404) in production.
    metrics_token: str = Field("", repr=False)
    #: Every statement of the API and the workers is cancelled after this long (0: never);
    #: ``flask db upgrade`` turns it off for its own connection.
    db_statement_timeout_ms: int = 15000
    #: Concurrent ``GET /v1/jobs/{id}?wait=`` per user (all processes) and per API process; a
    #: long-poll over either cap answers at once with the current document. The per-process cap
    #: defaults to ``web_threads`` minus a reserve (a quarter of them, at least 4) that long-polls
    #: never take, for the short requests (``/healthz``, POSTs: milliseconds each): 12 of 16.
    #: (Half, 8 of 16, capped 3-6 % of the bench's polls, and each capped one waits its
    #: ``Retry-After: 1``: that second was the bookings p99; bench/README.md "Issue 15".)
    longpoll_max_per_user: int = 4
    longpoll_max_per_process: int = Field(default_factory=lambda data: default_longpoll_cap(data.get("web_threads", 0)))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment: no ``.env`` file, no secrets directory."""
        return init_settings, _EnvironSource(settings_cls)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of ``env`` (default ``os.environ``), or a ``ConfigurationError``."""
        token = _ENVIRON.set(env)
        try:
            return cls()
        except ValidationError as exc:
            # A default derived from a field that failed says nothing of its own.
            errors = [e for e in exc.errors() if e["type"] != "default_factory_not_called"]
            raise ConfigurationError([_sentence(error) for error in errors]) from None
        finally:
            _ENVIRON.reset(token)

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        """Fill what the environment left unset with the profile's defaults."""
        if not isinstance(data, dict):
            return data
        values = dict(data)
        profile = str(values.pop("APP_ENV", values.pop("env", "development"))).strip().lower()
        if profile not in PROFILES:
            raise ValueError(f"APP_ENV must be one of {', '.join(PROFILES)}, got {profile!r}")
        values["env"] = profile
        for name, default in PROFILE_DEFAULTS[profile].items():
            values.setdefault(name, default)
        if profile == "development":
            values.setdefault("database_url", DEV_DATABASE_URL)
            values.setdefault("redis_url", DEV_REDIS_URL)
        broker = values.pop("CELERY_BROKER_URL", None) or values.get("broker_url")
        values["broker_url"] = broker or values.get("redis_url", "")
        return values

    @field_validator("log_level", mode="after")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("twilio_account_sid", "twilio_auth_token", "twilio_whatsapp_from", mode="after")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("twilio_api_base", "public_base_url", mode="after")
    @classmethod
    def _base_url(cls, value: str) -> str:
        """Trailing slashes go, so ``PUBLIC_BASE_URL`` + path is exactly the URL Twilio signs."""
        return value.strip().rstrip("/")

    @field_validator("twilio_content_sids", mode="before")
    @classmethod
    def _content_sids(cls, value: Any) -> Any:
        if isinstance(value, str):
            raw = value.strip()
            try:
                value = json.loads(raw) if raw else {}
            except ValueError:
                value = None
        if not isinstance(value, dict) or not all(isinstance(v, str) and v.strip() for v in value.values()):
            raise ValueError("TWILIO_CONTENT_SIDS must be a JSON object of template name to ContentSid")
        return {str(k): v.strip() for k, v in value.items()}

    @model_validator(mode="after")
    def _refuse(self) -> Settings:
        """Refuse unusable settings in every profile, and development values in production."""
        problems = self._problems()
        if problems:
            raise ConfigurationError(problems)
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def _problems(self) -> list[str]:
        problems: list[str] = []
        for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEYS", "BLIND_INDEX_KEY"):
            if not getattr(self, name.lower()):
                hint = " (run `make run`, which generates development keys)" if not self.is_production else ""
                problems.append(f"{name} is not set{hint}")
        if self.encryption_keys:
            try:
                parse_keyring_spec(self.encryption_keys)
            except ValueError as exc:
                problems.append(f"ENCRYPTION_KEYS is invalid: {exc}")
        if self.blind_index_key:
            try:
                if len(_b64decode(self.blind_index_key.removeprefix(DEV_MARKER + ":"))) < 32:
                    problems.append("BLIND_INDEX_KEY must decode to at least 32 bytes")
            except ValueError:
                problems.append("BLIND_INDEX_KEY must be base64")
        if self.secret_key and len(self.secret_key) < 32:
            problems.append("SECRET_KEY must be at least 32 characters")
        if not 0 < self.webhook_deadline_seconds <= MAX_WEBHOOK_DEADLINE_SECONDS:
            problems.append(f"WEBHOOK_DEADLINE_SECONDS must be above 0 and at most {MAX_WEBHOOK_DEADLINE_SECONDS:g}")
        problems.extend(self._twilio_problems())
        if self.password_hash_concurrency < 1:
            problems.append("PASSWORD_HASH_CONCURRENCY must be at least 1")
        if self.login_lock_threshold < 1 or self.mfa_lock_threshold < 1:
            problems.append("LOGIN_LOCK_THRESHOLD and MFA_LOCK_THRESHOLD must be at least 1")
        if self.db_statement_timeout_ms < 0:
            problems.append("DB_STATEMENT_TIMEOUT_MS must be 0 (off) or a positive number of milliseconds")
        if self.longpoll_max_per_user < 0 or self.longpoll_max_per_process < 0:
            problems.append("LONGPOLL_MAX_PER_USER and LONGPOLL_MAX_PER_PROCESS must not be negative")
        if self.job_lease_seconds <= 0:
            problems.append("JOB_LEASE_SECONDS must be positive")
        for name in ("JOB_MAX_UNFINISHED_PER_USER", "JOB_MAX_DISPATCHES", "JOB_RETENTION_DAYS"):
            if getattr(self, name.lower()) < 1:
                problems.append(f"{name} must be at least 1")
        if self.is_production:
            problems.extend(self._development_values())
            if self.allow_loopback_callbacks:
                problems.append("ALLOW_LOOPBACK_CALLBACKS must be off in production")
        return problems

    def _twilio_problems(self) -> list[str]:
        """Malformed Twilio values in every profile; missing ones when messages must go to Twilio.

        Messages go to Twilio whenever ``TWILIO_ACCOUNT_SID`` is set, and production always sends
        them (a recording backend there would swallow every reset code): then the token, the
        sender and ``PUBLIC_BASE_URL`` (the status callbacks' address) must all be set, reported
        as one sentence.
        """
        found: list[str] = []
        if self.twilio_account_sid or self.is_production:
            missing = [
                name
                for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_FROM", "PUBLIC_BASE_URL")
                if not getattr(self, name.lower())
            ]
            if missing:
                why = "production sends WhatsApp through Twilio" if self.is_production else "TWILIO_ACCOUNT_SID is set"
                found.append(f"{why}, so {', '.join(missing)} must be set too")
        if self.notification_retry_scale <= 0:
            found.append("NOTIFICATION_RETRY_SCALE must be positive")
        for name in ("TWILIO_API_BASE", "PUBLIC_BASE_URL"):
            value = getattr(self, name.lower())
            if value and not _is_http_url(value):
                found.append(f"{name} must be an http(s) URL")
        if self.twilio_whatsapp_from and not _WHATSAPP_ADDRESS.match(self.twilio_whatsapp_from):
            found.append("TWILIO_WHATSAPP_FROM must look like whatsapp:+14155238886")
        return found

    def _development_values(self) -> list[str]:
        found: list[str] = []
        if self.secret_key.startswith(DEV_MARKER) or self.secret_key.lower() in PLACEHOLDERS:
            found.append("SECRET_KEY is a development value")
        if self.blind_index_key.startswith(DEV_MARKER) or self.blind_index_key.lower() in PLACEHOLDERS:
            found.append("BLIND_INDEX_KEY is a development value")
        if self.encryption_keys:
            try:
                if any(key_id.startswith(DEV_MARKER) for key_id, _ in parse_keyring_spec(self.encryption_keys)):
                    found.append("ENCRYPTION_KEYS contains a development key")
            except ValueError:
                pass  # already reported as invalid
        if self.metrics_token and (
            self.metrics_token.lower() in PLACEHOLDERS or len(self.metrics_token) < MIN_METRICS_TOKEN_LENGTH
        ):
            found.append(f"METRICS_TOKEN must be a random value of at least {MIN_METRICS_TOKEN_LENGTH} characters")
        if self.database_url == DEV_DATABASE_URL:
            found.append("DATABASE_URL is the development default")
        if self.redis_url == DEV_REDIS_URL:
            found.append("REDIS_URL is the development default")
        return found

    @property
    def sqlalchemy_url(self) -> str:
        """``DATABASE_URL`` with the psycopg2 driver named (SQLAlchemy 2.1 defaults to psycopg 3)."""
        for prefix in ("postgresql://", "postgres://"):
            if self.database_url.startswith(prefix):
                return "postgresql+psycopg2://" + self.database_url[len(prefix) :]
        return self.database_url

    def blind_index_key_bytes(self) -> bytes:
        return _b64decode(self.blind_index_key.removeprefix(DEV_MARKER + ":"))

    def as_public_dict(self) -> dict[str, object]:
        """Settings safe to log: everything but secrets and URL credentials."""
        hidden = {"secret_key", "encryption_keys", "blind_index_key", "twilio_auth_token", "metrics_token"}
        out: dict[str, object] = {}
        for name in type(self).model_fields:
            if name in hidden:
                continue
            value = getattr(self, name)
            if isinstance(value, str) and "://" in value:
                value = re.sub(r"//[^@/]*@", "//***@", value)
            out[name] = value
        return out


def _sentence(error: ErrorDetails) -> str:
    """One pydantic error as an operator reads it: the variable's name, then what is wrong."""
    if error["type"] == "value_error":
        return str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
    name = str(error["loc"][0]).upper() if error["loc"] else "a setting"
    return f"{name} {_ERROR_SENTENCES.get(error['type'], 'is invalid: ' + error['msg'])}"
