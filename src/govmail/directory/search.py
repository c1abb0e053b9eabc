"""The directory (Danh bạ): diacritics-insensitive search and the full listing for export."""

from __future__ import annotations

from sqlalchemy import and_, case, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from govmail.config import Config
from govmail.core.vietnamese import fold
from govmail.directory.agencies import load_agencies
from govmail.directory.export import DirectoryEntry
from govmail.directory.model import SearchHit
from govmail.directory.people import load_people
from govmail.store.database import Database
from govmail.store.schema import agencies, people, people_search

MAX_QUERY = 200
# Up to this many candidates from the trigram index are looked up one by one.
RARE_LIMIT = 200


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
        if not db.is_sqlite:
            # The best plan depends on the words (a rare one: trigram index; a common
            # one: walk the sorted index and stop early). A generic plan for prepared
            # statements, which PostgreSQL adopts after five runs, cannot know them.
            await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        ranked = [("personal", r[0], 0, r[1]) for r in await conn.execute(first)]
        if len(ranked) < limit:
            candidates = await _rare_word_candidates(conn, db, tokens)
            if candidates is not None:
                rest = rest.where(people.c.id.in_(candidates))
            if candidates != []:
                ranked += [("personal", r[0], 1, r[1]) for r in await conn.execute(rest)]
        ranked += [("agency", *r) for r in await conn.execute(agency_q)]
        if not db.is_sqlite:
            # The page's details join six tables: planning that anew costs 3 ms.
            await conn.execute(text("SET LOCAL plan_cache_mode = auto"))
        ranked.sort(key=lambda r: (r[2], r[3]))
        del ranked[limit:]
        person_ids = [r[1] for r in ranked if r[0] == "personal"]
        agency_ids = [r[1] for r in ranked if r[0] == "agency"]
        found_people = (
            await load_people(conn, cfg, people.c.id.in_(person_ids)) if person_ids else []
        )
        found_agencies = (
            await load_agencies(conn, cfg, agencies.c.id.in_(agency_ids)) if agency_ids else []
        )
    by_key: dict[tuple[str, int], SearchHit] = {}
    for p in found_people:
        by_key[("personal", p.id)] = SearchHit(
            "personal", p.full_name, p.address, p.agency_name, p.position, p.department
        )
    for a in found_agencies:
        by_key[("agency", a.id)] = SearchHit(
            "agency", a.name, a.address, a.parent_name or "", "", ""
        )
    return [by_key[(kind, entry_id)] for kind, entry_id, _tier, _key in ranked]


async def _rare_word_candidates(
    conn: AsyncConnection, db: Database, tokens: list[str]
) -> list[int] | None:
    """On SQLite, the few people whose search text has every word, from the trigram
    index; None when the words are too short or too common for that to pay (the index
    walk then stops early anyway). PostgreSQL's planner makes this choice itself."""
    if not db.is_sqlite or min(len(t) for t in tokens) < 3:
        return None
    if any(c in t for t in tokens for c in "*?["):
        return None  # GLOB's own metacharacters: rare in a directory query, not worth it
    # GLOB, not LIKE … ESCAPE: FTS5 answers LIKE from the index only without ESCAPE,
    # and '_' (common in addresses) would then be a wildcard.
    probe = (
        select(people_search.c.rowid)
        .where(*[people_search.c.search_text.op("GLOB")(f"*{t}*") for t in tokens])
        .limit(RARE_LIMIT + 1)
    )
    found = list((await conn.execute(probe)).scalars())
    return found if len(found) <= RARE_LIMIT else None


async def directory_entries(db: Database, cfg: Config) -> list[DirectoryEntry]:
    """Every active mailbox of the directory: agencies first, then officials, by name."""
    async with db.read() as conn:
        active_agencies = await load_agencies(conn, cfg, agencies.c.status == "active")
        active_people = await load_people(conn, cfg, people.c.status == "active")
    entries = [
        DirectoryEntry(
            address=a.address,
            name=a.name,
            kind="agency",
            agency=a.parent_name or "",
            agency_address=a.parent_address or "",
            position="",
            department="",
        )
        for a in sorted(active_agencies, key=lambda a: (fold(a.name), a.address))
    ]
    entries.extend(
        DirectoryEntry(
            address=p.address,
            name=p.full_name,
            kind="personal",
            agency=p.agency_name,
            agency_address=p.agency_address,
            position=p.position,
            department=p.department,
        )
        for p in sorted(active_people, key=lambda p: (fold(p.full_name), p.address))
    )
    return entries
