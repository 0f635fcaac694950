"""operator webhook endpoints and their deliveries

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

``webhook_endpoints``: an organization's receivers (URL and ``whsec_`` secret encrypted with the
keyring, the event types they subscribe to, ``failing_since`` for the 24 h disable rule).
``webhook_endpoint_deliveries``: one row per (endpoint, event), written with the
``operator_webhooks`` subscriber's receipt; retries live in ``next_attempt_at`` (partial index
for the relay). Both cascade: deleting an endpoint, or purging an event after 30 days, removes
its deliveries. Grants for the app role come from 0006's default privileges.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('organization_id', sa.Uuid(), nullable=False),
        sa.Column('url_encrypted', sa.LargeBinary(), nullable=False),
        sa.Column('event_types', postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('secret_encrypted', sa.LargeBinary(), nullable=False),
        sa.Column('status', sa.Text(), server_default='enabled', nullable=False),
        sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by', sa.Uuid(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("status IN ('enabled', 'disabled')", name=op.f('ck_webhook_endpoints_status')),
        sa.ForeignKeyConstraint(
            ['organization_id'],
            ['organizations.id'],
            name=op.f('fk_webhook_endpoints_organization_id_organizations'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['created_by'], ['users.id'], name=op.f('fk_webhook_endpoints_created_by_users'), ondelete='SET NULL'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints')),
    )
    op.create_index(
        'ix_webhook_endpoints_organization_id',
        'webhook_endpoints',
        ['organization_id', 'created_at', 'id'],
        unique=False,
    )
    op.create_table(
        'webhook_endpoint_deliveries',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('endpoint_id', sa.Uuid(), nullable=False),
        sa.Column('event_id', sa.Uuid(), nullable=False),
        sa.Column('status', sa.Text(), server_default='pending', nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'gone', 'failed')", name=op.f('ck_webhook_endpoint_deliveries_status')
        ),
        sa.ForeignKeyConstraint(
            ['endpoint_id'],
            ['webhook_endpoints.id'],
            name=op.f('fk_webhook_endpoint_deliveries_endpoint_id_webhook_endpoints'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['event_id'], ['events.id'], name=op.f('fk_webhook_endpoint_deliveries_event_id_events'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoint_deliveries')),
        sa.UniqueConstraint('endpoint_id', 'event_id', name=op.f('uq_webhook_endpoint_deliveries_endpoint_id')),
    )
    op.create_index(
        'ix_webhook_endpoint_deliveries_due',
        'webhook_endpoint_deliveries',
        ['next_attempt_at'],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        'ix_webhook_endpoint_deliveries_event_id', 'webhook_endpoint_deliveries', ['event_id'], unique=False
    )


def downgrade():
    op.drop_index('ix_webhook_endpoint_deliveries_event_id', table_name='webhook_endpoint_deliveries')
    op.drop_index(
        'ix_webhook_endpoint_deliveries_due',
        table_name='webhook_endpoint_deliveries',
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table('webhook_endpoint_deliveries')
    op.drop_index('ix_webhook_endpoints_organization_id', table_name='webhook_endpoints')
    op.drop_table('webhook_endpoints')
