"""Estacionate: the application factory.

``create_app`` is the only place that wires extensions, blueprints, Celery and CLI commands.
Everything else reaches them through ``current_app`` accessors.
"""

from __future__ import annotations

import os
from typing import Any

import redis
from flask_openapi3 import Info, OpenAPI
from werkzeug.middleware.proxy_fix import ProxyFix

from config.settings import Settings


def create_app(settings: Settings | None = None) -> OpenAPI:
    settings = settings or Settings.from_env()

    # models registers every table; subscribers registers every durable subscriber
    from app import api, cli, jobs, models, runtime, subscribers, unit_of_work  # noqa: F401
    from app.api import edge
    from app.api.errors import validation_problem
    from app.api.schemas import ProblemDocument
    from app.events import RedisEventBus
    from app.events import dispatch as event_dispatch
    from app.extensions import db, migrate
    from app.jobs import longpoll
    from app.jobs.broker import celery_init_app
    from app.notifications import init_app as notifications_init_app
    from app.observability import metrics
    from app.security import crypto, lockout, mfa_challenges, rate_limits
    from app.security.blind_index import BlindIndexer
    from app.security.keyring import Keyring
    from app.security.passwords import EXTENSION_KEY as PASSWORDS_KEY
    from app.security.passwords import Passwords
    from app.security.sessions import EXTENSION_KEY as SESSIONS_KEY
    from app.security.sessions import SessionStore
    from app.security.tokens import EXTENSION_KEY as TOKENS_KEY
    from app.security.tokens import TokenCodec

    app = OpenAPI(
        __name__,
        static_folder=None,
        info=Info(title="Estacionate API", version="1.0.0"),
        security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        doc_ui=False,
        validation_error_status=422,
        validation_error_model=ProblemDocument,
        validation_error_callback=validation_problem,
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        SQLALCHEMY_DATABASE_URI=settings.sqlalchemy_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings),
        JSON_SORT_KEYS=False,
        TESTING=settings.env == "test",
    )
    if settings.proxy_fix_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_fix_hops, x_proto=settings.proxy_fix_hops
        )

    runtime.init_app(app, settings)
    crypto.init_app(
        app,
        crypto.Crypto(Keyring.from_spec(settings.encryption_keys), BlindIndexer(settings.blind_index_key_bytes())),
    )
    app.extensions[PASSWORDS_KEY] = Passwords(
        settings.argon2_time_cost,
        settings.argon2_memory_kib,
        settings.argon2_parallelism,
        concurrency=settings.password_hash_concurrency,
    )
    app.extensions[TOKENS_KEY] = TokenCodec(settings.secret_key, settings.jwt_issuer, settings.jwt_audience)
    redis_client = app.extensions[runtime.REDIS_KEY]
    app.extensions[SESSIONS_KEY] = SessionStore(
        redis_client, settings.session_idle_seconds, settings.session_absolute_seconds, settings.max_sessions_per_user
    )
    app.extensions[lockout.EXTENSION_KEY] = lockout.LoginGuard(
        redis_client,
        settings.login_lock_threshold,
        settings.login_lock_base_seconds,
        settings.login_lock_max_seconds,
        mfa_threshold=settings.mfa_lock_threshold,
    )
    app.extensions[mfa_challenges.EXTENSION_KEY] = mfa_challenges.ChallengeStore(
        redis_client, settings.mfa_token_seconds, settings.mfa_max_attempts
    )
    listener = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=None,
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=30,
    )
    wakeups = RedisEventBus(redis_client, listener, patterns=("job:*", "event:*"))
    app.extensions["estacionate.events"] = wakeups
    app.extensions[event_dispatch.EXTENSION_KEY] = event_dispatch.build(settings.event_bus, wakeups)
    app.extensions[longpoll.EXTENSION_KEY] = longpoll.LongPolls(
        redis_client, settings.longpoll_max_per_user, settings.longpoll_max_per_process
    )

    db.init_app(app)
    migrate.init_app(app, db, directory=_migrations_dir(), render_as_batch=False)
    celery_init_app(app, settings)
    notifications_init_app(app, settings)

    edge.init_app(app)
    metrics.init_app(app, settings, job_snapshot=jobs.metrics_snapshot)
    api.init_app(app)
    rate_limits.init_app(app, settings)
    cli.init_app(app)
    unit_of_work.wrap_views(app)  # last: every view, whoever registered it, runs in one unit of work
    return app


#: Bounds on every wait for PostgreSQL, so an outage is a prompt 503 (app/api/errors.py), never a hang.
DB_CONNECT_TIMEOUT_SECONDS = 3
DB_POOL_TIMEOUT_SECONDS = 5


def engine_options(settings: Settings) -> dict[str, Any]:
    """SQLAlchemy engine options of the API and the workers.

    One connection per gunicorn thread (16), a few spare; a request that finds none within
    ``pool_timeout`` is a 503. No pre-ping: it would add a SELECT 1 to every checkout (several per
    request); a connection broken by a database restart fails one statement (a 503), SQLAlchemy then
    invalidates the pool, and recycling bounds a connection's age. libpq bounds the connect, and
    TCP keepalives plus ``tcp_user_timeout`` notice a peer that vanished without closing. The server
    cancels any statement after ``DB_STATEMENT_TIMEOUT_MS`` (set per connection at connect time, so
    it costs no round trip); ``flask db upgrade`` turns it off for itself (migrations/env.py).
    """
    connect_args: dict[str, Any] = {
        "connect_timeout": DB_CONNECT_TIMEOUT_SECONDS,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
    }
    if settings.db_statement_timeout_ms:
        connect_args["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    return {
        "pool_size": 16,
        "max_overflow": 8,
        "pool_recycle": 1800,
        "pool_timeout": DB_POOL_TIMEOUT_SECONDS,
        "connect_args": connect_args,
    }


def _migrations_dir() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")
