"""idempotency records are written in the request's own transaction

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Same-key requests are serialized by a transaction-scoped advisory lock now, and a record is
written only together with the change it answers (app/services/idempotency.py). The in-flight
marker goes: ``state`` (with its check) and ``locked_at`` are dropped, and a record always has
its response status. Markers left by requests still running on the old code are deleted (their
clients retry with the same key and run again, as after a crash under the old design).
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DELETE FROM idempotency_keys WHERE state <> 'completed' OR response_status IS NULL")
    op.drop_constraint(op.f('ck_idempotency_keys_state'), 'idempotency_keys', type_='check')
    op.drop_column('idempotency_keys', 'state')
    op.drop_column('idempotency_keys', 'locked_at')
    op.alter_column('idempotency_keys', 'response_status', existing_type=sa.Integer(), nullable=False)


def downgrade():
    op.alter_column('idempotency_keys', 'response_status', existing_type=sa.Integer(), nullable=True)
    op.add_column(
        'idempotency_keys',
        sa.Column('locked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    )
    op.add_column('idempotency_keys', sa.Column('state', sa.Text(), server_default='completed', nullable=False))
    op.create_check_constraint(
        op.f('ck_idempotency_keys_state'), 'idempotency_keys', "state IN ('in_flight', 'completed')"
    )
    op.alter_column('idempotency_keys', 'locked_at', server_default=None)
    op.alter_column('idempotency_keys', 'state', server_default=None)
