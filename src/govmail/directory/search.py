"""The directory (Danh bạ): diacritics-insensitive search and the full listing for export."""

from __future__ import annotations

from sqlalchemy import String, and_, case, literal, select, union_all
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


def _rank(column: ColumnElement[str], phrase: str) -> ColumnElement[int]:
    """0: the entry starts with the query (its name leads the search text);
    1: a word in it does; 2: the words only occur somewhere."""
    p = _like_escape(phrase)
    return case(
        (column.like(f"{p}%", escape="\\"), 0),
        (column.like(f"% {p}%", escape="\\"), 1),
        else_=2,
    )


async def search_directory(
    db: Database, cfg: Config, query: str, *, limit: int = 50
) -> list[SearchHit]:
    """Active agencies and officials whose name, address, position or department contain
    every word of ``query``, diacritics- and case-insensitively ("nguyen van" finds
    "Nguyễn Văn …"); best matches first."""
    phrase = fold(query)[:MAX_QUERY]
    tokens = phrase.split()
    if not tokens:
        return []
    own = addresses.alias("own")
    agency_box = mailboxes.alias("agency_box")
    parent = agencies.alias("parent")
    person_q = (
        select(
            literal("personal", String).label("kind"),
            people.c.full_name.label("name"),
            own.c.local_part.label("local_part"),
            agencies.c.name.label("agency_name"),
            people.c.position.label("position"),
            people.c.department.label("department"),
            _rank(people.c.search_text, phrase).label("rank"),
            people.c.search_text.label("sort_key"),
        )
        .join(mailboxes, and_(mailboxes.c.person_id == people.c.id, mailboxes.c.kind == "personal"))
        .join(own, and_(own.c.mailbox_id == mailboxes.c.id, own.c.kind == "primary"))
        .join(agencies, agencies.c.id == people.c.agency_id)
        .where(people.c.status == "active", *_matches(people.c.search_text, tokens))
    )
    agency_q = (
        select(
            literal("agency", String),
            agencies.c.name,
            own.c.local_part,
            parent.c.name,
            literal("", String),
            literal("", String),
            _rank(agencies.c.search_text, phrase),
            agencies.c.search_text,
        )
        .join(
            agency_box, and_(agency_box.c.agency_id == agencies.c.id, agency_box.c.kind == "agency")
        )
        .join(own, and_(own.c.mailbox_id == agency_box.c.id, own.c.kind == "primary"))
        .outerjoin(parent, parent.c.id == agencies.c.parent_id)
        .where(agencies.c.status == "active", *_matches(agencies.c.search_text, tokens))
    )
    both = union_all(person_q, agency_q).subquery()
    ordered = select(both).order_by(both.c.rank, both.c.sort_key, both.c.local_part).limit(limit)
    async with db.read() as conn:
        rows = (await conn.execute(ordered)).all()
    return [
        SearchHit(
            kind=r.kind,
            name=r.name,
            address=full_address(r.local_part, cfg),
            agency_name=r.agency_name or "",
            position=r.position,
            department=r.department,
        )
        for r in rows
    ]


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
