"""Officials and their personal mailboxes (R2, R5, R7–R9): one service function per use case."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import MB, Config
from govmail.core.errors import AddressTaken, Conflict, InvalidInput, NotFound
from govmail.core.naming import (
    personal_local_part,
    propose_personal_addresses,
    validate_local_part,
)
from govmail.core.vietnamese import NameParts, fold, split_name
from govmail.directory import addresses as names
from govmail.directory.agencies import find_agency_id
from govmail.directory.model import CreatedPerson, Person
from govmail.directory.passwords import generate_initial_password, hash_password
from govmail.store import audit
from govmail.store.database import Database, is_unique_violation
from govmail.store.schema import addresses, agencies, mailboxes, people

MAX_FIELD = 200
# R17: at least 500 MB per agency mailbox and 100 MB per personal mailbox.
MIN_QUOTA_MB = {"agency": 500, "personal": 100}


def person_search_text(full_name: str, local_part: str, position: str, department: str) -> str:
    return fold(f"{full_name} {local_part} {position} {department}")


def joined_name(parts: NameParts) -> str:
    """The stored full name: the normalised parts, single-spaced."""
    return " ".join(w for w in (parts.surname, parts.middle, parts.given) if w)


def clean_field(value: str | None, label_vi: str, label_en: str) -> str:
    cleaned = " ".join((value or "").split())
    if len(cleaned) > MAX_FIELD:
        raise InvalidInput(
            f"{label_vi} dài quá {MAX_FIELD} ký tự.",
            f"{label_en} is longer than {MAX_FIELD} characters.",
        )
    return cleaned


async def agency_suffixes(conn: AsyncConnection, cfg: Config, agency_id: int) -> list[str]:
    """The agency's abbreviation, then its address if different.

    ``["ttr"]`` for Thanh tra; ``["pvhtt", "pvhtt_cl"]`` for a commune's sub-unit.
    """
    row = (
        await conn.execute(
            select(agencies.c.abbr, addresses.c.local_part)
            .join(
                mailboxes,
                and_(mailboxes.c.agency_id == agencies.c.id, mailboxes.c.kind == "agency"),
            )
            .join(
                addresses,
                and_(addresses.c.mailbox_id == mailboxes.c.id, addresses.c.kind == "primary"),
            )
            .where(agencies.c.id == agency_id)
        )
    ).one()
    return [row[0]] if row[0] == row[1] else [row[0], row[1]]


async def active_agency_id(conn: AsyncConnection, cfg: Config, ref: str) -> int:
    agency_id = await find_agency_id(conn, cfg, ref)
    status = await conn.scalar(select(agencies.c.status).where(agencies.c.id == agency_id))
    if status != "active":
        raise Conflict(f"Cơ quan {ref} đã giải thể.", f"Agency {ref} is dissolved.")
    return agency_id


async def _proposals(
    conn: AsyncConnection, cfg: Config, full_name: str, agency_id: int | None
) -> list[str]:
    dom = await names.domain_id(conn, cfg)
    taken = await names.taken_local_parts(conn, dom)
    suffixes = await agency_suffixes(conn, cfg, agency_id) if agency_id else []
    return propose_personal_addresses(
        full_name, suffixes, taken.__contains__, reserved=cfg.reserved_local_parts
    )


async def load_people(conn: AsyncConnection, cfg: Config, *where: Any) -> list[Person]:
    """Officials matching ``where`` with their address, agency and aliases."""
    own = addresses.alias("own")
    agency_box = mailboxes.alias("agency_box")
    agency_addr = addresses.alias("agency_addr")
    query = (
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
        .where(*where)
        .order_by(people.c.id)
    )
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


async def _find_person(conn: AsyncConnection, cfg: Config, ref: str) -> tuple[int, int, str]:
    """(person id, mailbox id, primary local part) of the personal mailbox ``ref`` names."""
    box = await names.find_mailbox(conn, cfg, ref)
    if box.kind != "personal" or box.person_id is None:
        raise NotFound(
            f"{names.full_address(box.local_part, cfg)} là hộp thư cơ quan, không phải cá nhân.",
            f"{names.full_address(box.local_part, cfg)} is an agency mailbox, not a person's.",
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
    parts = split_name(name)
    full_name = joined_name(parts)
    position = clean_field(position, "Chức vụ", "Position")
    department = clean_field(department, "Bộ phận công tác", "Department")
    initial = None if password else generate_initial_password()
    password_hash = await asyncio.to_thread(hash_password, password or str(initial))
    local = validate_local_part(
        address.split("@")[0] if address else personal_local_part(full_name),
        cfg.reserved_local_parts,
    )
    agency_id: int | None = None
    try:
        async with db.write() as conn:
            agency_id = await active_agency_id(conn, cfg, agency)
            dom = await names.domain_id(conn, cfg)
            if await names.is_taken(conn, dom, local):
                raise AddressTaken(
                    names.full_address(local, cfg),
                    await _proposals(conn, cfg, full_name, agency_id),
                )
            person_id = await insert_person(
                conn, parts, full_name, agency_id, position, department, local
            )
            mailbox_id = await conn.scalar(
                insert(mailboxes)
                .values(
                    kind="personal",
                    person_id=person_id,
                    status="active",
                    quota_bytes=cfg.personal_quota_bytes,
                    password_hash=password_hash,
                    must_change_password=initial is not None,
                    created_at=audit.now(),
                )
                .returning(mailboxes.c.id)
            )
            await names.claim(conn, dom, local, mailbox_id, "primary")
            await audit.record(
                conn,
                actor,
                "person.add",
                names.full_address(local, cfg),
                name=full_name,
                agency=agency,
                position=position,
                department=department,
            )
            person = (await load_people(conn, cfg, people.c.id == person_id))[0]
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        async with db.read() as conn:
            raise AddressTaken(
                names.full_address(local, cfg),
                await _proposals(conn, cfg, full_name, agency_id),
            ) from None
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
    full_name = joined_name(split_name(name))
    async with db.read() as conn:
        agency_id = await find_agency_id(conn, cfg, agency) if agency else None
        return await _proposals(conn, cfg, full_name, agency_id)


async def move_person(
    db: Database, cfg: Config, ref: str, *, to: str, actor: str = "cli"
) -> Person:
    """Move an official to another agency; the address never changes (R2)."""
    async with db.write() as conn:
        person_id, _, local = await _find_person(conn, cfg, ref)
        agency_id = await active_agency_id(conn, cfg, to)
        await _require_active(conn, cfg, person_id, local)
        await conn.execute(
            update(people).where(people.c.id == person_id).values(agency_id=agency_id)
        )
        moved = (await load_people(conn, cfg, people.c.id == person_id))[0]
        await audit.record(conn, actor, "person.move", moved.address, to=moved.agency_address)
        return moved


async def _require_active(conn: AsyncConnection, cfg: Config, person_id: int, local: str) -> None:
    status = await conn.scalar(select(people.c.status).where(people.c.id == person_id))
    if status != "active":
        raise Conflict(
            f"Hộp thư {names.full_address(local, cfg)} đã bị xóa.",
            f"Mailbox {names.full_address(local, cfg)} has been removed.",
        )


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
    async with db.write() as conn:
        person_id, mailbox_id, local = await _find_person(conn, cfg, ref)
        await _require_active(conn, cfg, person_id, local)
        dom = await names.domain_id(conn, cfg)
        current = (await load_people(conn, cfg, people.c.id == person_id))[0]
        changes: dict[str, str] = {}
        if position is not None:
            changes["position"] = clean_field(position, "Chức vụ", "Position")
        if department is not None:
            changes["department"] = clean_field(department, "Bộ phận công tác", "Department")
        if address is not None:
            new_local = validate_local_part(address.split("@")[0], cfg.reserved_local_parts)
            own = {a.split("@")[0] for a in current.aliases}
            if new_local != local:
                if new_local not in own and await names.is_taken(conn, dom, new_local):
                    raise AddressTaken(
                        names.full_address(new_local, cfg),
                        await _proposals(conn, cfg, current.full_name, None),
                    )
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
        await audit.record(
            conn,
            actor,
            "person.update",
            names.full_address(local, cfg),
            old=current.address,
            **changes,
        )
        return (await load_people(conn, cfg, people.c.id == person_id))[0]


async def remove_person(db: Database, cfg: Config, ref: str, *, actor: str = "cli") -> Person:
    """Remove an official's mailbox (R9, Mẫu 03). The address stays taken, never reissued
    to someone else, so mail for the old holder cannot reach a newcomer."""
    async with db.write() as conn:
        person_id, mailbox_id, local = await _find_person(conn, cfg, ref)
        await _require_active(conn, cfg, person_id, local)
        stamp = audit.now()
        await conn.execute(
            update(people)
            .where(people.c.id == person_id)
            .values(status="removed", removed_at=stamp)
        )
        await conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == mailbox_id)
            .values(status="deleted", disabled_at=stamp)
        )
        await audit.record(conn, actor, "person.remove", names.full_address(local, cfg))
        return (await load_people(conn, cfg, people.c.id == person_id))[0]


async def reset_password(
    db: Database, cfg: Config, ref: str, *, password: str | None = None, actor: str = "cli"
) -> str | None:
    """Issue a new password (R7). Without ``password`` a random one is generated,
    returned once, and must be changed at the first login with it."""
    initial = None if password else generate_initial_password()
    password_hash = await asyncio.to_thread(hash_password, password or str(initial))
    async with db.write() as conn:
        box = await names.find_mailbox(conn, cfg, ref)
        if box.status != "active":
            raise Conflict(
                f"Hộp thư {names.full_address(box.local_part, cfg)} không hoạt động.",
                f"Mailbox {names.full_address(box.local_part, cfg)} is not active.",
            )
        await conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == box.mailbox_id)
            .values(password_hash=password_hash, must_change_password=initial is not None)
        )
        await audit.record(
            conn, actor, "mailbox.reset_password", names.full_address(box.local_part, cfg)
        )
    return initial


async def set_quota(
    db: Database, cfg: Config, ref: str, *, megabytes: int, actor: str = "cli"
) -> dict[str, Any]:
    """Set one mailbox's quota (R17). Never below the regulation's minimum for its kind."""
    async with db.write() as conn:
        box = await names.find_mailbox(conn, cfg, ref)
        minimum = MIN_QUOTA_MB[box.kind]
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
