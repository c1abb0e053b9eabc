"""Agencies and their agency mailboxes (R2, R4, R8, R9): one service function per use case."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import Config
from govmail.core.errors import AddressTaken, Conflict, InvalidInput, NotFound
from govmail.core.naming import (
    agency_local_part,
    propose_agency_abbreviation,
    validate_local_part,
)
from govmail.core.vietnamese import fold, normalize_name
from govmail.directory import addresses as names
from govmail.directory.mailboxes import create_mailbox
from govmail.directory.model import Agency
from govmail.store import audit
from govmail.store.database import Database
from govmail.store.schema import addresses, agencies, mailboxes, people

MAX_NAME = 300


@dataclass(frozen=True)
class AgencyDetail:
    agency: Agency
    children: list[Agency]
    active_people: int

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.agency.as_dict(),
            "children": [c.as_dict() for c in self.children],
            "active_people": self.active_people,
        }


def _clean_name(name: str) -> str:
    cleaned = normalize_name(name)
    if not cleaned:
        raise InvalidInput("Tên cơ quan không được để trống.", "Agency name must not be empty.")
    if len(cleaned) > MAX_NAME:
        raise InvalidInput(
            f"Tên cơ quan dài quá {MAX_NAME} ký tự.",
            f"Agency name is longer than {MAX_NAME} characters.",
        )
    return cleaned


def _search_text(name: str, abbr: str, local_part: str) -> str:
    return fold(f"{name} {abbr} {local_part}")


def _numbered(cfg: Config) -> names.Proposer:
    """Free numbered variants of an agency address (agencies have no name-based forms)."""

    async def propose(conn: AsyncConnection, local: str) -> list[str]:
        taken = await names.taken_local_parts(conn, await names.domain_id(conn, cfg))
        return [f"{local}{n}" for n in range(2, 100) if f"{local}{n}" not in taken][:5]

    return propose


async def find_agency_id(conn: AsyncConnection, cfg: Config, ref: str) -> int:
    """The agency whose agency mailbox has the address ``ref`` (current or old)."""
    box = await names.find_mailbox(conn, cfg, ref)
    if box.kind != "agency" or box.agency_id is None:
        raise NotFound(
            f"{names.full_address(box.local_part, cfg)} là hộp thư cá nhân, không phải cơ quan.",
            f"{names.full_address(box.local_part, cfg)} is a personal mailbox, not an agency.",
        )
    return box.agency_id


async def load_agencies(conn: AsyncConnection, cfg: Config, *where: Any) -> list[Agency]:
    """Agencies matching ``where`` with their addresses, parent and aliases."""
    own = addresses.alias("own")
    parent = agencies.alias("parent")
    parent_box = mailboxes.alias("parent_box")
    parent_addr = addresses.alias("parent_addr")
    query = (
        select(
            agencies.c.id,
            agencies.c.name,
            agencies.c.abbr,
            own.c.local_part,
            parent_addr.c.local_part,
            agencies.c.external,
            agencies.c.status,
            mailboxes.c.status,
            mailboxes.c.id,
            parent.c.name,
        )
        .join(mailboxes, and_(mailboxes.c.agency_id == agencies.c.id, mailboxes.c.kind == "agency"))
        .join(own, and_(own.c.mailbox_id == mailboxes.c.id, own.c.kind == "primary"))
        .outerjoin(parent, parent.c.id == agencies.c.parent_id)
        .outerjoin(
            parent_box,
            and_(parent_box.c.agency_id == agencies.c.parent_id, parent_box.c.kind == "agency"),
        )
        .outerjoin(
            parent_addr,
            and_(parent_addr.c.mailbox_id == parent_box.c.id, parent_addr.c.kind == "primary"),
        )
        .where(*where)
        .order_by(agencies.c.id)
    )
    rows = (await conn.execute(query)).all()
    aliases = await names.aliases_by_mailbox(conn, cfg, [r[8] for r in rows])
    return [
        Agency(
            id=r[0],
            name=r[1],
            abbr=r[2],
            address=names.full_address(r[3], cfg),
            parent_address=names.full_address(r[4], cfg) if r[4] else None,
            external=bool(r[5]),
            status=r[6],
            mailbox_status=r[7],
            parent_name=r[9],
            aliases=aliases.get(r[8], ()),
        )
        for r in rows
    ]


async def add_agency(
    db: Database,
    cfg: Config,
    *,
    name: str,
    abbr: str | None = None,
    parent: str | None = None,
    external: bool = False,
    address: str | None = None,
    actor: str = "cli",
) -> Agency:
    """Create an agency and its agency mailbox (R2, R4); returns it with its address.

    Without ``abbr`` the abbreviation is proposed from the name; with ``parent`` the
    address is ``<abbr>_<parent address>`` unless ``address`` says otherwise.
    Raises AddressTaken (with free proposals) if the address is in use.
    """
    async with names.claiming(db, cfg, _numbered(cfg)) as (conn, claim):
        return await create_agency(
            conn,
            cfg,
            name=name,
            abbr=abbr,
            parent=parent,
            external=external,
            address=address,
            actor=actor,
            claim=claim,
        )


async def create_agency(
    conn: AsyncConnection,
    cfg: Config,
    *,
    name: str,
    abbr: str | None,
    parent: str | None,
    external: bool,
    address: str | None,
    actor: str,
    claim: names.Claim | None = None,
) -> Agency:
    """add_agency inside the caller's transaction (the demo province uses one for all)."""
    name = _clean_name(name)
    abbr = validate_local_part(abbr, frozenset()) if abbr else propose_agency_abbreviation(name)
    dom = await names.domain_id(conn, cfg)
    parent_id = None
    parent_local = None
    if parent:
        parent_id = await find_agency_id(conn, cfg, parent)
        parent_local = (await lock_active_agency(conn, cfg, parent_id)).address.split("@")[0]
    local = (
        names.requested_local_part(address, cfg)
        if address
        else validate_local_part(agency_local_part(abbr, parent_local), cfg.reserved_local_parts)
    )
    if claim is not None:
        claim.local_part = local
    if await names.is_taken(conn, dom, local):
        raise AddressTaken(names.full_address(local, cfg), await _numbered(cfg)(conn, local))
    stamp = audit.now()
    agency_id = (
        await conn.execute(
            insert(agencies)
            .values(
                name=name,
                abbr=abbr,
                parent_id=parent_id,
                external=external,
                status="active",
                search_text=_search_text(name, abbr, local),
                created_at=stamp,
            )
            .returning(agencies.c.id)
        )
    ).scalar_one()
    await create_mailbox(conn, dom, local, agency_id=agency_id, quota_bytes=cfg.agency_quota_bytes)
    await audit.record(
        conn,
        actor,
        "agency.add",
        names.full_address(local, cfg),
        name=name,
        abbr=abbr,
        parent=parent_local,
        external=external,
    )
    return (await load_agencies(conn, cfg, agencies.c.id == agency_id))[0]


