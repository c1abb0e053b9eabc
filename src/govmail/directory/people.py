"""Officials and their personal mailboxes (R2, R5, R7–R9): one service function per use case."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from sqlalchemy import Select, and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import Config
from govmail.core.errors import AddressTaken, Conflict, InvalidInput, NotFound
from govmail.core.naming import (
    personal_local_part,
    propose_personal_addresses,
    validate_local_part,
)
from govmail.core.vietnamese import NameParts, fold, normalize_name, split_name
from govmail.directory import addresses as names
from govmail.directory.agencies import find_agency_id, load_agencies, lock_active_agency
from govmail.directory.mailboxes import create_mailbox
from govmail.directory.model import Agency, CreatedPerson, Person
from govmail.directory.passwords import generate_initial_password, hash_password
from govmail.store import audit
from govmail.store.database import Database
from govmail.store.schema import (
    addresses,
    agencies,
    api_tokens,
    delegations,
    mailboxes,
    people,
    roles,
)

MAX_FIELD = 200  # full name, position, department (the columns' sizes)
MAX_PART = 100  # surname, middle name, given name


def person_search_text(full_name: str, local_part: str, position: str, department: str) -> str:
    return fold(f"{full_name} {local_part} {position} {department}")


def joined_name(parts: NameParts) -> str:
    """The stored full name: the normalised parts, single-spaced."""
    return " ".join(w for w in (parts.surname, parts.middle, parts.given) if w)


def clean_field(value: str | None, label_vi: str, label_en: str) -> str:
    """A position or department as stored: NFC, single spaces, bounded (the same text
    typed at the CLI and read from a spreadsheet must compare equal on re-import)."""
    cleaned = normalize_name(value or "")
    if len(cleaned) > MAX_FIELD:
        raise InvalidInput(
            f"{label_vi} dài quá {MAX_FIELD} ký tự.",
            f"{label_en} is longer than {MAX_FIELD} characters.",
        )
    return cleaned


def clean_full_name(name: str) -> tuple[NameParts, str]:
    """The name's parts and the stored full name; refuses names the columns cannot hold."""
    parts = split_name(name)
    full_name = joined_name(parts)
    if (
        len(full_name) > MAX_FIELD
        or max(len(p) for p in (parts.surname, parts.middle, parts.given)) > MAX_PART
    ):
        raise InvalidInput(
            f"Họ và tên dài quá {MAX_FIELD} ký tự: '{full_name[:60]}…'",
            f"The full name is longer than {MAX_FIELD} characters: '{full_name[:60]}…'",
        )
    return parts, full_name


def agency_suffixes(agency: Agency) -> list[str]:
    """The agency's abbreviation, then its address if different.

    ``["ttr"]`` for Thanh tra; ``["pvhtt", "pvhtt_cl"]`` for a commune's sub-unit.
    """
    local = agency.address.split("@")[0]
    return [agency.abbr] if agency.abbr == local else [agency.abbr, local]


async def _agency(conn: AsyncConnection, cfg: Config, ref: str) -> Agency:
    found = await load_agencies(conn, cfg, agencies.c.id == await find_agency_id(conn, cfg, ref))
    return found[0]


async def active_agency(conn: AsyncConnection, cfg: Config, ref: str) -> Agency:
    """The agency ``ref`` names, locked against a concurrent dissolution; must be active."""
    return await lock_active_agency(conn, cfg, await find_agency_id(conn, cfg, ref))


def regulation_local_part(full_name: str) -> str:
    """R5's form, checked for shape only: a reserved form counts as taken (the reserved
    names are rows of the address table), so it gets proposals like any taken one."""
    return validate_local_part(personal_local_part(full_name), frozenset())


def proposer(cfg: Config, full_name: str, agency: Agency | None) -> names.Proposer:
    """Free addresses for ``full_name``, best first, as AddressTaken carries them."""

    async def propose(conn: AsyncConnection, _local: str) -> list[str]:
        taken = await names.taken_local_parts(conn, await names.domain_id(conn, cfg))
        suffixes = agency_suffixes(agency) if agency else []
        return propose_personal_addresses(
            full_name, suffixes, taken.__contains__, reserved=cfg.reserved_local_parts
        )

    return propose


