"""Agencies and their agency mailboxes (R2, R4, R8, R9): one service function per use case."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
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
from govmail.store.schema import (
    addresses,
    agencies,
    api_tokens,
    delegations,
    mailboxes,
    people,
    roles,
)

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
        parent_agency = await lock_active_agency(conn, cfg, parent_id)
        parent_local = parent_agency.address.split("@")[0]
        # R10 follows the tree: a unit of an agency outside the scope is outside too.
        external = external or parent_agency.external
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
    found = await load_agencies(conn, cfg, agencies.c.id == agency_id)
    if not found:
        # Merged while we waited for the lock: its addresses now name the other agency.
        raise Conflict(
            "Cơ quan này đã giải thể và sáp nhập vào cơ quan khác.",
            "This agency was dissolved and merged into another one.",
        )
    agency = found[0]
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
    async with names.claiming(db, cfg, _numbered(cfg)) as (conn, claim):
        return await rename_agency_in(
            conn, cfg, ref, name=name, abbr=abbr, address=address, actor=actor, claim=claim
        )


async def rename_agency_in(
    conn: AsyncConnection,
    cfg: Config,
    ref: str,
    *,
    name: str,
    abbr: str | None = None,
    address: str | None = None,
    actor: str,
    source: str = "",
    claim: names.Claim | None = None,
) -> Agency:
    """rename_agency inside the caller's transaction (a Mẫu 02 approval)."""
    name = _clean_name(name)
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
        local = validate_local_part(agency_local_part(abbr, parent_local), cfg.reserved_local_parts)
    if claim is not None:
        claim.local_part = local
    if local != old_local:
        own = {a.split("@")[0] for a in current.aliases}
        if local not in own and await names.is_taken(conn, dom, local):
            raise AddressTaken(names.full_address(local, cfg), await _numbered(cfg)(conn, local))
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
        source=source,
        old_name=current.name,
        name=name,
        old_address=current.address,
        before={"name": current.name, "address": current.address},
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


async def merge_agency(
    db: Database,
    cfg: Config,
    source_ref: str,
    into_ref: str,
    *,
    actor: str = "cli",
    source: str = "cli",
) -> dict[str, Any]:
    """Merge the agency ``source_ref`` into ``into_ref`` in one transaction (a sáp nhập).

    The source's active officials move to the target, keeping their addresses (R2);
    its sub-agencies are put under the target; its agency mailbox is closed and every
    address it had becomes an alias of the target's agency mailbox, so mail to the old
    address reaches the new one; delegations of the old mailbox and the source's roles
    end; the source is dissolved. Refused for the same agency, a target inside the
    source's subtree, an agency that is not active, or a merge across the R10 scope
    (external and not). Returns {"merged", "into", "people", "children", "aliases"}.
    """
    async with db.write() as conn:
        # One tree change at a time, as in move_agency: the subtree check below must
        # still hold when the children are re-parented.
        await db.serialize(conn, "govmail.agency-tree")
        src_id = await find_agency_id(conn, cfg, source_ref)
        dst_id = await find_agency_id(conn, cfg, into_ref)
        if src_id == dst_id:
            raise InvalidInput(
                "Không thể sáp nhập một cơ quan vào chính nó.",
                "An agency cannot be merged into itself.",
            )
        # Rows locked in id order, so two opposite merges cannot deadlock.
        locked = {i: await lock_active_agency(conn, cfg, i) for i in sorted((src_id, dst_id))}
        src, dst = locked[src_id], locked[dst_id]
        await _refuse_merge_across(conn, src_id, dst_id, src, dst)
        src_box, dst_box = await _agency_mailbox_ids(conn, src_id, dst_id)
        stamp = audit.now()

        # Officials: the active ones are the merge's subject; removed ones follow too,
        # because an official is shown with their agency's address, which the source
        # no longer has once its addresses belong to the target.
        moved = await conn.execute(
            update(people)
            .where(people.c.agency_id == src_id, people.c.status == "active")
            .values(agency_id=dst_id)
        )
        removed = await conn.execute(  # every one left is a removed official
            update(people).where(people.c.agency_id == src_id).values(agency_id=dst_id)
        )
        children = [
            a.address for a in await load_agencies(conn, cfg, agencies.c.parent_id == src_id)
        ]
        await conn.execute(
            update(agencies).where(agencies.c.parent_id == src_id).values(parent_id=dst_id)
        )

        # Addresses, oldest first (as aliases are listed): all now the target's aliases.
        moved_addresses = [
            names.full_address(local, cfg)
            for (local,) in await conn.execute(
                select(addresses.c.local_part)
                .where(addresses.c.mailbox_id == src_box)
                .order_by(addresses.c.id)
            )
        ]
        await conn.execute(
            update(addresses)
            .where(addresses.c.mailbox_id == src_box)
            .values(mailbox_id=dst_box, kind="alias")
        )
        await conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == src_box)
            .values(status="deleted", disabled_at=stamp)
        )
        revoked = await conn.execute(
            update(delegations)
            .where(delegations.c.mailbox_id == src_box, delegations.c.revoked_at.is_(None))
            .values(revoked_at=stamp)
        )
        # A token acting as the closed mailbox would keep acting for a dissolved agency.
        tokens = await conn.execute(
            update(api_tokens)
            .where(api_tokens.c.mailbox_id == src_box, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=stamp)
        )
        ended_roles = await _end_roles(conn, cfg, src_id, src_box)
        await conn.execute(
            update(agencies)
            .where(agencies.c.id == src_id)
            .values(status="dissolved", dissolved_at=stamp)
        )

        people_moved = int(moved.rowcount or 0)
        await audit.record(
            conn,
            actor,
            "agency.merge",
            src.address,
            source=source,
            into=dst.address,
            people=people_moved,
            removed_people=int(removed.rowcount or 0),
            children=children,
            aliases=moved_addresses,
            roles=ended_roles,
            delegations_revoked=int(revoked.rowcount or 0),
            tokens_revoked=int(tokens.rowcount or 0),
            before={
                "status": "active",
                "mailbox_status": src.mailbox_status,
                "parent": src.parent_address,
                "addresses": moved_addresses,
                "target_aliases": list(dst.aliases),
            },
            after={
                "status": "dissolved",
                "mailbox_status": "deleted",
                "addresses": [],
                "target_aliases": [*dst.aliases, *moved_addresses],
            },
        )
    return {
        "merged": src.address,
        "into": dst.address,
        "people": people_moved,
        "children": children,
        "aliases": moved_addresses,
    }


