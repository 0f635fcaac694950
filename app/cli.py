"""Operations CLI (``flask --app app ...``): create-admin, seed-demo, keys, pricing, availability, gdpr.

Each command is a use case at its own edge: it runs in ``unit_of_work()`` (a job it submits is
published once that commits); following a job reads it in a fresh short unit of work per poll.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import click
from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.jobs import submit
from app.models import Building, Job, JobStatus, PlatformRole
from app.problems import Problem
from app.runtime import current_settings
from app.services import audit, demo, notifications, users
from app.unit_of_work import unit_of_work

#: Why ``--password`` is refused rather than merely discouraged.
REFUSED_ARGUMENT = (
    "--password is refused: a password on the command line stays in the shell history and is visible to "
    "every user in `ps`; type it at the prompt, or pipe it on stdin (one line)."
)


def read_password() -> str:
    """The new password: one line from stdin when it is not a terminal, else typed twice, hidden."""
    stdin = click.get_text_stream("stdin")
    if not stdin.isatty():
        password = stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on stdin: pipe one line holding it, or run on a terminal")
        return password
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.command("create-admin")
@click.option("--email", required=True)
@click.option("--password", "password_argument", default=None, hidden=True, help="Refused: see the error.")
def create_admin(email: str, password_argument: str | None) -> None:
    """Create a platform_admin; the password (at least 10 characters) is prompted for, or read from stdin."""
    if password_argument is not None:
        raise click.ClickException(REFUSED_ARGUMENT)
    password = read_password()
    try:
        with unit_of_work():
            user_id = users.create_user(
                email, password, audit.Actor.system(), platform_role=PlatformRole.PLATFORM_ADMIN
            ).id
    except Problem as problem:
        raise click.ClickException(problem.detail) from problem
    click.echo(f"created platform_admin {user_id}")


@click.command("seed-demo")
def seed_demo() -> None:
    """Create the demo accounts and two operators (idempotent; refused in production); print the logins."""
    if current_settings().is_production:
        raise click.ClickException("seed-demo is for development only")
    with unit_of_work():
        logins = demo.seed()
    for login in logins:
        click.echo(f"  demo login: {login.email} / {login.password} ({login.role})")


@dataclass(frozen=True)
class Finished:
    """How a followed job ended."""

    status: str
    result: Any
    error: Any


def follow_job(job_id: str, label: str) -> Finished:
    """Show a job's progress bar until it ends (the job runs on the workers, not here)."""
    ident = uuid.UUID(job_id)
    shown = 0
    with click.progressbar(length=1, label=label, show_pos=True) as bar:
        while True:
            with unit_of_work():  # a fresh read per poll: never one transaction held while waiting
                job = db.session.get(Job, ident, populate_existing=True)
                assert job is not None
                done, total = job.progress_done or 0, job.progress_total
                outcome = Finished(job.status, job.result, job.error)
            if total:
                bar.length = total
                bar.update(done - shown)
                shown = done
            if JobStatus(outcome.status).is_terminal:
                return outcome
            time.sleep(0.5)


@click.group("keys")
def keys() -> None:
    """PII encryption keys."""


@keys.command("rotate")
@click.option("--wait/--no-wait", default=True, help="Follow the job's progress until it ends.")
def rotate_keys(wait: bool) -> None:
    """Re-encrypt every value whose key is not the first of ENCRYPTION_KEYS (a job on the workers)."""
    with unit_of_work():
        accepted = submit("keys.rotate", {}, audit.Actor.system())
    click.echo(f"job {accepted['job_id']} queued")
    if not wait:
        return
    job = follow_job(accepted["job_id"], "re-encrypting")
    if job.status != JobStatus.SUCCEEDED:
        raise click.ClickException(f"rotation failed: {(job.error or {}).get('detail', 'unknown error')}")
    click.echo(f"rotated {job.result['rotated']} values; every value is now under key {job.result['key_id']}")


@click.group("pricing")
def pricing() -> None:
    """Yield management."""


