"""The directory (Danh bạ): diacritics-insensitive search and the full listing for export."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select, String, and_, case, literal, select
from sqlalchemy.sql.elements import ColumnElement

from govmail.config import Config
from govmail.core.vietnamese import fold
from govmail.directory.addresses import full_address
from govmail.directory.export import DirectoryEntry
from govmail.directory.model import SearchHit
from govmail.store.database import Database
from govmail.store.schema import addresses, agencies, mailboxes, people

MAX_QUERY = 200


def _like_escape(text: str) -> str:
    # '_' is in many addresses (nvnguyen_ttr); unescaped it would match any character.
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matches(column: ColumnElement[str], tokens: list[str]) -> list[ColumnElement[bool]]:
    return [column.like(f"%{_like_escape(t)}%", escape="\\") for t in tokens]


def _prefix_range(column: ColumnElement[str], phrase: str) -> ColumnElement[bool]:
    """``column`` starts with ``phrase``, as an index range (LIKE 'x%' is not one on
    every engine)."""
    upper = phrase[:-1] + chr(ord(phrase[-1]) + 1)
    return and_(column >= phrase, column < upper)


async def search_directory(
    db: Database, cfg: Config, query: str, *, limit: int = 50
) -> list[SearchHit]:
    """Active agencies and officials whose name, address, position or department contain
    every word of ``query``, diacritics- and case-insensitively ("nguyen van" finds
    "Nguyễn Văn …"). Entries whose name starts with the query come first, then the
    rest; each group in alphabetical order of the folded name."""
    phrase = fold(query)[:MAX_QUERY]
    tokens = phrase.split()
    if not tokens:
        return []
    starts = _prefix_range(people.c.search_text, phrase)
    matches = _matches(people.c.search_text, tokens)
    # Both queries walk ix_people_directory (status, search_text) in order and stop
    # after ``limit`` hits: no sort, and a common word ("chuyen vien") stops early.
    first = (
        select(people.c.id, people.c.search_text)
        .where(people.c.status == "active", starts)
        .order_by(people.c.search_text, people.c.id)
        .limit(limit)
    )
    rest = (
        select(people.c.id, people.c.search_text)
        .where(people.c.status == "active", *matches, ~starts)
        .order_by(people.c.search_text, people.c.id)
        .limit(limit)
    )
    agency_starts = _prefix_range(agencies.c.search_text, phrase)
    agency_rank = case((agency_starts, 0), else_=1)
    agency_q = (
        select(agencies.c.id, agency_rank, agencies.c.search_text)
        .where(agencies.c.status == "active", *_matches(agencies.c.search_text, tokens))
        .order_by(agency_rank, agencies.c.search_text)
        .limit(limit)
    )
    async with db.read() as conn:
        ranked = [("personal", r[0], 0, r[1]) for r in await conn.execute(first)]
        if len(ranked) < limit:
            ranked += [("personal", r[0], 1, r[1]) for r in await conn.execute(rest)]
        ranked += [("agency", *r) for r in await conn.execute(agency_q)]
        ranked.sort(key=lambda r: (r[2], r[3]))
        del ranked[limit:]
        person_ids = [r[1] for r in ranked if r[0] == "personal"]
        agency_ids = [r[1] for r in ranked if r[0] == "agency"]
        details: dict[tuple[str, int], Row[Any]] = {}
        if person_ids:
            rows = await conn.execute(_people_details(person_ids))
            details |= {("personal", r.id): r for r in rows}
        if agency_ids:
            rows = await conn.execute(_agency_details(agency_ids))
            details |= {("agency", r.id): r for r in rows}
    hits = []
    for kind, entry_id, _tier, _sort_key in ranked:
        r = details[(kind, entry_id)]
        hits.append(
            SearchHit(
                kind=kind,
                name=r.name,
                address=full_address(r.local_part, cfg),
                agency_name=r.agency_name or "",
                position=r.position,
                department=r.department,
            )
        )
    return hits


def _people_details(ids: list[int]) -> Select[Any]:
    own = addresses.alias("own")
    return (
        select(
            people.c.id,
            people.c.full_name.label("name"),
            own.c.local_part,
            agencies.c.name.label("agency_name"),
            people.c.position,
            people.c.department,
        )
        .join(
            mailboxes,
            and_(mailboxes.c.person_id == people.c.id, mailboxes.c.kind == "personal"),
        )
        .join(own, and_(own.c.mailbox_id == mailboxes.c.id, own.c.kind == "primary"))
        .join(agencies, agencies.c.id == people.c.agency_id)
        .where(people.c.id.in_(ids))
    )


def _agency_details(ids: list[int]) -> Select[Any]:
    own = addresses.alias("own")
    parent = agencies.alias("parent")
    return (
        select(
            agencies.c.id,
            agencies.c.name,
            own.c.local_part,
            parent.c.name.label("agency_name"),
            literal("", String).label("position"),
            literal("", String).label("department"),
        )
        .join(
            mailboxes,
            and_(mailboxes.c.agency_id == agencies.c.id, mailboxes.c.kind == "agency"),
        )
        .join(own, and_(own.c.mailbox_id == mailboxes.c.id, own.c.kind == "primary"))
        .outerjoin(parent, parent.c.id == agencies.c.parent_id)
        .where(agencies.c.id.in_(ids))
    )


async def directory_entries(db: Database, cfg: Config) -> list[DirectoryEntry]:
    """Every active mailbox of the directory: agencies first (by name), then officials."""
    own = addresses.alias("own")
    agency_box = mailboxes.alias("agency_box")
    agency_addr = addresses.alias("agency_addr")
    parent = agencies.alias("parent")
    parent_box = mailboxes.alias("parent_box")
    parent_addr = addresses.alias("parent_addr")
    agency_q = (
        select(agencies.c.name, own.c.local_part, parent.c.name, parent_addr.c.local_part)
        .join(
            agency_box, and_(agency_box.c.agency_id == agencies.c.id, agency_box.c.kind == "agency")
        )
        .join(own, and_(own.c.mailbox_id == agency_box.c.id, own.c.kind == "primary"))
        .outerjoin(parent, parent.c.id == agencies.c.parent_id)
        .outerjoin(
            parent_box, and_(parent_box.c.agency_id == parent.c.id, parent_box.c.kind == "agency")
        )
        .outerjoin(
            parent_addr,
            and_(parent_addr.c.mailbox_id == parent_box.c.id, parent_addr.c.kind == "primary"),
        )
        .where(agencies.c.status == "active")
        .order_by(agencies.c.search_text)
    )
    person_q = (
        select(
            people.c.full_name,
            own.c.local_part,
            agencies.c.name,
            agency_addr.c.local_part,
            people.c.position,
            people.c.department,
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
        .where(people.c.status == "active")
        .order_by(people.c.search_text, own.c.local_part)
    )
    async with db.read() as conn:
        agency_rows = (await conn.execute(agency_q)).all()
        person_rows = (await conn.execute(person_q)).all()
    entries = [
        DirectoryEntry(
            address=full_address(r[1], cfg),
            name=r[0],
            kind="agency",
            agency=r[2] or "",
            agency_address=full_address(r[3], cfg) if r[3] else "",
            position="",
            department="",
        )
        for r in agency_rows
    ]
    entries.extend(
        DirectoryEntry(
            address=full_address(r[1], cfg),
            name=r[0],
            kind="personal",
            agency=r[2],
            agency_address=full_address(r[3], cfg),
            position=r[4],
            department=r[5],
        )
        for r in person_rows
    )
    return entries
