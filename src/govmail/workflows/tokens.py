"""API tokens: how the province's other systems call the JSON API. A token acts as the
mailbox it was issued for, with that mailbox's roles; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from govmail.config import Config
from govmail.core.errors import Conflict, InvalidInput, NotFound
from govmail.directory import addresses as names
from govmail.store import audit
from govmail.store.database import Database
from govmail.store.schema import addresses, api_tokens, mailboxes
from govmail.workflows.roles import Principal, load_principal

PREFIX = "gmt_"  # recognisable in logs and secret scanners


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    address: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "address": self.address,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked": self.revoked,
        }


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def create_token(
    db: Database, cfg: Config, who: Principal, *, name: str, address: str
) -> tuple[ApiToken, str]:
    """Issue a token acting as ``address`` (centre only); the secret is returned once."""
    who.require_centre()
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise InvalidInput(
            "Tên token phải có từ 1 đến 100 ký tự.", "A token name has 1 to 100 characters."
        )
    secret = PREFIX + secrets.token_urlsafe(32)
    async with db.write() as conn:
        box = await names.find_mailbox(conn, cfg, address)
        if box.status != "active":
            raise Conflict("Hộp thư không hoạt động.", "The mailbox is not active.")
        token_id = (
            await conn.execute(
                insert(api_tokens)
                .values(
                    name=name,
                    token_hash=_digest(secret),
                    mailbox_id=box.mailbox_id,
                    created_by=who.actor,
                    created_at=audit.now(),
                )
                .returning(api_tokens.c.id)
            )
        ).scalar_one()
        target = names.full_address(box.local_part, cfg)
        await audit.record(
            conn, who.actor, "token.create", target, source=who.source, token=token_id, name=name
        )
    found = [t for t in await list_tokens(db, cfg) if t.id == token_id]
    return found[0], secret


async def list_tokens(db: Database, cfg: Config) -> list[ApiToken]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(api_tokens, addresses.c.local_part)
            .join(mailboxes, mailboxes.c.id == api_tokens.c.mailbox_id)
            .join(
                addresses,
                (addresses.c.mailbox_id == mailboxes.c.id) & (addresses.c.kind == "primary"),
            )
            .order_by(api_tokens.c.id)
        )
        return [
            ApiToken(
                r.id,
                r.name,
                names.full_address(r.local_part, cfg),
                r.created_by,
                r.created_at,
                r.last_used_at,
                r.revoked_at is not None,
            )
            for r in rows
        ]


async def revoke_token(db: Database, cfg: Config, who: Principal, token_id: int) -> int:
    who.require_centre()
    async with db.write() as conn:
        done = await conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=audit.now())
        )
        if done.rowcount == 0:
            raise NotFound(f"Không có token số {token_id} đang dùng.", f"No live token {token_id}.")
        await audit.record(conn, who.actor, "token.revoke", f"token/{token_id}", source=who.source)
    return token_id


async def principal_for_token(db: Database, token: str, *, source: str) -> Principal | None:
    """The principal a bearer token acts as, or None for an unknown or revoked token,
    or one whose mailbox is no longer active."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    async with db.write() as conn:
        row = (
            await conn.execute(
                select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.mailbox_id)
                .join(mailboxes, mailboxes.c.id == api_tokens.c.mailbox_id)
                .where(
                    api_tokens.c.token_hash == _digest(token),
                    api_tokens.c.revoked_at.is_(None),
                    mailboxes.c.status == "active",
                )
            )
        ).first()
        if row is None:
            return None
        await conn.execute(
            update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=audit.now())
        )
        return await load_principal(
            conn, row.mailbox_id, actor=f"api:{row.id}:{row.name}", source=source
        )
