"""The centre's view of the sending policy: the decisions log, and the quarantine of
messages held for a classification mark (R15), released or deleted by an operator."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from govmail.core.errors import Conflict, NotFound
from govmail.core.mime import analyze_message
from govmail.mailstore.delivery import Delivery, StoredMessage, deliver_batch
from govmail.store.audit import now
from govmail.store.blobs import BlobStore
from govmail.store.database import Database
from govmail.store.schema import audit_log, messages, policy_decisions, quarantine

_d = policy_decisions.c
_q = quarantine.c


def _utc(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Decision:
    """One line of ``govmail policy log``."""

    id: int
    at: datetime
    direction: str
    rule: str
    action: str
    sender: str
    message_id: str | None
    subject: str
    reason_vi: str
    reason_en: str
    quarantine_id: int | None
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": _utc(self.at)}


async def list_decisions(
    db: Database,
    *,
    since: datetime | None = None,
    rule: str | None = None,
    sender: str | None = None,
    limit: int = 1000,
) -> list[Decision]:
    """Newest first: what the rules decided, optionally since a time, for one rule or
    one sender."""
    query = select(
        _d.id, _d.at, _d.direction, _d.rule, _d.action, _d.sender, _d.message_id_header,
        _d.subject, _d.reason_vi, _d.reason_en, _d.quarantine_id, _d.details,
    ).order_by(_d.id.desc()).limit(limit)  # fmt: skip
    if since is not None:
        query = query.where(_d.at >= since)
    if rule:
        query = query.where(_d.rule == rule)
    if sender:
        query = query.where(func.lower(_d.sender) == sender.lower())
    async with db.read() as conn:
        return [Decision(*row) for row in await conn.execute(query)]


@dataclass(frozen=True)
class Held:
    """One message in quarantine."""

    id: int
    at: datetime
    direction: str
    sender: str
    subject: str
    message_id: str | None
    size: int
    recipients: list[str]
    reason_vi: str
    status: str
    decided_by: str | None
    decided_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "at": _utc(self.at),
            "decided_at": _utc(self.decided_at) if self.decided_at else None,
        }


_HELD = select(
    _q.id, _q.at, _q.direction, _q.sender, _q.subject, _q.message_id_header, _q.size,
    _q.recipients, _q.reason_vi, _q.status, _q.decided_by, _q.decided_at,
)  # fmt: skip


def _held(row: Any) -> Held:
    recipients = row.recipients or {}
    addresses = [*recipients.get("local", {}).values(), *recipients.get("remote", [])]
    return Held(
        row.id, row.at, row.direction, row.sender, row.subject, row.message_id_header,
        row.size, addresses, row.reason_vi, row.status, row.decided_by, row.decided_at,
    )  # fmt: skip


async def list_quarantine(db: Database, *, include_done: bool = False) -> list[Held]:
    """Oldest first: the messages held (and with ``include_done``, those decided)."""
    query = _HELD.order_by(_q.id)
    if not include_done:
        query = query.where(_q.status == "held")
    async with db.read() as conn:
        return [_held(row) for row in await conn.execute(query)]


@dataclass(frozen=True)
class Released:
    """What releasing a held message did."""

    id: int
    delivered: list[int]  # mailbox ids that received it
    refused: list[int]  # mailbox ids that could not (full, disabled)
    queued: int  # recipients at other domains, now in the outbound queue

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def release(db: Database, blobs: BlobStore, held_id: int, *, actor: str) -> Released:
    """Deliver a held message to whom it was for, as it would have been (INBOX, the
    sender's Sent copy, the outbound queue), mark it released and audit it, all in one
    transaction. Raises NotFound or Conflict (already decided)."""
    row = await _pending(db, held_id)
    raw = blobs.get(row.blob)
    stored = StoredMessage(blob=row.blob, size=len(raw), summary=analyze_message(raw))
    recipients = row.recipients or {}
    delivery = Delivery(
        message=stored,
        sender=row.sender,
        inbox=[int(box) for box in recipients.get("local", {})],
        sent_copy=row.mailbox_id if row.direction == "submission" else None,
        outbound=list(recipients.get("remote", [])),
        submitted_by=row.mailbox_id,
    )

    def work(conn: Connection) -> Released:
        _decide(conn, held_id, "released", actor)
        outcome = deliver_batch(conn, [delivery])[0]
        return Released(held_id, outcome.delivered, list(outcome.refused), outcome.queued)

    return await db.run(work, write=True)


async def delete_held(db: Database, blobs: BlobStore, held_id: int, *, actor: str) -> int:
    """Delete a held message for good (audited); its file goes too unless some mailbox
    holds the same message. Raises NotFound or Conflict (already decided)."""
    row = await _pending(db, held_id)

    def work(conn: Connection) -> bool:
        _decide(conn, held_id, "deleted", actor)
        shared = conn.execute(select(messages.c.id).where(messages.c.blob == row.blob)).first()
        others = conn.execute(
            select(_q.id).where(_q.blob == row.blob, _q.id != held_id, _q.status == "held")
        ).first()
        return shared is None and others is None

    if await db.run(work, write=True):
        blobs.delete(row.blob)
    return held_id


async def _pending(db: Database, held_id: int) -> Any:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(
                    _q.id,
                    _q.blob,
                    _q.sender,
                    _q.recipients,
                    _q.mailbox_id,
                    _q.direction,
                    _q.status,
                ).where(_q.id == held_id)
            )
        ).first()
    if row is None:
        raise NotFound(
            f"Không có thư số {held_id} trong khu cách ly.",
            f"No message {held_id} in quarantine.",
            id=held_id,
        )
    if row.status != "held":
        raise _decided(held_id, row.status)
    return row


def _decide(conn: Connection, held_id: int, status: str, actor: str) -> None:
    """Move a held message to ``status`` (only from "held": two operators racing
    cannot both act) with an audit entry, in the caller's transaction."""
    changed = conn.execute(
        update(quarantine)
        .where(_q.id == held_id, _q.status == "held")
        .values(status=status, decided_by=actor, decided_at=now())
    ).rowcount
    if changed != 1:
        raise _decided(held_id, "decided")
    conn.execute(
        audit_log.insert().values(
            at=now(),
            actor=actor,
            action=f"policy.{'release' if status == 'released' else 'delete'}",
            target=f"quarantine/{held_id}",
            details={"quarantine_id": held_id},
        )
    )


def _decided(held_id: int, status: str) -> Conflict:
    done_vi = {"released": "đã được gửi đi", "deleted": "đã bị xóa"}.get(status, "đã được xử lý")
    return Conflict(
        f"Thư số {held_id} {done_vi}, không còn bị giữ.",
        f"Message {held_id} is no longer held ({status}).",
        id=held_id,
        status=status,
    )
