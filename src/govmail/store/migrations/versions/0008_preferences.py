"""Webmail settings (signature, language, vacation) and the vacation responder's log.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_preferences",
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), primary_key=True),
        sa.Column("signature", sa.Text, nullable=False, server_default=""),
        sa.Column("language", sa.String(2), nullable=False, server_default="vi"),
        sa.Column("vacation_enabled", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("vacation_start", sa.Date, nullable=True),
        sa.Column("vacation_end", sa.Date, nullable=True),
        sa.Column("vacation_subject", sa.String(200), nullable=False, server_default=""),
        sa.Column("vacation_text", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("language in ('vi', 'en')", name="language"),
    )
    op.create_table(
        "vacation_replies",
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), primary_key=True),
        sa.Column("sender", sa.String(320), primary_key=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vacation_replies")
    op.drop_table("mailbox_preferences")
