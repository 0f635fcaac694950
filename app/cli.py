"""Operations CLI (``flask --app app ...``): create-admin, seed-demo."""

from __future__ import annotations

import click
from flask import Flask

from app.models import PlatformRole
from app.problems import Problem
from app.runtime import current_settings
from app.services import audit, users

DEMO_ADMIN_EMAIL = "admin@demo.estacionate.cl"
DEMO_ADMIN_PASSWORD = "demo-admin-password"  # noqa: S105 (development demo only; refused in production)
DEMO_USER_EMAIL = "user@demo.estacionate.cl"
DEMO_USER_PASSWORD = "demo-user-password"  # noqa: S105 (development demo only)


@click.command("create-admin")
@click.option("--email", required=True)
@click.option("--password", required=True, help="At least 10 characters.")
def create_admin(email: str, password: str) -> None:
    """Create a platform_admin."""
    try:
        user = users.create_user(email, password, audit.Actor.system(), platform_role=PlatformRole.PLATFORM_ADMIN)
    except Problem as problem:
        raise click.ClickException(problem.detail) from problem
    click.echo(f"created platform_admin {user.id}")


@click.command("seed-demo")
def seed_demo() -> None:
    """Create the demo accounts (idempotent; refused in production) and print their logins."""
    if current_settings().is_production:
        raise click.ClickException("seed-demo is for development only")
    demo = [
        (DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, PlatformRole.PLATFORM_ADMIN),
        (DEMO_USER_EMAIL, DEMO_USER_PASSWORD, None),
    ]
    for email, password, role in demo:
        if users.find_by_email(email) is None:
            users.create_user(email, password, audit.Actor.system(), platform_role=role)
        click.echo(f"  demo login: {email} / {password}" + (f" ({role})" if role else ""))


def init_app(app: Flask) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(seed_demo)
