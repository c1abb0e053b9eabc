"""Who may do what in the portal, the console and the API: roles held by mailboxes, and
the Principal every workflow use case is called with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import Config
from govmail.core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from govmail.directory import addresses as names
from govmail.store import audit
from govmail.store.database import Database
from govmail.store.schema import ROLE_NAMES, addresses, mailboxes, people, roles

CENTRE_ADMIN = "centre_admin"  # Trung tâm CNTT&TT: processes requests, runs the system
DIRECTOR = "director"  # Giám đốc Sở TT&TT: approves R10 requests
IT_OFFICER = "it_officer"  # cán bộ chuyên trách CNTT of one agency
AGENCY_HEAD = "agency_head"  # thủ trưởng cơ quan: authorises the agency mailbox (R22)
PER_AGENCY = frozenset({IT_OFFICER, AGENCY_HEAD})

ROLE_LABELS = {
    CENTRE_ADMIN: ("Quản trị Trung tâm CNTT&TT", "Centre administrator"),
    DIRECTOR: ("Giám đốc Sở TT&TT", "Director of Information and Communications"),
    IT_OFFICER: ("Cán bộ chuyên trách CNTT", "Agency IT officer"),
    AGENCY_HEAD: ("Thủ trưởng cơ quan", "Head of agency"),
}


@dataclass(frozen=True)
class Principal:
    """Whoever calls a workflow use case, with what the audit log records of them.

    ``actor`` is the audit log's "who" (an address, ``cli:<os user>``, ``api:<token>``),
    ``source`` its "from where" (a client IP, ``cli``). The agency sets are the agencies
    the principal is IT officer or head of. An agency mailbox has no powers of its own:
    its password is shared by whoever runs it (R22), so roles go to people.
    """

    actor: str
    source: str = ""
    mailbox_id: int | None = None
    agency_id: int | None = None  # the official's (or agency mailbox's) own agency
    centre: bool = False
    director: bool = False
    it_officer_of: frozenset[int] = field(default_factory=frozenset)
    head_of: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def operator(cls, actor: str, source: str = "cli") -> Principal:
        """The centre's operator at the command line: every power, audited by name."""
        return cls(actor=actor, source=source, centre=True, director=True)

    @property
    def agencies(self) -> frozenset[int]:
        """The agencies this principal files requests for."""
        return self.it_officer_of | self.head_of

    @property
    def role_names(self) -> list[str]:
        found = [CENTRE_ADMIN] if self.centre else []
        found += [DIRECTOR] if self.director else []
        found += [IT_OFFICER] if self.it_officer_of else []
        found += [AGENCY_HEAD] if self.head_of else []
        return found

    def may_file_for(self, agency_id: int | None) -> bool:
        return self.centre or (agency_id is not None and agency_id in self.agencies)

    def may_see_agency(self, agency_id: int | None) -> bool:
        return self.centre or self.director or self.may_file_for(agency_id)

    def require_centre(self) -> None:
        if not self.centre:
            raise NotAllowed(
                "Chỉ quản trị viên Trung tâm CNTT&TT được làm việc này.",
                "Only the centre's administrators may do this.",
            )

    def require_director(self) -> None:
        if not self.director:
            raise NotAllowed(
                "Chỉ Giám đốc Sở TT&TT được phê duyệt yêu cầu này (Điều 5).",
                "Only the Director of Information and Communications may approve this (R10).",
            )

    def require_agency(self, agency_id: int | None) -> None:
        if not self.may_file_for(agency_id):
            raise NotAllowed(
                "Bạn không có quyền gửi yêu cầu cho cơ quan này.",
                "You may not act for this agency.",
            )


async def load_principal(
    conn: AsyncConnection, mailbox_id: int, *, actor: str, source: str = ""
) -> Principal:
    """The principal of a logged-in mailbox (web session or API token)."""
    box = (
        await conn.execute(
            select(mailboxes.c.kind, mailboxes.c.agency_id, people.c.agency_id.label("home"))
            .select_from(mailboxes.outerjoin(people, people.c.id == mailboxes.c.person_id))
            .where(mailboxes.c.id == mailbox_id)
        )
    ).one()
    held = (
        await conn.execute(
            select(roles.c.role, roles.c.agency_id).where(roles.c.mailbox_id == mailbox_id)
        )
    ).all()
    it = {r.agency_id for r in held if r.role == IT_OFFICER}
    return Principal(
        actor=actor,
        source=source,
        mailbox_id=mailbox_id,
        agency_id=box.agency_id if box.kind == "agency" else box.home,
        centre=any(r.role == CENTRE_ADMIN for r in held),
        director=any(r.role == DIRECTOR for r in held),
        it_officer_of=frozenset(it),
        head_of=frozenset(r.agency_id for r in held if r.role == AGENCY_HEAD),
    )


@dataclass(frozen=True)
class RoleGrant:
    address: str
    role: str
    agency: str | None  # the agency's address, for the per-agency roles

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "role": self.role, "agency": self.agency}


def _check_role(role: str, agency: str | None) -> None:
    if role not in ROLE_NAMES:
        raise InvalidInput(
            f"Vai trò không hợp lệ: {role} (có: {', '.join(ROLE_NAMES)}).",
            f"Unknown role {role} (known: {', '.join(ROLE_NAMES)}).",
        )
    if (role in PER_AGENCY) != (agency is not None):
        raise InvalidInput(
            f"Vai trò {role} {'cần' if role in PER_AGENCY else 'không dùng'} --agency.",
            f"Role {role} {'needs' if role in PER_AGENCY else 'takes no'} --agency.",
        )