async def lock_active_agency(conn: AsyncConnection, cfg: Config, agency_id: int) -> Agency:
    """Lock the agency's row until the transaction ends and require it to be active, so
    nobody joins an agency that a concurrent transaction is dissolving."""
    await conn.execute(select(agencies.c.id).where(agencies.c.id == agency_id).with_for_update())
    agency = (await load_agencies(conn, cfg, agencies.c.id == agency_id))[0]
    if agency.status != "active":
        raise Conflict(
            f"Cơ quan {agency.address} đã giải thể.", f"Agency {agency.address} is dissolved."
        )
    return agency


async def list_agencies(
    db: Database, cfg: Config, *, include_dissolved: bool = False
) -> list[Agency]:
    """Every agency in tree order (parents before children), with its depth."""
    async with db.read() as conn:
        where = [] if include_dissolved else [agencies.c.status == "active"]
        rows = await load_agencies(conn, cfg, *where)
    by_parent: dict[str | None, list[Agency]] = {}
    present = {a.address for a in rows}
    for agency in rows:
        parent = agency.parent_address if agency.parent_address in present else None
        by_parent.setdefault(parent, []).append(agency)
    ordered: list[Agency] = []

    def walk(parent: str | None, depth: int) -> None:
        for child in sorted(by_parent.get(parent, []), key=lambda a: fold(a.name)):
            ordered.append(replace(child, depth=depth))
            walk(child.address, depth + 1)

    walk(None, 0)
    return ordered


async def show_agency(db: Database, cfg: Config, ref: str) -> AgencyDetail:
    async with db.read() as conn:
        agency_id = await find_agency_id(conn, cfg, ref)
        agency = (await load_agencies(conn, cfg, agencies.c.id == agency_id))[0]
        children = await load_agencies(conn, cfg, agencies.c.parent_id == agency_id)
        count = await conn.scalar(
            select(func.count())
            .select_from(people)
            .where(people.c.agency_id == agency_id, people.c.status == "active")
        )
    return AgencyDetail(agency, children, int(count or 0))


