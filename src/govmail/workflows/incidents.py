"""Incident tickets (R20, R23): an official or agency reports a problem with a mailbox or
the system; the centre works the ticket to resolution. Every change is audited and the
reporter is told by mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import Config
from govmail.core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from govmail.store import audit
from govmail.store.blobs import BlobStore
from govmail.store.database import Database
from govmail.store.schema import incidents
from govmail.workflows import notify
from govmail.workflows.roles import Principal

STATUSES = {
    "open": ("Mới tiếp nhận", "Open"),
    "in_progress": ("Đang xử lý", "In progress"),
    "resolved": ("Đã xử lý xong", "Resolved"),
}


@dataclass(frozen=True)
class Incident:
    id: int
    reported_by: str
    subject: str
    description: str
    status: str
    resolution: str
    created_at: datetime
    updated_at: datetime

    @property
    def status_label(self) -> str:
        return STATUSES[self.status][0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reported_by": self.reported_by,
            "subject": self.subject,
            "description": self.description,
            "status": self.status,
            "resolution": self.resolution,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _text(value: str, limit: int, label_vi: str, label_en: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput(f"Thiếu {label_vi}.", f"The {label_en} is missing.")
    if len(value) > limit:
        raise InvalidInput(
            f"{label_vi.capitalize()} dài quá {limit} ký tự.",
            f"The {label_en} is longer than {limit} characters.",
        )
    return value


async def report_incident(
    db: Database,
    cfg: Config,
    blobs: BlobStore,
    who: Principal,
    *,
    subject: str,
    description: str,
) -> Incident:
    """Anyone signed in reports an incident; it is open until the centre resolves it."""
    subject = " ".join(_text(subject, 200, "tiêu đề", "subject").split())
    description = _text(description, 10_000, "mô tả", "description")
    async with db.write() as conn:
        stamp = audit.now()
        incident_id = (
            await conn.execute(
                insert(incidents)
                .values(
                    agency_id=who.agency_id,
                    reported_by=who.actor,
                    reporter_mailbox_id=who.mailbox_id,
                    subject=subject,
                    description=description,
                    status="open",
                    created_at=stamp,
                    updated_at=stamp,
                )
                .returning(incidents.c.id)
            )
        ).scalar_one()
        await audit.record(
            conn,
            who.actor,
            "incident.report",
            f"incident/{incident_id}",
            source=who.source,
            subject=subject,
        )
        incident = await _load(conn, incident_id)
        await _tell_reporter(conn, cfg, blobs, incident, "open")
        return incident


async def list_incidents(
    db: Database, who: Principal, *, status: str | None = None, limit: int = 200
) -> list[Incident]:
    """The centre sees every ticket; others their own."""
    async with db.read() as conn:
        query = select(incidents.c.id).order_by(incidents.c.id.desc()).limit(min(limit, 1000))
        if status:
            query = query.where(incidents.c.status == status)
        if not who.centre:
            query = query.where(incidents.c.reporter_mailbox_id == (who.mailbox_id or -1))
        return [await _load(conn, i) for i in (await conn.scalars(query)).all()]


async def update_incident(
    db: Database,
    cfg: Config,
    blobs: BlobStore,
    who: Principal,
    incident_id: int,
    *,
    status: str,
    resolution: str = "",
) -> Incident:
    """The centre moves a ticket on (open → in_progress → resolved), with a note."""
    who.require_centre()
    if status not in STATUSES:
        raise InvalidInput(f"Trạng thái không hợp lệ: {status}.", f"Unknown status {status}.")
    async with db.write() as conn:
        current = await conn.scalar(
            select(incidents.c.status).where(incidents.c.id == incident_id).with_for_update()
        )
        if current is None:
            raise NotFound(f"Không có sự cố số {incident_id}.", f"No incident {incident_id}.")
        if current == status:
            raise Conflict(
                f"Sự cố số {incident_id} đã ở trạng thái này.",
                f"Incident {incident_id} already has this status.",
            )
        await conn.execute(
            update(incidents)
            .where(incidents.c.id == incident_id)
            .values(status=status, resolution=resolution.strip()[:10_000], updated_at=audit.now())
        )
        await audit.record(
            conn,
            who.actor,
            "incident.update",
            f"incident/{incident_id}",
            source=who.source,
            before={"status": current},
            status=status,
            resolution=resolution.strip()[:500],
        )
        incident = await _load(conn, incident_id)
        await _tell_reporter(conn, cfg, blobs, incident, status)
        return incident


async def show_incident(db: Database, who: Principal, incident_id: int) -> Incident:
    async with db.read() as conn:
        incident = await _load(conn, incident_id)
        owner = await conn.scalar(
            select(incidents.c.reporter_mailbox_id).where(incidents.c.id == incident_id)
        )
        if not who.centre and (owner is None or owner != who.mailbox_id):
            raise NotAllowed("Bạn không có quyền xem sự cố này.", "You may not see this incident.")
        return incident


async def _load(conn: AsyncConnection, incident_id: int) -> Incident:
    row = (await conn.execute(select(incidents).where(incidents.c.id == incident_id))).first()
    if row is None:
        raise NotFound(f"Không có sự cố số {incident_id}.", f"No incident {incident_id}.")
    return Incident(
        row.id,
        row.reported_by,
        row.subject,
        row.description,
        row.status,
        row.resolution,
        _aware(row.created_at),
        _aware(row.updated_at),
    )


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _tell_reporter(
    conn: AsyncConnection, cfg: Config, blobs: BlobStore, incident: Incident, status: str
) -> None:
    box = await conn.scalar(
        select(incidents.c.reporter_mailbox_id).where(incidents.c.id == incident.id)
    )
    if box is None:
        return
    label_vi, label_en = STATUSES[status]
    lines = [
        f"Sự cố số {incident.id}: {incident.subject}",
        f"Trạng thái: {label_vi}.",
    ]
    if incident.resolution:
        lines += ["", incident.resolution]
    lines += ["", "-- ", f"Incident {incident.id}: {label_en}."]
    raw = notify.system_message(
        cfg, incident.reported_by, f"[Sự cố số {incident.id}] {label_vi}", lines
    )
    await notify.deliver_in(conn, blobs, [(raw, [box])])
