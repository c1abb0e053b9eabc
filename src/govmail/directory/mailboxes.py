"""Mailboxes as such, whoever owns them: passwords (R7) and quotas (R17)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import MB, MIN_QUOTA_MB, Config
from govmail.core.errors import Conflict, InvalidInput
from govmail.directory import addresses as names
from govmail.directory.passwords import generate_initial_password, hash_password
from govmail.store import audit
from govmail.store.database import Database
from govmail.store.schema import mailboxes

# 1 PB: far beyond any mailbox, far below the 64-bit byte counter.
MAX_QUOTA_MB = 1024**3


async def create_mailbox(
    conn: AsyncConnection,
    dom: int,
    local_part: str,
    *,
    agency_id: int | None = None,
    person_id: int | None = None,
    quota_bytes: int,
    password_hash: str | None = None,
    must_change_password: bool = True,
) -> int:
    """Insert a mailbox for an agency or a person and claim its primary address;
    returns the mailbox id. The caller's transaction holds both or neither."""
    mailbox_id: int = (
        await conn.execute(
            insert(mailboxes)
            .values(
                kind="agency" if agency_id is not None else "personal",
                agency_id=agency_id,
                person_id=person_id,
                status="active",
                quota_bytes=quota_bytes,
                password_hash=password_hash,
                must_change_password=must_change_password,
                created_at=audit.now(),
            )
            .returning(mailboxes.c.id)
        )
    ).scalar_one()
    await names.claim(conn, dom, local_part, mailbox_id, "primary")
    return mailbox_id


async def reset_password(
    db: Database, cfg: Config, ref: str, *, password: str | None = None, actor: str = "cli"
) -> tuple[str, str | None]:
    """Issue a new password (R7). Without ``password`` a random one is generated,
    returned once, and must be changed at the first login with it. Returns the
    mailbox's address and that initial password (None when ``password`` was given)."""
    initial = None if password is not None else generate_initial_password()
    password_hash = await asyncio.to_thread(hash_password, initial or str(password))
    async with db.write() as conn:
        address, _ = await set_password_in(
            conn, cfg, ref, password_hash, must_change=initial is not None, actor=actor
        )
    return address, initial


async def set_password_in(
    conn: AsyncConnection,
    cfg: Config,
    ref: str,
    password_hash: str,
    *,
    must_change: bool,
    actor: str,
    source: str = "",
) -> tuple[str, names.MailboxRef]:
    """reset_password inside the caller's transaction, with the hash already computed
    (argon2 runs off the event loop before the transaction). Returns the address."""
    box = await _active_mailbox(conn, cfg, ref)
    await conn.execute(
        update(mailboxes)
        .where(mailboxes.c.id == box.mailbox_id)
        .values(password_hash=password_hash, must_change_password=must_change)
    )
    address = names.full_address(box.local_part, cfg)
    await audit.record(conn, actor, "mailbox.reset_password", address, source=source)
    return address, box


async def _active_mailbox(conn: AsyncConnection, cfg: Config, ref: str) -> names.MailboxRef:
    box = await names.find_mailbox(conn, cfg, ref)
    if box.status != "active":
        raise Conflict(
            f"Hộp thư {names.full_address(box.local_part, cfg)} không hoạt động.",
            f"Mailbox {names.full_address(box.local_part, cfg)} is not active.",
        )
    return box


async def set_quota(
    db: Database, cfg: Config, ref: str, *, megabytes: int, actor: str = "cli"
) -> dict[str, Any]:
    """Set one mailbox's quota (R17). Never below the regulation's minimum for its kind."""
    async with db.write() as conn:
        box = await _active_mailbox(conn, cfg, ref)
        minimum = MIN_QUOTA_MB[box.kind]
        if megabytes > MAX_QUOTA_MB:
            raise InvalidInput(
                f"Hạn mức tối đa là {MAX_QUOTA_MB} MB.",
                f"The largest quota is {MAX_QUOTA_MB} MB.",
            )
        if megabytes < minimum:
            raise InvalidInput(
                f"Hạn mức hộp thư {'cơ quan' if box.kind == 'agency' else 'cá nhân'} tối thiểu"
                f" là {minimum} MB (Điều 9).",
                f"The minimum quota of an {box.kind} mailbox is {minimum} MB (R17).",
            )
        await conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == box.mailbox_id)
            .values(quota_bytes=megabytes * MB)
        )
        address = names.full_address(box.local_part, cfg)
        await audit.record(conn, actor, "mailbox.quota", address, megabytes=megabytes)
        used = await conn.scalar(
            select(mailboxes.c.used_bytes).where(mailboxes.c.id == box.mailbox_id)
        )
    return {"address": address, "quota_mb": megabytes, "used_bytes": int(used or 0)}