@functools.cache
def _people_query() -> Select[Any]:
    """Officials joined to their address and their agency's; built once, as building
    this statement costs more than running it for a page of search results."""
    own = addresses.alias("own")
    agency_box = mailboxes.alias("agency_box")
    agency_addr = addresses.alias("agency_addr")
    return (
        select(
            people.c.id,
            people.c.full_name,
            own.c.local_part,
            agencies.c.name,
            agency_addr.c.local_part,
            people.c.position,
            people.c.department,
            people.c.status,
            mailboxes.c.status,
            mailboxes.c.id,
        )
        .join(mailboxes, and_(mailboxes.c.person_id == people.c.id, mailboxes.c.kind == "personal"))
        .join(own, and_(own.c.mailbox_id == mailboxes.c.id, own.c.kind == "primary"))
        .join(agencies, agencies.c.id == people.c.agency_id)
        .join(
            agency_box, and_(agency_box.c.agency_id == agencies.c.id, agency_box.c.kind == "agency")
        )
        .join(
            agency_addr,
            and_(agency_addr.c.mailbox_id == agency_box.c.id, agency_addr.c.kind == "primary"),
        )
        .order_by(people.c.id)
    )


async def load_people(conn: AsyncConnection, cfg: Config, *where: Any) -> list[Person]:
    """Officials matching ``where`` with their address, agency and aliases."""
    query = _people_query().where(*where)
    rows = (await conn.execute(query)).all()
    aliases = await names.aliases_by_mailbox(conn, cfg, [r[9] for r in rows])
    return [
        Person(
            id=r[0],
            full_name=r[1],
            address=names.full_address(r[2], cfg),
            agency_name=r[3],
            agency_address=names.full_address(r[4], cfg),
            position=r[5],
            department=r[6],
            status=r[7],
            mailbox_status=r[8],
            aliases=aliases.get(r[9], ()),
        )
        for r in rows
    ]


async def _find_person(
    conn: AsyncConnection, cfg: Config, ref: str, *, for_change: bool = False
) -> tuple[int, int, str]:
    """(person id, mailbox id, primary local part) of the personal mailbox ``ref`` names.

    ``for_change`` requires the person to be active and keeps their row locked until
    the transaction ends, so a concurrent removal and change of the same person happen
    one after the other.
    """
    box = await names.find_mailbox(conn, cfg, ref)
    if box.kind != "personal" or box.person_id is None:
        raise NotFound(
            f"{names.full_address(box.local_part, cfg)} là hộp thư cơ quan, không phải cá nhân.",
            f"{names.full_address(box.local_part, cfg)} is an agency mailbox, not a person's.",
        )
    if for_change:
        status = await conn.scalar(
            select(people.c.status).where(people.c.id == box.person_id).with_for_update()
        )
        if status != "active":
            raise Conflict(
                f"Hộp thư {names.full_address(box.local_part, cfg)} đã bị xóa.",
                f"Mailbox {names.full_address(box.local_part, cfg)} has been removed.",
            )
    return box.person_id, box.mailbox_id, box.local_part


async def add_person(
    db: Database,
    cfg: Config,
    *,
    agency: str,
    name: str,
    position: str = "",
    department: str = "",
    address: str | None = None,
    password: str | None = None,
    actor: str = "cli",
) -> CreatedPerson:
    """Create an official and their personal mailbox (R2, R5).

    The address is the regulation's form unless ``address`` is given; if it is taken,
    AddressTaken carries free proposals and nothing is written. Without ``password``
    a random one is generated, returned once, and must be changed at first login (R7).
    """
    parts, full_name = clean_full_name(name)
    position = clean_field(position, "Chức vụ", "Position")
    department = clean_field(department, "Bộ phận công tác", "Department")
    local = (
        names.requested_local_part(address, cfg) if address else regulation_local_part(full_name)
    )
    initial = None if password is not None else generate_initial_password()
    password_hash = await asyncio.to_thread(hash_password, initial or str(password))
    async with db.read() as conn:  # for proposals if the write loses a race
        propose = proposer(cfg, full_name, await _agency(conn, cfg, agency))
    async with names.claiming(db, cfg, propose) as (conn, claim):
        claim.local_part = local
        owner = await active_agency(conn, cfg, agency)
        dom = await names.domain_id(conn, cfg)
        if await names.is_taken(conn, dom, local):
            raise AddressTaken(names.full_address(local, cfg), await propose(conn, local))
        person_id = await insert_person(
            conn, parts, full_name, owner.id, position, department, local
        )
        await create_mailbox(
            conn,
            dom,
            local,
            person_id=person_id,
            quota_bytes=cfg.personal_quota_bytes,
            password_hash=password_hash,
            must_change_password=initial is not None,
        )
        await audit.record(
            conn,
            actor,
            "person.add",
            names.full_address(local, cfg),
            name=full_name,
            agency=owner.address,
            position=position,
            department=department,
        )
        person = (await load_people(conn, cfg, people.c.id == person_id))[0]
    return CreatedPerson(person, initial)


