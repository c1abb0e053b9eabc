"""Webmail: server-side sessions and TOTP secrets.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("pending", sa.String(16), nullable=True),
        sa.Column("current_mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=True),
        sa.Column("client_address", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("pending in ('password', 'totp')", name="pending"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_web_sessions_mailbox_id", "web_sessions", ["mailbox_id"])
    op.create_table(
        "totp_secrets",
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), primary_key=True),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("last_step", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("totp_secrets")
    op.drop_index("ix_web_sessions_mailbox_id", "web_sessions")
    op.drop_table("web_sessions")
