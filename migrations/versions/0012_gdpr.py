"""privacy: anonymized users, scrubbable identity and visitor fields, batch-job checkpoints

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

Anonymization (issue 14) clears a resident's RUT and a booking's plate, so those columns (and
their blind indexes) become nullable: a cleared blind index frees the RUT for a new registration
and leaves nothing a plate lookup at the gate could match. ``users.anonymized_at`` marks an
anonymized account (a re-run skips it); ``anonymized_by_job`` names the job that did it, so a
bulk job resumed after a crash counts each user exactly once. ``jobs.checkpoint`` holds a batch
job's resume point (ids and counts only, never personal data), committed with each batch.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('users', sa.Column('anonymized_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('anonymized_by_job', sa.Uuid(), nullable=True))
    op.create_index(
        'ix_users_anonymized_by_job',
        'users',
        ['anonymized_by_job'],
        unique=False,
        postgresql_where=sa.text('anonymized_by_job IS NOT NULL'),
    )
    op.add_column('jobs', sa.Column('checkpoint', postgresql.JSONB(), nullable=True))
    op.alter_column('residents', 'rut_encrypted', existing_type=sa.LargeBinary(), nullable=True)
    op.alter_column('residents', 'rut_bidx', existing_type=sa.LargeBinary(), nullable=True)
    op.alter_column('bookings', 'vehicle_plate_encrypted', existing_type=sa.LargeBinary(), nullable=True)
    op.alter_column('bookings', 'plate_bidx', existing_type=sa.LargeBinary(), nullable=True)
    # Retention walks bookings by when they ended.
    op.create_index('ix_bookings_block_end', 'bookings', ['block_end'], unique=False)


def downgrade():
    op.drop_index('ix_bookings_block_end', table_name='bookings')
    # Fails while anonymized rows exist: their cleared values cannot be restored.
    op.alter_column('bookings', 'plate_bidx', existing_type=sa.LargeBinary(), nullable=False)
    op.alter_column('bookings', 'vehicle_plate_encrypted', existing_type=sa.LargeBinary(), nullable=False)
    op.alter_column('residents', 'rut_bidx', existing_type=sa.LargeBinary(), nullable=False)
    op.alter_column('residents', 'rut_encrypted', existing_type=sa.LargeBinary(), nullable=False)
    op.drop_column('jobs', 'checkpoint')
    op.drop_index(
        'ix_users_anonymized_by_job', table_name='users', postgresql_where=sa.text('anonymized_by_job IS NOT NULL')
    )
    op.drop_column('users', 'anonymized_by_job')
    op.drop_column('users', 'anonymized_at')