async def insert_person(
    conn: AsyncConnection,
    parts: NameParts,
    full_name: str,
    agency_id: int,
    position: str,
    department: str,
    local: str,
) -> int:
    person_id: int = (
        await conn.execute(
            insert(people)
            .values(
                full_name=full_name,
                surname=parts.surname,
                middle_name=parts.middle,
                given_name=parts.given,
                agency_id=agency_id,
                position=position,
                department=department,
                status="active",
                search_text=person_search_text(full_name, local, position, department),
                created_at=audit.now(),
            )
            .returning(people.c.id)
        )
    ).scalar_one()
    return person_id


async def show_person(db: Database, cfg: Config, ref: str) -> Person:
    async with db.read() as conn:
        person_id, _, _ = await _find_person(conn, cfg, ref)
        return (await load_people(conn, cfg, people.c.id == person_id))[0]


async def suggest_addresses(
    db: Database, cfg: Config, *, name: str, agency: str | None = None
) -> list[str]:
    """Free addresses for ``name``, best first: the regulation's form when it is free."""
    _, full_name = clean_full_name(name)
    async with db.read() as conn:
        owner = await _agency(conn, cfg, agency) if agency else None
        return await proposer(cfg, full_name, owner)(conn, "")


async def move_person(
    db: Database, cfg: Config, ref: str, *, to: str, actor: str = "cli"
) -> Person:
    """Move an official to another agency; the address never changes (R2)."""
    async with db.write() as conn:
        return await move_person_in(conn, cfg, ref, to=to, actor=actor)


async def move_person_in(
    conn: AsyncConnection, cfg: Config, ref: str, *, to: str, actor: str, source: str = ""
) -> Person:
    """move_person inside the caller's transaction (a Mẫu 02 transfer in, R8)."""
    person_id, mailbox_id, _ = await _find_person(conn, cfg, ref, for_change=True)
    before = (await load_people(conn, cfg, people.c.id == person_id))[0]
    target = await active_agency(conn, cfg, to)
    await conn.execute(update(people).where(people.c.id == person_id).values(agency_id=target.id))
    ended = await end_agency_powers(conn, person_id, mailbox_id, keep_agency=target.id)
    moved = (await load_people(conn, cfg, people.c.id == person_id))[0]
    await audit.record(
        conn,
        actor,
        "person.move",
        moved.address,
        source=source,
        to=moved.agency_address,
        before={"agency": before.agency_address},
        **ended,
    )
    return moved


async def update_person(
    db: Database,
    cfg: Config,
    ref: str,
    *,
    position: str | None = None,
    department: str | None = None,
    address: str | None = None,
    actor: str = "cli",
) -> Person:
    """Mẫu 02 changes: position (1), department (2), address (3, old one kept as alias)."""
    if position is None and department is None and address is None:
        raise InvalidInput(
            "Không có gì để thay đổi: hãy cho --position, --department hoặc --address.",
            "Nothing to change: give --position, --department or --address.",
        )
    new_local = names.requested_local_part(address, cfg) if address is not None else None
    async with db.read() as conn:  # for proposals if the write loses a race
        person_id, _, _ = await _find_person(conn, cfg, ref)
        before = (await load_people(conn, cfg, people.c.id == person_id))[0]
        propose = proposer(cfg, before.full_name, await _agency(conn, cfg, before.agency_address))
    async with names.claiming(db, cfg, propose) as (conn, claim):
        claim.local_part = new_local or ""
        return await change_person(
            conn,
            cfg,
            ref,
            position=position,
            department=department,
            new_local=new_local,
            actor=actor,
            propose=propose,
        )


