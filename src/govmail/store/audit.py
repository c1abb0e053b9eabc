"""The append-only audit log: every administrative action is written in its own transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.store.schema import audit_log


def now() -> datetime:
    return datetime.now(UTC)


async def record(
    conn: AsyncConnection, actor: str, action: str, target: str, **details: Any
) -> None:
    """Add one entry inside the caller's transaction, so it exists iff the action happened."""
    await conn.execute(
        insert(audit_log).values(
            at=now(), actor=actor, action=action, target=target, details=details
        )
    )
