"""A login role for the application, made the way production makes one (see README "Deploying").

The migration creates the NOLOGIN group role ``estacionate_app`` and grants it what the app may do;
the API and workers log in as a member of it. The test servers trust every local connection, so a
role of our own is all it takes to connect as the app.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BASE_DATABASE_URL
from tests.support.stack import admin_connection

APP_GROUP = "estacionate_app"


def as_role(url: str, role: str) -> str:
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def app_role(stack) -> Iterator[str]:
    """A LOGIN role whose only privileges are those of the ``estacionate_app`` group."""
    name = f"estacionate_app_test_{os.getpid()}"
    conn = admin_connection(BASE_DATABASE_URL)
    with conn.cursor() as cur:
        cur.execute(f'DROP ROLE IF EXISTS "{name}"')
        cur.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE {APP_GROUP}')
    yield name
    with conn.cursor() as cur:
        cur.execute(f'DROP ROLE IF EXISTS "{name}"')
    conn.close()


def connect_as(stack, role: str):
    return psycopg2.connect(as_role(stack.settings.database_url, role))


def run_as(stack, role: str, query: str, params=None) -> list[tuple]:
    """One statement in its own transaction on a connection of ``role``."""
    conn = connect_as(stack, role)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()
