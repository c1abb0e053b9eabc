"""Mail store: messages, folders, folder messages, delegations, outbound queue.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("blob", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("from_display", sa.Text, nullable=False, server_default=""),
        sa.Column("message_id_header", sa.Text, nullable=True),
        sa.Column("sent_date", TS, nullable=True),
        sa.Column("has_attachments", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("envelope", sa.JSON, nullable=False),
        sa.Column("structure", sa.JSON, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("blob"),
    )
    op.create_table(
        "folders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("special_use", sa.String(16), nullable=True),
        sa.Column("uidvalidity", sa.BigInteger, nullable=False),
        sa.Column("uidnext", sa.BigInteger, nullable=False, server_default="1"),
        sa.Column("highest_modseq", sa.BigInteger, nullable=False, server_default="1"),
        sa.Column("subscribed", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("mailbox_id", "name"),
        sa.CheckConstraint("uidnext >= 1 and highest_modseq >= 1", name="counters"),
    )
    op.create_table(
        "folder_messages",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("folder_id", sa.Integer, sa.ForeignKey("folders.id"), nullable=False),
        sa.Column("uid", sa.BigInteger, nullable=False),
        sa.Column("message_id", BIGID, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("flags", sa.Integer, nullable=False, server_default="0"),
        sa.Column("keywords", sa.Text, nullable=True),
        sa.Column("modseq", sa.BigInteger, nullable=False),
        sa.Column("internal_date", TS, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("folder_id", "uid"),
    )
    op.create_index("ix_folder_messages_message_id", "folder_messages", ["message_id"])
    op.create_index("ix_folder_messages_modseq", "folder_messages", ["folder_id", "modseq"])
    op.create_table(
        "delegations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=False),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("can_send", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("can_read", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.UniqueConstraint("mailbox_id", "person_id"),
    )
    op.create_index("ix_delegations_person_id", "delegations", ["person_id"])
    op.create_table(
        "outbound_queue",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("message_id", BIGID, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("status in ('queued', 'deferred', 'sent', 'bounced')", name="status"),
    )
    op.create_index("ix_outbound_queue_message_id", "outbound_queue", ["message_id"])
    op.create_index("ix_outbound_queue_due", "outbound_queue", ["status", "next_attempt_at"])


def downgrade() -> None:
    for table in ("outbound_queue", "delegations", "folder_messages", "folders", "messages"):
        op.drop_table(table)
