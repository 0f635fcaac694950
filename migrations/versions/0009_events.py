"""the transactional outbox of domain events and the durable subscribers' receipts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

``events`` is written in the same transaction as the change it reports (app/events/record.py);
``published_at`` is set once the event was handed to the bus, and the relay re-hands any row
still unpublished (partial index ``ix_events_unpublished``). ``seq`` is the catch-up order of
``GET /v1/organizations/{id}/events?after=``. ``event_receipts`` is the exactly-once guard of the
durable subscribers: a receipt is inserted in the same transaction as the subscriber's effect.
Grants for the app role come from 0006's default privileges.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'events',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column('type', sa.Text(), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('organization_id', sa.Uuid(), nullable=True),
        sa.Column('building_id', sa.Uuid(), nullable=True),
        sa.Column('aggregate_type', sa.Text(), nullable=False),
        sa.Column('aggregate_id', sa.Uuid(), nullable=False),
        sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
        sa.UniqueConstraint('seq', name=op.f('uq_events_seq')),
    )
    op.create_index('ix_events_organization_seq', 'events', ['organization_id', 'seq'], unique=False)
    op.create_index('ix_events_occurred_at', 'events', ['occurred_at'], unique=False)
    op.create_index(
        'ix_events_unpublished', 'events', ['seq'], unique=False, postgresql_where=sa.text('published_at IS NULL')
    )
    op.create_table(
        'event_receipts',
        sa.Column('subscriber', sa.Text(), nullable=False),
        sa.Column('event_id', sa.Uuid(), nullable=False),
        sa.Column('processed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(
            ['event_id'], ['events.id'], name=op.f('fk_event_receipts_event_id_events'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('subscriber', 'event_id', name=op.f('pk_event_receipts')),
    )
    op.create_index('ix_event_receipts_event_id', 'event_receipts', ['event_id'], unique=False)


def downgrade():
    op.drop_index('ix_event_receipts_event_id', table_name='event_receipts')
    op.drop_table('event_receipts')
    op.drop_index('ix_events_unpublished', table_name='events', postgresql_where=sa.text('published_at IS NULL'))
    op.drop_index('ix_events_occurred_at', table_name='events')
    op.drop_index('ix_events_organization_seq', table_name='events')
    op.drop_table('events')