async def change_person(
    conn: AsyncConnection,
    cfg: Config,
    ref: str,
    *,
    position: str | None = None,
    department: str | None = None,
    new_local: str | None = None,
    actor: str,
    source: str = "",
    propose: names.Proposer | None = None,
) -> Person:
    """update_person inside the caller's transaction (a Mẫu 02 approval changes many
    people in one). Raises AddressTaken, with proposals when ``propose`` is given."""
    person_id, mailbox_id, local = await _find_person(conn, cfg, ref, for_change=True)
    dom = await names.domain_id(conn, cfg)
    current = (await load_people(conn, cfg, people.c.id == person_id))[0]
    changes: dict[str, str] = {}
    if position is not None:
        changes["position"] = clean_field(position, "Chức vụ", "Position")
    if department is not None:
        changes["department"] = clean_field(department, "Bộ phận công tác", "Department")
    if new_local is not None and new_local != local:
        own = {a.split("@")[0] for a in current.aliases}
        if new_local not in own and await names.is_taken(conn, dom, new_local):
            proposals = await propose(conn, new_local) if propose is not None else []
            raise AddressTaken(names.full_address(new_local, cfg), proposals)
        await names.change_primary(conn, dom, mailbox_id, new_local)
        local = new_local
    search = person_search_text(
        current.full_name,
        local,
        changes.get("position", current.position),
        changes.get("department", current.department),
    )
    await conn.execute(
        update(people).where(people.c.id == person_id).values(search_text=search, **changes)
    )
    before = {k: getattr(current, k) for k in changes}
    await audit.record(
        conn,
        actor,
        "person.update",
        names.full_address(local, cfg),
        source=source,
        old=current.address,
        before=before,
        **changes,
    )
    return (await load_people(conn, cfg, people.c.id == person_id))[0]


async def remove_person(db: Database, cfg: Config, ref: str, *, actor: str = "cli") -> Person:
    """Remove an official's mailbox (R9, Mẫu 03). The address stays taken, never reissued
    to someone else, so mail for the old holder cannot reach a newcomer."""
    async with db.write() as conn:
        return await remove_person_in(conn, cfg, ref, actor=actor)


async def remove_person_in(
    conn: AsyncConnection, cfg: Config, ref: str, *, actor: str, source: str = "", **why: Any
) -> Person:
    """remove_person inside the caller's transaction; ``why`` goes to the audit entry."""
    person_id, mailbox_id, local = await _find_person(conn, cfg, ref, for_change=True)
    stamp = audit.now()
    await conn.execute(
        update(people).where(people.c.id == person_id).values(status="removed", removed_at=stamp)
    )
    await conn.execute(
        update(mailboxes)
        .where(mailboxes.c.id == mailbox_id)
        .values(status="deleted", disabled_at=stamp)
    )
    ended = await end_agency_powers(conn, person_id, mailbox_id, keep_agency=None)
    await audit.record(
        conn,
        actor,
        "person.remove",
        names.full_address(local, cfg),
        source=source,
        **why,
        **ended,
    )
    return (await load_people(conn, cfg, people.c.id == person_id))[0]


async def end_agency_powers(
    conn: AsyncConnection, person_id: int, mailbox_id: int, *, keep_agency: int | None
) -> dict[str, Any]:
    """What a person held at an agency they no longer work for ends with the move (or, with
    ``keep_agency`` None, the removal): IT officer and head roles elsewhere, delegations on
    other agencies' mailboxes (R22); a removal also ends every role and API token.
    Returns what ended, for the audit entry."""
    stale_roles = roles.c.mailbox_id == mailbox_id
    if keep_agency is not None:
        stale_roles = and_(
            stale_roles, roles.c.agency_id.is_not(None), roles.c.agency_id != keep_agency
        )
    ended_roles = [
        {"role": r.role, "agency_id": r.agency_id}
        for r in await conn.execute(select(roles.c.role, roles.c.agency_id).where(stale_roles))
    ]
    await conn.execute(delete(roles).where(stale_roles))
    other_boxes = select(mailboxes.c.id).where(mailboxes.c.kind == "agency")
    if keep_agency is not None:
        other_boxes = other_boxes.where(mailboxes.c.agency_id != keep_agency)
    revoked = await conn.execute(
        update(delegations)
        .where(
            delegations.c.person_id == person_id,
            delegations.c.revoked_at.is_(None),
            delegations.c.mailbox_id.in_(other_boxes.scalar_subquery()),
        )
        .values(revoked_at=audit.now())
    )
    tokens = 0
    if keep_agency is None:
        tokens = (
            await conn.execute(
                update(api_tokens)
                .where(api_tokens.c.mailbox_id == mailbox_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=audit.now())
            )
        ).rowcount
    ended: dict[str, Any] = {}
    if ended_roles:
        ended["ended_roles"] = ended_roles
    if revoked.rowcount:
        ended["ended_delegations"] = revoked.rowcount
    if tokens:
        ended["revoked_tokens"] = tokens
    return ended