async def _agency_id(conn: AsyncConnection, cfg: Config, ref: str) -> tuple[int, str]:
    box = await names.find_mailbox(conn, cfg, ref)
    if box.kind != "agency" or box.agency_id is None:
        raise NotFound(f"{ref} không phải cơ quan.", f"{ref} is not an agency.")
    return box.agency_id, names.full_address(box.local_part, cfg)


async def grant_role(
    db: Database, cfg: Config, who: Principal, address: str, role: str, agency: str | None = None
) -> RoleGrant:
    """Give a mailbox a role (centre only); granting a role it holds is refused."""
    who.require_centre()
    _check_role(role, agency)
    async with db.write() as conn:
        box = await names.find_mailbox(conn, cfg, address)
        if box.status != "active":
            raise Conflict("Hộp thư không hoạt động.", "The mailbox is not active.")
        if box.mailbox_id == who.mailbox_id:
            raise NotAllowed(
                "Không thể tự giao vai trò cho chính mình.", "Nobody grants themselves a role."
            )
        if box.kind != "personal":
            raise InvalidInput(
                "Vai trò chỉ giao cho hộp thư cá nhân (người chịu trách nhiệm).",
                "Roles go to personal mailboxes (a person answers for them).",
            )
        agency_id, agency_address = (
            await _agency_id(conn, cfg, agency) if agency is not None else (None, None)
        )
        grant = RoleGrant(names.full_address(box.local_part, cfg), role, agency_address)
        exists = await conn.scalar(
            select(roles.c.id).where(
                roles.c.mailbox_id == box.mailbox_id,
                roles.c.role == role,
                roles.c.scope == (agency_id or 0),
            )
        )
        if exists is not None:
            raise Conflict(
                f"{grant.address} đã có vai trò này.", f"{grant.address} already has this role."
            )
        await conn.execute(
            insert(roles).values(
                mailbox_id=box.mailbox_id,
                role=role,
                agency_id=agency_id,
                scope=agency_id or 0,
                granted_by=who.actor,
                granted_at=audit.now(),
            )
        )
        await audit.record(
            conn, who.actor, "role.grant", grant.address, source=who.source, **grant.as_dict()
        )
    return grant


async def revoke_role(
    db: Database, cfg: Config, who: Principal, address: str, role: str, agency: str | None = None
) -> RoleGrant:
    who.require_centre()
    _check_role(role, agency)
    async with db.write() as conn:
        box = await names.find_mailbox(conn, cfg, address)
        agency_id, agency_address = (
            await _agency_id(conn, cfg, agency) if agency is not None else (None, None)
        )
        grant = RoleGrant(names.full_address(box.local_part, cfg), role, agency_address)
        gone = await conn.execute(
            delete(roles).where(
                roles.c.mailbox_id == box.mailbox_id,
                roles.c.role == role,
                roles.c.scope == (agency_id or 0),
            )
        )
        if gone.rowcount == 0:
            raise Conflict(
                f"{grant.address} không có vai trò này.", f"{grant.address} has no such role."
            )
        await audit.record(
            conn, who.actor, "role.revoke", grant.address, source=who.source, **grant.as_dict()
        )
    return grant


async def list_roles(db: Database, cfg: Config, *, agency: str | None = None) -> list[RoleGrant]:
    async with db.read() as conn:
        agency_id = (await _agency_id(conn, cfg, agency))[0] if agency is not None else None
        query = select(roles.c.mailbox_id, roles.c.role, roles.c.agency_id).order_by(roles.c.id)
        if agency_id is not None:
            query = query.where(roles.c.agency_id == agency_id)
        found = (await conn.execute(query)).all()
        return [
            RoleGrant(
                await primary_address(conn, cfg, r.mailbox_id),
                r.role,
                await _agency_address(conn, cfg, r.agency_id),
            )
            for r in found
        ]


async def officers_of(conn: AsyncConnection, agency_id: int) -> list[int]:
    """The active mailboxes of an agency's IT officers who still work there (who get its
    password notices, R7)."""
    return list(
        (
            await conn.scalars(
                select(roles.c.mailbox_id)
                .join(mailboxes, mailboxes.c.id == roles.c.mailbox_id)
                .join(people, people.c.id == mailboxes.c.person_id)
                .where(
                    roles.c.agency_id == agency_id,
                    roles.c.role == IT_OFFICER,
                    mailboxes.c.status == "active",
                    people.c.agency_id == agency_id,
                )
            )
        ).all()
    )


async def primary_address(conn: AsyncConnection, cfg: Config, mailbox_id: int) -> str:
    """The full primary address of a mailbox."""
    local = await conn.scalar(
        select(addresses.c.local_part).where(
            addresses.c.mailbox_id == mailbox_id, addresses.c.kind == "primary"
        )
    )
    return names.full_address(str(local), cfg)


async def _agency_address(conn: AsyncConnection, cfg: Config, agency_id: int | None) -> str | None:
    if agency_id is None:
        return None
    box = await conn.scalar(
        select(mailboxes.c.id).where(
            mailboxes.c.agency_id == agency_id, mailboxes.c.kind == "agency"
        )
    )
    return await primary_address(conn, cfg, int(box)) if box is not None else None