async def _refuse_merge_across(
    conn: AsyncConnection, src_id: int, dst_id: int, src: Agency, dst: Agency
) -> None:
    """Refuse a merge into the source's own subtree or across the R10 scope."""
    if src.external != dst.external:
        raise Conflict(
            f"Không thể sáp nhập {src.address} vào {dst.address}: một cơ quan thuộc phạm vi"
            " quy chế, cơ quan kia nằm ngoài phạm vi (Điều 10).",
            f"Cannot merge {src.address} into {dst.address}: one is within the regulation's"
            " scope, the other outside it (R10).",
        )
    # Walk up from the target: meeting the source means the target is inside it.
    cursor: int | None = dst_id
    seen: set[int] = set()
    while cursor is not None and cursor not in seen:
        if cursor == src_id:
            raise Conflict(
                f"Không thể sáp nhập {src.address} vào cơ quan trực thuộc của nó ({dst.address}).",
                f"Cannot merge {src.address} into its own sub-agency {dst.address}.",
            )
        seen.add(cursor)
        cursor = await conn.scalar(select(agencies.c.parent_id).where(agencies.c.id == cursor))


async def _agency_mailbox_ids(conn: AsyncConnection, src_id: int, dst_id: int) -> tuple[int, int]:
    rows = await conn.execute(
        select(mailboxes.c.agency_id, mailboxes.c.id).where(
            mailboxes.c.agency_id.in_((src_id, dst_id)), mailboxes.c.kind == "agency"
        )
    )
    found = {agency_id: box_id for agency_id, box_id in rows}
    return found[src_id], found[dst_id]


async def _end_roles(
    conn: AsyncConnection, cfg: Config, agency_id: int, agency_box: int
) -> list[dict[str, str]]:
    """Delete the roles held for the agency (its IT officers, its head) or by its
    mailbox; returns them as {"address", "role"} for the audit log."""
    held = or_(roles.c.agency_id == agency_id, roles.c.mailbox_id == agency_box)
    rows = await conn.execute(
        select(addresses.c.local_part, roles.c.role)
        .join(
            addresses,
            and_(addresses.c.mailbox_id == roles.c.mailbox_id, addresses.c.kind == "primary"),
            isouter=True,
        )
        .where(held)
        .order_by(roles.c.id)
    )
    ended = [
        {"address": names.full_address(local, cfg) if local else "", "role": role}
        for local, role in rows
    ]
    await conn.execute(delete(roles).where(held))
    return ended