@pricing.command("recalculate")
@click.option("--building", "building_id", type=click.UUID, default=None, help="One building (default: all).")
@click.option("--wait/--no-wait", default=True, help="Follow the job's progress until it ends.")
def recalculate_prices(building_id: uuid.UUID | None, wait: bool) -> None:
    """Refresh the stored price of every future available block (a job on the workers)."""
    payload = {"building_ids": [str(building_id)] if building_id else []}
    with unit_of_work():
        accepted = submit("pricing.recalculate", payload, audit.Actor.system())
    click.echo(f"job {accepted['job_id']} queued")
    if not wait:
        return
    job = follow_job(accepted["job_id"], "recalculating")
    if job.status != JobStatus.SUCCEEDED:
        raise click.ClickException(f"recalculation failed: {(job.error or {}).get('detail', 'unknown error')}")
    click.echo(f"{job.result['blocks_updated']} blocks updated")


@click.group("availability")
def availability() -> None:
    """Sellable blocks."""


@availability.command("generate")
@click.option("--building", "building_id", type=click.UUID, default=None, help="One building (default: all active).")
@click.option("--wait/--no-wait", default=True, help="Follow each job's progress until it ends.")
def generate_availability(building_id: uuid.UUID | None, wait: bool) -> None:
    """Generate the next 30 days of blocks (one job per building, on the workers), as the daily run does."""
    with unit_of_work():
        if building_id is None:
            ids = list(db.session.execute(select(Building.id).where(Building.is_active)).scalars())
        else:
            ids = [building_id]
        accepted = [submit("availability.generate", {"building_id": str(b)}, audit.Actor.system()) for b in ids]
    click.echo(f"{len(accepted)} jobs queued")
    if not wait:
        return
    created = 0
    for number, job in enumerate(accepted, start=1):
        outcome = follow_job(job["job_id"], f"building {number}/{len(accepted)}")
        if outcome.status != JobStatus.SUCCEEDED:
            raise click.ClickException(f"generation failed: {(outcome.error or {}).get('detail', 'unknown error')}")
        created += outcome.result["created"]
    click.echo(f"{created} blocks created")


@click.group("gdpr")
def gdpr() -> None:
    """Personal data: anonymization (Law 21.719)."""


@gdpr.command("anonymize")
@click.option("--user-id", "user_ids", type=click.UUID, multiple=True, help="A user to anonymize (repeatable).")
@click.option(
    "--inactive-since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Residents with no login since this date (YYYY-MM-DD) and no booking to come.",
)
@click.option("--wait/--no-wait", default=True, help="Follow the job's progress until it ends.")
def anonymize(user_ids: tuple[uuid.UUID, ...], inactive_since: Any, wait: bool) -> None:
    """Anonymize users for good (a job on the workers), showing its progress bar."""
    if bool(user_ids) == (inactive_since is not None):
        raise click.UsageError("give --user-id (one or more) or --inactive-since, not both")
    if user_ids:
        payload: dict[str, Any] = {"user_ids": sorted({str(u) for u in user_ids})}
    else:
        payload = {"inactive_since": inactive_since.date().isoformat()}
    with unit_of_work():
        accepted = submit("gdpr.anonymize", payload, audit.Actor.system())
    click.echo(f"job {accepted['job_id']} queued")
    if not wait:
        return
    job = follow_job(accepted["job_id"], "anonymizing")
    if job.status != JobStatus.SUCCEEDED:
        raise click.ClickException(f"anonymization failed: {(job.error or {}).get('detail', 'unknown error')}")
    click.echo(f"anonymized {job.result['anonymized']}, skipped {job.result['skipped']} (already anonymized)")


@click.group("notifications")
def notifications_group() -> None:
    """WhatsApp messages (local debugging)."""


@notifications_group.command("show")
@click.option("--last", "last", default=10, show_default=True, type=click.IntRange(1, 1000))
def show_notifications(last: int) -> None:
    """Print the newest messages: time, template, status, masked destination, and the text while held."""
    with unit_of_work():
        for row in notifications.recent(last):
            code = f" error {row.error_code}" if row.error_code is not None else ""
            sid = row.provider_sid or "-"
            click.echo(
                f"{row.created_at:%Y-%m-%d %H:%M:%S} {row.id} {row.template} {row.status}{code} "
                f"to {notifications.masked(row.destination)} sid {sid} attempts {row.attempts}"
            )
            text = notifications.preview(row)
            if text is not None:
                click.echo(f"    {text}")


def init_app(app: Flask) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(seed_demo)
    app.cli.add_command(keys)
    app.cli.add_command(pricing)
    app.cli.add_command(availability)
    app.cli.add_command(gdpr)
    app.cli.add_command(notifications_group)
