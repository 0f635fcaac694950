"""Every schema change is an Alembic revision, and the models never drift from them."""

import subprocess

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.extensions import db
from app.models.types import alembic_render_item
from tests.conftest import BASE_DATABASE_URL, stack_env
from tests.support.stack import BIN, ROOT, create_database, drop_database


def test_autogenerate_finds_nothing_to_do(stack):
    with stack.context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_item": alembic_render_item}
        )
        assert compare_metadata(context, db.metadata) == []


def test_migrations_go_down_to_nothing_and_up_again(keys):
    name = "estacionate_test_migration_cycle"
    create_database(BASE_DATABASE_URL, name)
    env = stack_env(name, 15, keys)
    flask = [str(BIN / "flask"), "--app", "app", "db"]
    try:
        for step in (["upgrade"], ["downgrade", "base"], ["upgrade"], ["check"]):
            result = subprocess.run([*flask, *step], env=env, cwd=ROOT, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr[-2000:]
    finally:
        drop_database(BASE_DATABASE_URL, name)
