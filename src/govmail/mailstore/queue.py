"""The outbound queue as the centre sees it: what waits to leave for other domains."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from govmail.store.database import Database
from govmail.store.schema import messages, outbound_queue


@dataclass(frozen=True)
class QueuedMail:
    id: int
    created_at: datetime
    sender: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    size: int
    subject: str

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["created_at"] = self.created_at.isoformat()
        found["next_attempt_at"] = self.next_attempt_at.isoformat()
        return found


async def list_queue(
    db: Database, *, include_done: bool = False, limit: int = 1000
) -> list[QueuedMail]:
    """Oldest first: the mail not yet delivered (and with ``include_done``, the rest)."""
    query = (
        select(
            outbound_queue.c.id,
            outbound_queue.c.created_at,
            outbound_queue.c.sender,
            outbound_queue.c.recipient,
            outbound_queue.c.status,
            outbound_queue.c.attempts,
            outbound_queue.c.next_attempt_at,
            outbound_queue.c.last_error,
            messages.c.size,
            messages.c.subject,
        )
        .join(messages, messages.c.id == outbound_queue.c.message_id)
        .order_by(outbound_queue.c.id)
        .limit(limit)
    )
    if not include_done:
        query = query.where(outbound_queue.c.status.in_(["queued", "deferred"]))
    async with db.read() as conn:
        return [QueuedMail(*row) for row in await conn.execute(query)]
