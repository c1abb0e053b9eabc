"""The webmail's directory page (Danh bạ): the agency tree, one agency's officials a page at
a time, and search without diacritics. Read-only: officials look addresses up here; the
centre keeps the directory with the CLI and the console."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations
# at definition, and `Depends(gate.page)` names the router function's local `gate`.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from govmail.directory.browse import agency_page, agency_tree
from govmail.directory.search import MAX_QUERY, search_directory
from govmail.mailstore import listing
from govmail.web.pages import WebServices
from govmail.web.session import Gate, Visit

SEARCH_LIMIT = 100


async def page_frame(services: WebServices, visit: Visit) -> dict[str, Any]:
    """What mail_base.html shows around a page's content: the viewed mailbox's folders
    and quota bar (as the mail pages show them)."""

    def work(conn: Connection) -> dict[str, Any]:
        used, quota = listing.usage(conn, visit.mailbox_id)
        return {
            "folders": listing.folder_summaries(conn, visit.mailbox_id),
            "used": used,
            "quota": quota,
        }

    found = await services.db.run(work, write=False, brief=True)
    return {"visit": visit, "q": "", **found}


def directory_router(services: WebServices, gate: Gate) -> APIRouter:
    """Routes: /directory (tree, or search with ``q``), /directory/agency/{id}?page=N."""
    router = APIRouter()
    db, cfg, pages = services.db, services.cfg, services.pages

    @router.get("/directory")
    async def directory(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    ) -> Response:
        context = await page_frame(services, visit)
        query = q.strip()
        if query:
            hits = await search_directory(db, cfg, query, limit=SEARCH_LIMIT)
            return pages.render(
                request,
                "directory.html",
                {**context, "dq": query, "hits": hits, "tree": None, "limit": SEARCH_LIMIT},
            )
        tree = await agency_tree(db, cfg)
        return pages.render(
            request, "directory.html", {**context, "dq": "", "hits": None, "tree": tree}
        )

    @router.get("/directory/agency/{agency_id}")
    async def agency(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        agency_id: int,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> Response:
        found = await agency_page(db, cfg, agency_id, page=page)
        if found is None:
            raise HTTPException(404)
        context = await page_frame(services, visit)
        return pages.render(request, "directory_agency.html", {**context, "found": found})

    return router
