"""The agency portal and admin console: roles, requests (Mẫu 01–03, R7, R22) with their
history, incident tickets, API tokens, delegation documents, and an append-only audit log
that also says where an action came from.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ROLES = "role in ('centre_admin', 'director', 'it_officer', 'agency_head')"
FORMS = "form in ('01', '02', '03', 'reset', 'delegation')"
STATUSES = "status in ('pending', 'awaiting_director', 'approved', 'rejected', 'withdrawn')"
OPEN = "status in ('pending', 'awaiting_director')"


def upgrade() -> None:
    op.create_table(
        "roles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("agency_id", sa.Integer, sa.ForeignKey("agencies.id"), nullable=True),
        # 0 for the province-wide roles, so one unique key covers both kinds.
        sa.Column("scope", sa.Integer, nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.Column("granted_at", TS, nullable=False),
        sa.CheckConstraint(ROLES, name="role"),
        sa.CheckConstraint(
            "(role in ('it_officer', 'agency_head')) = (agency_id is not null)", name="scope"
        ),
        sa.UniqueConstraint("mailbox_id", "role", "scope"),
    )
    op.create_index("ix_roles_agency_id", "roles", ["agency_id"])
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("form", sa.String(16), nullable=False),
        sa.Column("agency_id", sa.Integer, sa.ForeignKey("agencies.id"), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("submitted_by", sa.String(320), nullable=False),
        sa.Column("submitter_mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id")),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("decision_date", sa.Date, nullable=True),
        sa.Column("late", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("rows", sa.JSON, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("document_blob", sa.String(64), nullable=True),
        sa.Column("document_name", sa.String(200), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("endorsed_by", sa.String(320), nullable=True),
        sa.Column("endorsed_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(320), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.CheckConstraint(FORMS, name="form"),
        sa.CheckConstraint(STATUSES, name="status"),
    )
    op.create_index("ix_requests_status_submitted_at", "requests", ["status", "submitted_at"])
    op.create_index("ix_requests_agency_id", "requests", ["agency_id"])
    op.create_index(
        "uq_requests_open_fingerprint",
        "requests",
        ["fingerprint"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    op.create_table(
        "request_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_request_events_request_id", "request_events", ["request_id"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("agency_id", sa.Integer, sa.ForeignKey("agencies.id"), nullable=True),
        sa.Column("reported_by", sa.String(320), nullable=False),
        sa.Column("reporter_mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id")),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status in ('open', 'in_progress', 'resolved')", name="status"),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("delegations") as batch:
        batch.add_column(sa.Column("document_blob", sa.String(64), nullable=True))
        batch.add_column(sa.Column("document_name", sa.String(200), nullable=True))
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("source", sa.String(200), nullable=False, server_default=""))
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_target", "audit_log", ["target"])
    _append_only()


def _append_only() -> None:
    """The audit log can be added to, never changed: the database itself refuses."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log"
                " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE"
            " ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")
    else:
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_index("ix_audit_log_target", "audit_log")
    op.drop_index("ix_audit_log_action", "audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("delegations") as batch:
        batch.drop_column("document_name")
        batch.drop_column("document_blob")
    for table in ("api_tokens", "incidents", "request_events", "requests", "roles"):
        op.drop_table(table)