async def rename_agency(
    db: Database,
    cfg: Config,
    ref: str,
    *,
    name: str,
    abbr: str | None = None,
    address: str | None = None,
    actor: str = "cli",
) -> Agency:
    """Rename an agency (R8); a changed address keeps the old one as an alias.

    The abbreviation follows the new name only if the old one was the name's own
    proposal (Sở Thông tin và Truyền thông ``stttt`` → Sở Khoa học và Công nghệ
    ``skhcn``); an abbreviation the centre chose (``ttr``) stays unless ``abbr`` or
    ``address`` is given, and correcting a typo in the name never moves the address.
    """
    name = _clean_name(name)
    async with names.claiming(db, cfg, _numbered(cfg)) as (conn, claim):
        dom = await names.domain_id(conn, cfg)
        agency_id = await find_agency_id(conn, cfg, ref)
        current = await lock_active_agency(conn, cfg, agency_id)
        parent_local = current.parent_address.split("@")[0] if current.parent_address else None
        old_local = current.address.split("@")[0]
        if abbr:
            abbr = validate_local_part(abbr, frozenset())
        elif _name_derived(current, old_local, parent_local):
            abbr = propose_agency_abbreviation(name)
        else:
            abbr = current.abbr
        if address:
            local = names.requested_local_part(address, cfg)
        elif abbr == current.abbr:
            local = old_local
        else:
            local = validate_local_part(
                agency_local_part(abbr, parent_local), cfg.reserved_local_parts
            )
        claim.local_part = local
        if local != old_local:
            own = {a.split("@")[0] for a in current.aliases}
            if local not in own and await names.is_taken(conn, dom, local):
                raise AddressTaken(
                    names.full_address(local, cfg), await _numbered(cfg)(conn, local)
                )
            mailbox_id: int = (
                await conn.execute(
                    select(mailboxes.c.id).where(
                        mailboxes.c.agency_id == agency_id, mailboxes.c.kind == "agency"
                    )
                )
            ).scalar_one()
            await names.change_primary(conn, dom, mailbox_id, local)
        await conn.execute(
            update(agencies)
            .where(agencies.c.id == agency_id)
            .values(name=name, abbr=abbr, search_text=_search_text(name, abbr, local))
        )
        await audit.record(
            conn,
            actor,
            "agency.rename",
            names.full_address(local, cfg),
            old_name=current.name,
            name=name,
            old_address=current.address,
        )
        return (await load_agencies(conn, cfg, agencies.c.id == agency_id))[0]


def _name_derived(agency: Agency, local: str, parent_local: str | None) -> bool:
    """Whether the agency's address is the one its name proposes (so may follow a new
    name), rather than one the centre chose."""
    try:
        proposed = propose_agency_abbreviation(agency.name)
    except InvalidInput:
        return False
    return agency.abbr == proposed and local == agency_local_part(proposed, parent_local)


async def move_agency(
    db: Database, cfg: Config, ref: str, *, parent: str | None, actor: str = "cli"
) -> Agency:
    """Put an agency under another parent (or at the top); its address does not change."""
    async with db.write() as conn:
        # One tree change at a time: two crossing moves (a under b, b under a) could
        # each pass the cycle check below and together make a cycle.
        await db.serialize(conn, "govmail.agency-tree")
        agency_id = await find_agency_id(conn, cfg, ref)
        await lock_active_agency(conn, cfg, agency_id)
        parent_id = await find_agency_id(conn, cfg, parent) if parent else None
        if parent_id is not None:
            await lock_active_agency(conn, cfg, parent_id)
        # Walk up from the new parent: reaching the agency itself would make a cycle.
        cursor, seen = parent_id, set()
        while cursor is not None and cursor not in seen:
            if cursor == agency_id:
                raise Conflict(
                    "Không thể chuyển một cơ quan vào chính nó hoặc cơ quan cấp dưới của nó.",
                    "An agency cannot be moved under itself or one of its sub-agencies.",
                )
            seen.add(cursor)
            cursor = await conn.scalar(select(agencies.c.parent_id).where(agencies.c.id == cursor))
        await conn.execute(
            update(agencies).where(agencies.c.id == agency_id).values(parent_id=parent_id)
        )
        moved = (await load_agencies(conn, cfg, agencies.c.id == agency_id))[0]
        await audit.record(conn, actor, "agency.move", moved.address, parent=moved.parent_address)
        return moved


async def dissolve_agency(db: Database, cfg: Config, ref: str, *, actor: str = "cli") -> Agency:
    """Dissolve an agency (R9): its mailbox is disabled, its address stays reserved.

    Refused while it still has active people or active sub-agencies: they must be moved
    or removed first, so nobody is left in a dissolved agency. The agency's row is
    locked first, and adding a person or sub-agency locks it too, so neither can slip
    in between the count and the dissolution.
    """
    async with db.write() as conn:
        agency_id = await find_agency_id(conn, cfg, ref)
        current = await lock_active_agency(conn, cfg, agency_id)
        staff = await conn.scalar(
            select(func.count())
            .select_from(people)
            .where(people.c.agency_id == agency_id, people.c.status == "active")
        )
        children = await conn.scalar(
            select(func.count())
            .select_from(agencies)
            .where(agencies.c.parent_id == agency_id, agencies.c.status == "active")
        )
        if staff or children:
            raise Conflict(
                f"Cơ quan {current.address} còn {staff} cán bộ và {children} cơ quan trực thuộc;"
                " hãy chuyển hoặc xóa trước khi giải thể.",
                f"Agency {current.address} still has {staff} people and {children} sub-agencies;"
                " move or remove them before dissolving it.",
            )
        stamp = audit.now()
        await conn.execute(
            update(agencies)
            .where(agencies.c.id == agency_id)
            .values(status="dissolved", dissolved_at=stamp)
        )
        await conn.execute(
            update(mailboxes)
            .where(mailboxes.c.agency_id == agency_id, mailboxes.c.kind == "agency")
            .values(status="disabled", disabled_at=stamp)
        )
        await audit.record(conn, actor, "agency.dissolve", current.address)
        return (await load_agencies(conn, cfg, agencies.c.id == agency_id))[0]
