"""R22: who may read and send as an agency mailbox (minimal here; the console's request
workflow with the signed authorisation builds on it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import Config
from govmail.core.errors import Conflict, InvalidInput
from govmail.directory import addresses as names
from govmail.store import audit
from govmail.store.database import Database
from govmail.store.schema import delegations


@dataclass(frozen=True)
class DelegationChange:
    agency_address: str
    person_address: str
    active: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def grant_delegation(
    db: Database,
    cfg: Config,
    agency_ref: str,
    person_ref: str,
    *,
    actor: str = "cli",
    source: str = "",
    document: tuple[str, str] | None = None,
) -> DelegationChange:
    """Let the person behind ``person_ref`` read and send as the agency mailbox.
    ``document`` is (file name, blob key) of the head's signed authorisation (R22)."""
    async with db.write() as conn:
        return await grant_delegation_in(
            conn, cfg, agency_ref, person_ref, actor=actor, source=source, document=document
        )


async def grant_delegation_in(
    conn: AsyncConnection,
    cfg: Config,
    agency_ref: str,
    person_ref: str,
    *,
    actor: str,
    source: str = "",
    document: tuple[str, str] | None = None,
) -> DelegationChange:
    """grant_delegation inside the caller's transaction (approving a delegation request)."""
    agency, person = await _pair(conn, cfg, agency_ref, person_ref)
    name, blob = document if document is not None else (None, None)
    values: dict[str, Any] = {"revoked_at": None, "can_send": True, "can_read": True}
    if document is not None:
        values.update(document_name=name, document_blob=blob)
    changed = await conn.execute(
        update(delegations)
        .where(
            delegations.c.mailbox_id == agency.mailbox_id,
            delegations.c.person_id == person.person_id,
        )
        .values(**values)
    )
    if changed.rowcount == 0:
        await conn.execute(
            insert(delegations).values(
                mailbox_id=agency.mailbox_id,
                person_id=person.person_id,
                created_at=audit.now(),
                **values,
            )
        )
    change = DelegationChange(
        names.full_address(agency.local_part, cfg),
        names.full_address(person.local_part, cfg),
        True,
    )
    await audit.record(
        conn,
        actor,
        "delegation.grant",
        change.agency_address,
        source=source,
        person=change.person_address,
        document=name,
    )
    return change


async def revoke_delegation(
    db: Database,
    cfg: Config,
    agency_ref: str,
    person_ref: str,
    *,
    actor: str = "cli",
    source: str = "",
) -> DelegationChange:
    async with db.write() as conn:
        return await revoke_delegation_in(
            conn, cfg, agency_ref, person_ref, actor=actor, source=source
        )


async def revoke_delegation_in(
    conn: AsyncConnection,
    cfg: Config,
    agency_ref: str,
    person_ref: str,
    *,
    actor: str,
    source: str = "",
) -> DelegationChange:
    agency, person = await _pair(conn, cfg, agency_ref, person_ref, must_be_active=False)
    changed = await conn.execute(
        update(delegations)
        .where(
            delegations.c.mailbox_id == agency.mailbox_id,
            delegations.c.person_id == person.person_id,
            delegations.c.revoked_at.is_(None),
        )
        .values(revoked_at=audit.now())
    )
    change = DelegationChange(
        names.full_address(agency.local_part, cfg),
        names.full_address(person.local_part, cfg),
        False,
    )
    if changed.rowcount == 0:
        raise Conflict(
            f"{change.person_address} không được ủy quyền trên {change.agency_address}.",
            f"{change.person_address} holds no delegation on {change.agency_address}.",
        )
    await audit.record(
        conn,
        actor,
        "delegation.revoke",
        change.agency_address,
        source=source,
        person=change.person_address,
    )
    return change


async def _pair(
    conn: Any, cfg: Config, agency_ref: str, person_ref: str, *, must_be_active: bool = True
) -> tuple[names.MailboxRef, names.MailboxRef]:
    agency = await names.find_mailbox(conn, cfg, agency_ref)
    person = await names.find_mailbox(conn, cfg, person_ref)
    if agency.kind != "agency":
        raise InvalidInput(
            f"{agency_ref} không phải hộp thư cơ quan.", f"{agency_ref} is not an agency mailbox."
        )
    if person.kind != "personal" or person.person_id is None:
        raise InvalidInput(
            f"{person_ref} không phải hộp thư cá nhân.", f"{person_ref} is not a personal mailbox."
        )
    if must_be_active and (agency.status != "active" or person.status != "active"):
        raise Conflict("Hộp thư không còn hoạt động.", "The mailbox is no longer active.")
    return agency, person
