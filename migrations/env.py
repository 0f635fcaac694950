"""Alembic environment (Flask-Migrate): migrations run against the app's engine and metadata."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from app.models.types import alembic_render_item

config = context.config
# Keep the JSON logging of the process that runs us; only a bare `flask db` gets the ini's setup.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db


def migration_engine():
    """The app's database without its statement timeout.

    The app's engine cancels any statement after DB_STATEMENT_TIMEOUT_MS (set when a connection
    opens); that is for requests and jobs. A migration that rewrites a large table must never be cut
    off halfway, so migrations get an engine of their own with the timeout off from the first
    statement on (the driver's own start-up queries included).
    """
    app_engine = target_db.engine
    return create_engine(
        app_engine.url,
        poolclass=NullPool,
        connect_args={"connect_timeout": 10, "options": "-c statement_timeout=0"},
    )


def run_migrations_online() -> None:
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.update(compare_type=True, render_item=alembic_render_item)
    with migration_engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_db.metadata,
            **conf_args,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `flask db upgrade` against a database")
run_migrations_online()
