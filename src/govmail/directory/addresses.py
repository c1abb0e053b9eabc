"""The address name space (R3–R5): what is taken, claiming a name, finding a mailbox by address."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import Config
from govmail.core.errors import AddressTaken, InvalidInput, NotFound
from govmail.core.naming import validate_local_part
from govmail.store.audit import now
from govmail.store.database import Database, is_unique_violation
from govmail.store.schema import addresses, domains, mailboxes

# Bound parameters per statement stay well below PostgreSQL's limit of 32,767.
CHUNK = 5000

Proposer = Callable[[AsyncConnection, str], Awaitable[list[str]]]


@dataclass(frozen=True)
class MailboxRef:
    """A mailbox found by one of its addresses."""

    mailbox_id: int
    kind: str
    agency_id: int | None
    person_id: int | None
    status: str
    local_part: str  # the primary address's local part, whichever address was asked for


def split_address(ref: str, cfg: Config) -> tuple[str, str]:
    """'ldphuong' or 'ldphuong@khanhhoa.gov.vn' → (local part, domain), lower-cased."""
    ref = ref.strip().lower()
    local, _, domain = ref.partition("@")
    domain = domain or cfg.domain
    if domain != cfg.domain and domain not in cfg.alias_domains:
        raise NotFound(
            f"Tên miền {domain} không do hệ thống này quản lý.",
            f"Domain {domain} is not served by this system.",
        )
    if not local:
        raise InvalidInput("Thiếu địa chỉ hộp thư.", "Mailbox address is missing.")
    return local, cfg.domain


def requested_local_part(ref: str, cfg: Config) -> str:
    """The local part of an address someone asks for ('x' or 'x@<our domain>'), validated;
    an address at another domain is refused, never silently moved to ours."""
    local, _, domain = ref.strip().lower().partition("@")
    if domain and domain != cfg.domain and domain not in cfg.alias_domains:
        raise InvalidInput(
            f"Địa chỉ {ref.strip()} không thuộc tên miền {cfg.domain}.",
            f"Address {ref.strip()} is not in the domain {cfg.domain}.",
        )
    return validate_local_part(local, cfg.reserved_local_parts)


@dataclass
class Claim:
    """The address a use case is about to claim, set inside its transaction."""

    local_part: str = ""


@asynccontextmanager
async def claiming(
    db: Database, cfg: Config, propose: Proposer
) -> AsyncIterator[tuple[AsyncConnection, Claim]]:
    """A write transaction that claims an address. If a concurrent writer takes the
    address between our check and our insert, the database refuses the row and this
    turns that refusal into AddressTaken with fresh proposals (exit code 3), so every
    use case that claims an address answers a race the same way."""
    claim = Claim()
    try:
        async with db.write() as conn:
            yield conn, claim
    except IntegrityError as exc:
        if not is_unique_violation(exc) or not claim.local_part:
            raise
        async with db.read() as conn:
            proposals = await propose(conn, claim.local_part)
        raise AddressTaken(full_address(claim.local_part, cfg), proposals) from None


def full_address(local_part: str, cfg: Config) -> str:
    return f"{local_part}@{cfg.domain}"


async def domain_id(conn: AsyncConnection, cfg: Config) -> int:
    found = await conn.scalar(select(domains.c.id).where(domains.c.name == cfg.domain))
    if found is None:
        raise NotFound(
            f"Tên miền {cfg.domain} chưa được khởi tạo trong cơ sở dữ liệu.",
            f"Domain {cfg.domain} is not initialised in the database.",
        )
    return int(found)


async def taken_local_parts(conn: AsyncConnection, dom: int) -> set[str]:
    """Every local part in use: primary, alias and reserved."""
    rows = await conn.execute(select(addresses.c.local_part).where(addresses.c.domain_id == dom))
    return {r[0] for r in rows}


async def is_taken(conn: AsyncConnection, dom: int, local_part: str) -> bool:
    found = await conn.scalar(
        select(addresses.c.id).where(
            and_(addresses.c.domain_id == dom, addresses.c.local_part == local_part)
        )
    )
    return found is not None


async def claim(
    conn: AsyncConnection, dom: int, local_part: str, mailbox_id: int | None, kind: str
) -> None:
    """Insert the name; the unique constraint settles races between concurrent writers."""
    await conn.execute(
        insert(addresses).values(
            domain_id=dom,
            local_part=local_part,
            mailbox_id=mailbox_id,
            kind=kind,
            created_at=now(),
        )
    )


async def change_primary(conn: AsyncConnection, dom: int, mailbox_id: int, new_local: str) -> str:
    """Make ``new_local`` the mailbox's address and keep the old one as an alias (R8).

    Returns the old local part. If ``new_local`` is already one of the mailbox's own
    aliases, it is promoted instead of claimed anew.
    """
    old = await conn.scalar(
        select(addresses.c.local_part).where(
            addresses.c.mailbox_id == mailbox_id, addresses.c.kind == "primary"
        )
    )
    await conn.execute(
        update(addresses)
        .where(addresses.c.mailbox_id == mailbox_id, addresses.c.kind == "primary")
        .values(kind="alias")
    )
    promoted = await conn.execute(
        update(addresses)
        .where(
            addresses.c.mailbox_id == mailbox_id,
            addresses.c.domain_id == dom,
            addresses.c.local_part == new_local,
        )
        .values(kind="primary")
    )
    if promoted.rowcount == 0:
        await claim(conn, dom, new_local, mailbox_id, "primary")
    return str(old)


async def aliases_by_mailbox(
    conn: AsyncConnection, cfg: Config, mailbox_ids: list[int]
) -> dict[int, tuple[str, ...]]:
    """The old/extra addresses of each mailbox, oldest first, in one query."""
    found: dict[int, list[str]] = {}
    for start in range(0, len(mailbox_ids), CHUNK):
        rows = await conn.execute(
            select(addresses.c.mailbox_id, addresses.c.local_part)
            .where(
                addresses.c.mailbox_id.in_(mailbox_ids[start : start + CHUNK]),
                addresses.c.kind == "alias",
            )
            .order_by(addresses.c.id)
        )
        for box, local in rows:
            found.setdefault(box, []).append(full_address(local, cfg))
    return {box: tuple(locals_) for box, locals_ in found.items()}


async def find_mailbox(conn: AsyncConnection, cfg: Config, ref: str) -> MailboxRef:
    """The mailbox that ``ref`` (local part or full address, primary or alias) names."""
    local, _ = split_address(ref, cfg)
    dom = await domain_id(conn, cfg)
    asked = addresses.alias("asked")
    primary = addresses.alias("primary_address")
    row = (
        await conn.execute(
            select(
                mailboxes.c.id,
                mailboxes.c.kind,
                mailboxes.c.agency_id,
                mailboxes.c.person_id,
                mailboxes.c.status,
                primary.c.local_part,
            )
            .select_from(asked)
            .join(mailboxes, mailboxes.c.id == asked.c.mailbox_id)
            .join(
                primary,
                and_(primary.c.mailbox_id == mailboxes.c.id, primary.c.kind == "primary"),
            )
            .where(asked.c.domain_id == dom, asked.c.local_part == local)
        )
    ).first()
    if row is None:
        raise NotFound(
            f"Không có hộp thư {full_address(local, cfg)}.",
            f"No mailbox {full_address(local, cfg)}.",
        )
    return MailboxRef(*row)
