"""Agencies and their agency mailboxes (R2, R4, R8, R9): one service function per use case."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
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
from govmail.directory.model import Agency
from govmail.store import audit
from govmail.store.database import Database, is_unique_violation
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


async def _numbered_proposals(conn: AsyncConnection, dom: int, local: str) -> list[str]:
    taken = await names.taken_local_parts(conn, dom)
    return [f"{local}{n}" for n in range(2, 100) if f"{local}{n}" not in taken][:5]


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
    name = _clean_name(name)
    abbr = validate_local_part(abbr, frozenset()) if abbr else propose_agency_abbreviation(name)
    local = ""
    try:
        async with db.write() as conn:
            dom = await names.domain_id(conn, cfg)
            parent_id = None
            parent_local = None
            if parent:
                parent_id = await find_agency_id(conn, cfg, parent)
                parent_row = await load_agencies(conn, cfg, agencies.c.id == parent_id)
                if parent_row[0].status != "active":
                    raise Conflict(
                        f"Cơ quan cấp trên {parent_row[0].address} đã giải thể.",
                        f"Parent agency {parent_row[0].address} is dissolved.",
                    )
                parent_local = parent_row[0].address.split("@")[0]
            local = validate_local_part(
                address.split("@")[0] if address else agency_local_part(abbr, parent_local),
                cfg.reserved_local_parts,
            )
            if await names.is_taken(conn, dom, local):
                raise AddressTaken(
                    names.full_address(local, cfg), await _numbered_proposals(conn, dom, local)
                )
            stamp = audit.now()
            agency_id = await conn.scalar(
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
            mailbox_id = await conn.scalar(
                insert(mailboxes)
                .values(
                    kind="agency",
                    agency_id=agency_id,
                    status="active",
                    quota_bytes=cfg.agency_quota_bytes,
                    must_change_password=True,
                    created_at=stamp,
                )
                .returning(mailboxes.c.id)
            )
            await names.claim(conn, dom, local, mailbox_id, "primary")
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
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        # Someone else took the address between our check and our insert.
        async with db.read() as conn:
            dom = await names.domain_id(conn, cfg)
            raise AddressTaken(
                names.full_address(local, cfg), await _numbered_proposals(conn, dom, local)
            ) from None


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
            ordered.append(Agency(**{**child.as_dict(), "depth": depth}))
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
    """Rename an agency (R8). A new address follows the new name; the old one stays an alias.

    The address is recomputed from the new abbreviation (proposed from the new name
    unless given) and the current parent; if it comes out unchanged, only the name changes.
    """
    name = _clean_name(name)
    abbr = validate_local_part(abbr, frozenset()) if abbr else propose_agency_abbreviation(name)
    async with db.write() as conn:
        dom = await names.domain_id(conn, cfg)
        agency_id = await find_agency_id(conn, cfg, ref)
        current = (await load_agencies(conn, cfg, agencies.c.id == agency_id))[0]
        if current.status != "active":
            raise Conflict(
                f"Cơ quan {current.address} đã giải thể, không đổi tên được.",
                f"Agency {current.address} is dissolved and cannot be renamed.",
            )
        parent_local = current.parent_address.split("@")[0] if current.parent_address else None
        old_local = current.address.split("@")[0]
        local = validate_local_part(
            address.split("@")[0] if address else agency_local_part(abbr, parent_local),
            cfg.reserved_local_parts,
        )
        mailbox_id: int = (
            await conn.execute(
                select(mailboxes.c.id).where(
                    mailboxes.c.agency_id == agency_id, mailboxes.c.kind == "agency"
                )
            )
        ).scalar_one()
        if local != old_local:
            own = {a.split("@")[0] for a in current.aliases}
            if local not in own and await names.is_taken(conn, dom, local):
                raise AddressTaken(
                    names.full_address(local, cfg), await _numbered_proposals(conn, dom, local)
                )
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


async def move_agency(
    db: Database, cfg: Config, ref: str, *, parent: str | None, actor: str = "cli"
) -> Agency:
    """Put an agency under another parent (or at the top); its address does not change."""
    async with db.write() as conn:
        agency_id = await find_agency_id(conn, cfg, ref)
        parent_id = await find_agency_id(conn, cfg, parent) if parent else None
        # Walk up from the new parent: reaching the agency itself would make a cycle.
        cursor = parent_id
        while cursor is not None:
            if cursor == agency_id:
                raise Conflict(
                    "Không thể chuyển một cơ quan vào chính nó hoặc cơ quan cấp dưới của nó.",
                    "An agency cannot be moved under itself or one of its sub-agencies.",
                )
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
    or removed first, so nobody is left in a dissolved agency.
    """
    async with db.write() as conn:
        agency_id = await find_agency_id(conn, cfg, ref)
        current = (await load_agencies(conn, cfg, agencies.c.id == agency_id))[0]
        if current.status == "dissolved":
            raise Conflict(
                f"Cơ quan {current.address} đã giải thể trước đó.",
                f"Agency {current.address} is already dissolved.",
            )
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
