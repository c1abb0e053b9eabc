"""Sending policy: quarantine, the decisions log, and documents (type and signatures).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("blob", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=True),
        sa.Column("message_id_header", sa.Text, nullable=True),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("reason_vi", sa.Text, nullable=False),
        sa.Column("reason_en", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="held"),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_quarantine_status_at", "quarantine", ["status", "at"])
    op.create_table(
        "policy_decisions",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=True),
        sa.Column("message_id_header", sa.Text, nullable=True),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("reason_vi", sa.Text, nullable=False),
        sa.Column("reason_en", sa.Text, nullable=False),
        sa.Column("quarantine_id", sa.Integer, sa.ForeignKey("quarantine.id"), nullable=True),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("ix_policy_decisions_at", "policy_decisions", ["at"])
    op.create_index("ix_policy_decisions_mailbox_id", "policy_decisions", ["mailbox_id"])
    op.create_table(
        "documents",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", _ID, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=True),
        sa.Column("document_type", sa.String(64), nullable=False),
        sa.Column("document_number", sa.String(100), nullable=True),
        sa.Column("signal", sa.String(16), nullable=False),
        sa.Column("signatures", sa.JSON, nullable=False),
    )
    op.create_index("ix_documents_at", "documents", ["at"])
    op.create_index("ix_documents_message_id", "documents", ["message_id"])
    op.create_index("ix_documents_mailbox_id", "documents", ["mailbox_id"])


def downgrade() -> None:
    op.drop_table("documents")
    op.drop_table("policy_decisions")
    op.drop_table("quarantine")
