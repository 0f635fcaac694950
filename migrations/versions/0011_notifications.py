"""WhatsApp notifications: the message log, preferences, opt-outs and password-reset codes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

``notifications`` holds one row per message (destination encrypted with a blind index, variables
encrypted, status, Twilio sid, error code, attempts, timestamps); the partial unique index on
``provider_sid`` is what a status callback finds its message by. ``notification_opt_outs`` keeps
the blind index of numbers that answered 21610/63014. ``password_reset_codes`` keeps one HMAC per
account. Grants for the app role come from 0006's default privileges.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'notifications',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=True),
        sa.Column('booking_id', sa.Uuid(), nullable=True),
        sa.Column('recipient', sa.Text(), nullable=False),
        sa.Column('channel', sa.Text(), server_default='whatsapp', nullable=False),
        sa.Column('template', sa.Text(), nullable=False),
        sa.Column('destination_encrypted', sa.LargeBinary(), nullable=True),
        sa.Column('destination_bidx', sa.LargeBinary(), nullable=True),
        sa.Column('variables_encrypted', sa.LargeBinary(), nullable=True),
        sa.Column('timezone', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('provider_sid', sa.Text(), nullable=True),
        sa.Column('error_code', sa.Integer(), nullable=True),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('sending_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'undelivered')",
            name=op.f('ck_notifications_status'),
        ),
        sa.CheckConstraint("recipient IN ('resident', 'visitor', 'account')", name=op.f('ck_notifications_recipient')),
        sa.CheckConstraint("channel = 'whatsapp'", name=op.f('ck_notifications_channel')),
        sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_notifications_booking_id_bookings')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    )
    op.create_index('ix_notifications_user_created', 'notifications', ['user_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_notifications_booking', 'notifications', ['booking_id'], unique=False)
    op.create_index('ix_notifications_destination', 'notifications', ['destination_bidx'], unique=False)
    op.create_index('ix_notifications_created', 'notifications', ['created_at'], unique=False)
    op.create_index(
        'uq_notifications_provider_sid',
        'notifications',
        ['provider_sid'],
        unique=True,
        postgresql_where=sa.text('provider_sid IS NOT NULL'),
    )
    op.create_table(
        'notification_preferences',
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('booking_updates', sa.Boolean(), server_default=sa.text('true'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_notification_preferences_user_id_users')
        ),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_preferences')),
    )
    op.create_table(
        'notification_opt_outs',
        sa.Column('destination_bidx', sa.LargeBinary(), nullable=False),
        sa.Column('error_code', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('destination_bidx', name=op.f('pk_notification_opt_outs')),
    )
    op.create_table(
        'password_reset_codes',
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('code_hash', sa.Text(), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('failed_attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('spent', sa.Boolean(), server_default=sa.text('false'), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_reset_codes_user_id_users')),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_password_reset_codes')),
    )


def downgrade():
    op.drop_table('password_reset_codes')
    op.drop_table('notification_opt_outs')
    op.drop_table('notification_preferences')
    op.drop_index(
        'uq_notifications_provider_sid', table_name='notifications', postgresql_where=sa.text('provider_sid IS NOT NULL')
    )
    op.drop_index('ix_notifications_created', table_name='notifications')
    op.drop_index('ix_notifications_destination', table_name='notifications')
    op.drop_index('ix_notifications_booking', table_name='notifications')
    op.drop_index('ix_notifications_user_created', table_name='notifications')
    op.drop_table('notifications')
