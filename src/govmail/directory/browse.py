"""Browsing the directory (Danh bạ): the agency tree and one agency's officials, a page
at a time, for the webmail's read-only directory page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from govmail.config import Config
from govmail.core.vietnamese import fold
from govmail.directory.agencies import list_agencies, load_agencies
from govmail.directory.model import Agency, Person
from govmail.directory.people import load_people
from govmail.store.database import Database
from govmail.store.schema import agencies, people

PER_PAGE = 50


@dataclass(frozen=True)
class AgencyNode:
    """An agency with the active agencies under it, in name order."""

    agency: Agency
    children: tuple[AgencyNode, ...]


@dataclass(frozen=True)
class AgencyPage:
    """One agency, its parent's and children's names, and a page of its officials."""

    agency: Agency
    children: list[Agency]
    people: list[Person]
    page: int
    pages: int
    total: int


async def agency_tree(db: Database, cfg: Config) -> list[AgencyNode]:
    """The active agencies as a forest (roots in name order, as ``list_agencies``)."""
    ordered = await list_agencies(db, cfg)
    roots: list[AgencyNode] = []
    # list_agencies walks depth-first: a node's children follow it, one depth deeper.
    stack: list[tuple[int, list[AgencyNode]]] = [(-1, roots)]
    built: dict[int, list[AgencyNode]] = {}
    for agency in ordered:
        while stack[-1][0] >= agency.depth:
            stack.pop()
        children: list[AgencyNode] = []
        built[agency.id] = children
        stack[-1][1].append(AgencyNode(agency, ()))
        stack.append((agency.depth, children))
    return [_freeze(node, built) for node in roots]


def _freeze(node: AgencyNode, built: dict[int, list[AgencyNode]]) -> AgencyNode:
    kids = tuple(_freeze(child, built) for child in built.get(node.agency.id, []))
    return AgencyNode(node.agency, kids)


async def agency_page(
    db: Database, cfg: Config, agency_id: int, *, page: int = 1, per_page: int = PER_PAGE
) -> AgencyPage | None:
    """An active agency with page ``page`` (from 1) of its active officials in name order
    (folded, so "Đặng" sorts with "Dang"); None if there is no such active agency. Only
    one page of people is loaded, however large the agency."""
    async with db.read() as conn:
        found = await load_agencies(
            conn, cfg, agencies.c.id == agency_id, agencies.c.status == "active"
        )
        if not found:
            return None
        children = await load_agencies(
            conn, cfg, agencies.c.parent_id == agency_id, agencies.c.status == "active"
        )
        where = (people.c.agency_id == agency_id, people.c.status == "active")
        total = int(await conn.scalar(select(func.count()).select_from(people).where(*where)) or 0)
        pages = max(1, -(-total // per_page))
        page = min(max(page, 1), pages)
        ids = list(
            (
                await conn.execute(
                    select(people.c.id)
                    .where(*where)
                    .order_by(people.c.search_text, people.c.id)
                    .limit(per_page)
                    .offset((page - 1) * per_page)
                )
            ).scalars()
        )
        loaded = await load_people(conn, cfg, people.c.id.in_(ids)) if ids else []
    rank = {person_id: n for n, person_id in enumerate(ids)}
    loaded.sort(key=lambda p: rank[p.id])
    children.sort(key=lambda a: (fold(a.name), a.address))
    return AgencyPage(found[0], children, loaded, page, pages, total)
