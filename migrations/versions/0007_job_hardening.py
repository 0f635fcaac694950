"""job hardening: dispatch counter, per-user quota index, purge indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

- ``jobs.dispatches``: publishes by the relay since the last claim (a job no worker can take is
  failed after JOB_MAX_DISPATCHES instead of being re-published forever). A constant default:
  no table rewrite.
- ``ix_jobs_owner_unfinished``: the submit statement counts a user's unfinished jobs through it.
- ``ix_jobs_finished``: the nightly purge finds jobs finished more than 30 days ago through it.
- ``ix_idempotency_keys_job_id``: deleting a job checks the idempotency foreign key through it.

The indexes are built CONCURRENTLY, so migrating a live database never blocks job writes.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('jobs', sa.Column('dispatches', sa.Integer(), server_default='0', nullable=False))
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_jobs_owner_unfinished', 'jobs', ['owner_user_id'], unique=False,
            postgresql_where=sa.text("status IN ('queued', 'running')"), postgresql_concurrently=True,
        )
        op.create_index(
            'ix_jobs_finished', 'jobs', ['finished_at'], unique=False,
            postgresql_where=sa.text("status IN ('succeeded', 'failed')"), postgresql_concurrently=True,
        )
        op.create_index(
            'ix_idempotency_keys_job_id', 'idempotency_keys', ['job_id'], unique=False,
            postgresql_where=sa.text('job_id IS NOT NULL'), postgresql_concurrently=True,
        )


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index('ix_idempotency_keys_job_id', table_name='idempotency_keys', postgresql_concurrently=True)
        op.drop_index('ix_jobs_finished', table_name='jobs', postgresql_concurrently=True)
        op.drop_index('ix_jobs_owner_unfinished', table_name='jobs', postgresql_concurrently=True)
    op.drop_column('jobs', 'dispatches')
