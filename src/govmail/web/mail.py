"""The webmail's mail pages: folders, a folder's message list, reading a message (its
sanitised HTML in a sandboxed frame, attachments), the actions on messages, and search.

Every route asks the listing service about ``visit.mailbox_id`` only: a folder id or UID
typed into a URL that is not the mailbox's is not found (404), never shown.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations
# at definition, and `Depends(gate.page)` names the router function's local `gate`.

import asyncio
import contextlib
import html
import re
from typing import Annotated, Any
from urllib.parse import quote

import nh3
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from govmail.mailstore import listing
from govmail.mailstore.access import AccessEvent
from govmail.mailstore.flags import FLAGGED, SEEN
from govmail.mailstore.messages import FolderGone, OverQuota
from govmail.policy.signatures import SignatureResult
from govmail.web.pages import WebServices
from govmail.web.session import Gate, NotSignedIn, StepOwed, Visit

# Attachments served with their own type; anything else (HTML, SVG, scripts) as bytes.
_SAFE_TYPES = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "text/plain",
        "application/msword",
        "application/rtf",
        "application/zip",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
    }
)
ACTIONS = ("seen", "unseen", "flag", "unflag", "move", "delete", "spam")
MAX_UIDS = 1000  # one bulk action


# --- HTML mail -------------------------------------------------------------------------------

_URL_SCHEMES = {"http", "https", "mailto", "tel"}
# Past this many tags HTML mail is shown as text (far above real newsletters).
MAX_HTML_TAGS = 10_000
_TAG = re.compile(r"<[^<>]{0,2000}>")
# Whole elements dropped with their content (the others lose the tag, keep the text).
_DROPPED = {"script", "style", "title", "noscript", "template", "textarea", "select"}


def sanitize_html(markup: str, *, images: bool) -> tuple[str, int]:
    """HTML mail made safe to show: no script, event handler, style, form, frame, SVG
    or ``javascript:`` URL (nh3's allow-list); links open outside with no referrer;
    remote images removed unless ``images``; relative URLs removed (they would point at
    the webmail itself). Returns the HTML and how many remote images were blocked."""
    if markup.count("<") > MAX_HTML_TAGS:
        # nh3 grows quadratically with nesting (50,000 nested <div> took 8 s): such mail
        # is shown as its text, escaped, rather than holding a worker thread.
        return "<pre>" + html.escape(_TAG.sub(" ", markup[: 4 * 1024 * 1024])) + "</pre>", 0
    blocked = 0

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute == "src":
            remote = value.strip().lower().startswith(("http:", "https:"))
            if remote and not images:
                blocked += 1
            return value if remote and images else None
        return value

    cleaned = nh3.clean(
        markup,
        clean_content_tags=_DROPPED,
        attribute_filter=keep,
        url_schemes=_URL_SCHEMES,
        url_relative="deny",
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )
    return cleaned, blocked


def body_csp(images: bool) -> str:
    """The frame's own policy: nothing runs, nothing loads but (if asked) images; and the
    browser sandboxes it even when opened on its own."""
    sources = "data: http: https:" if images else "data:"
    return (
        f"default-src 'none'; img-src {sources}; frame-ancestors 'self'; base-uri 'none';"
        " form-action 'none'; sandbox allow-popups allow-popups-to-escape-sandbox"
    )


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback and the UTF-8 name (filename*)."""
    clean = "".join(c for c in filename if c.isprintable() and c not in '\\/"') or "tep"
    fallback = "".join(c if c.isascii() and c not in "%;" else "_" for c in clean)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(clean, safe='')}"


def signature_text(entry: dict[str, Any]) -> str:
    """The Vietnamese sentence for one recorded signature result (R16)."""
    status = "valid" if entry.get("status") == "valid" else "invalid"
    reason = entry.get("reason") if status == "invalid" else None
    try:
        result = SignatureResult(
            str(entry.get("file") or ""), status, reason, str(entry.get("signer") or ""), None
        )
    except ValueError:
        result = SignatureResult(
            str(entry.get("file") or ""), "invalid", "broken", str(entry.get("signer") or ""), None
        )
    return result.vi


# --- routes ---------------------------------------------------------------------------------


def mail_router(services: WebServices, gate: Gate) -> APIRouter:
    """Routes: /, /folder/{id}, /folder/{id}/{uid} (+ /body, /part/{n}, /seen, /flag),
    /folder/{id}/act, /folder/{id}/empty, /search."""
    router = APIRouter()
    db = services.db
    pages = services.pages
    blobs = services.store.blobs
    doc_types = services.sending.policy.document_types if services.sending else None

    async def read(work: Any) -> Any:
        return await db.run(work, write=False, brief=True)

    async def frame(visit: Visit) -> dict[str, Any]:
        """What every mail page shows around its content: folders and the quota bar."""

        def work(conn: Connection) -> dict[str, Any]:
            used, quota = listing.usage(conn, visit.mailbox_id)
            return {
                "folders": listing.folder_summaries(conn, visit.mailbox_id),
                "used": used,
                "quota": quota,
            }

        return {"visit": visit, **(await read(work))}

    def record_view(visit: Visit, folder: listing.FolderSummary) -> None:
        """R19: each look at an INBOX, as IMAP records its SELECT."""
        if folder.name == "INBOX":
            own = visit.session.mailbox_id
            services.access.record(
                AccessEvent(
                    visit.mailbox_id,
                    "select",
                    "web",
                    visit.client,
                    folder="INBOX",
                    actor_mailbox_id=own if visit.mailbox_id != own else None,
                )
            )

    async def folder_page(
        request: Request, visit: Visit, folder_id: int | None, sort: str, order: str, page: int
    ) -> HTMLResponse:
        context = await frame(visit)
        # The folder's counts come from the frame's folder list: read once per page.
        wanted = next(
            (
                f
                for f in context["folders"]
                if (f.id == folder_id if folder_id is not None else f.role == "inbox")
            ),
            None,
        )
        if wanted is None:
            raise HTTPException(404)

        def work(conn: Connection) -> listing.Page | None:
            return listing.message_page(
                conn,
                visit.mailbox_id,
                wanted.id,
                sort=sort,
                descending=order != "asc",
                page=page,
                summary=wanted,
            )

        found = await read(work)
        if found is None:
            raise HTTPException(404)
        record_view(visit, found.folder)
        notice = request.query_params.get("notice")
        return pages.render(
            request, "folder.html", {**context, "page": found, "notice": notice, "q": ""}
        )

    @router.get("/")
    async def home(
        request: Request,
        sort: Annotated[str, Query(max_length=16)] = "date",
        order: Annotated[str, Query(max_length=4)] = "desc",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> Response:
        try:
            visit = await gate.page(request)
        except NotSignedIn:
            return pages.render(request, "login.html", {"error": None, "login": ""})
        except StepOwed as owed:
            return RedirectResponse(owed.path, status_code=303)
        return await folder_page(request, visit, None, sort, order, page)

    @router.get("/folder/{folder_id}")
    async def folder(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        folder_id: int,
        sort: Annotated[str, Query(max_length=16)] = "date",
        order: Annotated[str, Query(max_length=4)] = "desc",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> Response:
        return await folder_page(request, visit, folder_id, sort, order, page)

    async def detail(visit: Visit, folder_id: int, uid: int) -> listing.MessageDetail:
        found = await read(
            lambda conn: listing.message_detail(conn, visit.mailbox_id, folder_id, uid)
        )
        if found is None:
            raise HTTPException(404)
        return found  # type: ignore[no-any-return]

    async def blob(found: listing.MessageDetail) -> bytes:
        try:
            return await asyncio.to_thread(blobs.get, found.blob)
        except FileNotFoundError:
            raise HTTPException(404) from None

    async def shown(
        visit: Visit, folder_id: int, uid: int
    ) -> tuple[listing.MessageDetail, listing.Body]:
        """The message the page or its frame shows: its row and its body parts."""
        found = await detail(visit, folder_id, uid)
        raw = await blob(found)
        body = await asyncio.to_thread(listing.message_body, raw, found.structure)
        return found, body

    @router.get("/folder/{folder_id}/{uid}")
    async def message(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        folder_id: int,
        uid: int,
        images: Annotated[int, Query(ge=0, le=1)] = 0,
    ) -> Response:
        found, body = await shown(visit, folder_id, uid)
        blocked = 0
        if body.html is not None and not images:
            blocked = (await asyncio.to_thread(sanitize_html, body.html, images=False))[1]
        document = None
        if found.document is not None:
            name = found.document.document_type
            if doc_types is not None:
                with contextlib.suppress(KeyError):
                    name = doc_types.get(name).name
            document = {
                "name": name,
                "number": found.document.document_number,
                "signatures": [
                    {"ok": s.get("status") == "valid", "text": signature_text(s)}
                    for s in found.document.signatures
                ],
            }
        context = await frame(visit)
        return pages.render(
            request,
            "message.html",
            {
                **context,
                "message": found,
                "body": body,
                "images": bool(images),
                "blocked": blocked,
                "document": document,
                "q": "",
            },
        )

    @router.get("/folder/{folder_id}/{uid}/body")
    async def message_frame(
        visit: Annotated[Visit, Depends(gate.page)],
        folder_id: int,
        uid: int,
        images: Annotated[int, Query(ge=0, le=1)] = 0,
    ) -> Response:
        _, body = await shown(visit, folder_id, uid)
        html = ""
        if body.html is not None:
            html = (await asyncio.to_thread(sanitize_html, body.html, images=bool(images)))[0]
        document = (
            '<!doctype html><html><head><meta charset="utf-8">'
            '<meta name="referrer" content="no-referrer"></head>'
            f"<body>{html}</body></html>"
        )
        return HTMLResponse(
            document,
            headers={
                "Content-Security-Policy": body_csp(bool(images)),
                "X-Frame-Options": "SAMEORIGIN",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    @router.get("/folder/{folder_id}/{uid}/part/{path}")
    async def attachment(
        visit: Annotated[Visit, Depends(gate.page)], folder_id: int, uid: int, path: str
    ) -> Response:
        if len(path) > 40 or not all(p.isdigit() for p in path.split(".")):
            raise HTTPException(404)
        found = await detail(visit, folder_id, uid)
        raw = await blob(found)
        part = await asyncio.to_thread(listing.attachment_part, raw, found.structure, path)
        if part is None:
            raise HTTPException(404)
        info, data = part
        media = (
            info.content_type if info.content_type in _SAFE_TYPES else "application/octet-stream"
        )
        return Response(
            data,
            media_type=media,
            headers={
                "Content-Disposition": content_disposition(info.filename),
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, no-store",
            },
        )

    async def change(visit: Visit, work: Any) -> Any:
        """One action, one transaction; IMAP sessions on the mailbox are told."""
        try:
            result = await db.run(work, write=True)
        except FolderGone:
            raise HTTPException(404) from None
        except OverQuota:
            raise HTTPException(413) from None
        services.store.changes.publish([visit.mailbox_id])
        return result

    @router.post("/folder/{folder_id}/{uid}/seen")
    async def seen(
        request: Request, visit: Annotated[Visit, Depends(gate.action)], folder_id: int, uid: int
    ) -> Response:
        """Opening a message marks it \\Seen: the reading page posts here once shown (a
        GET changes nothing). Answers with the refreshed folder list."""
        box = visit.mailbox_id
        if not await change(
            visit, lambda c: listing.set_flag(c, box, folder_id, [uid], SEEN, True)
        ):
            raise HTTPException(404)
        context = await frame(visit)
        return pages.render(request, "_folders.html", {**context, "current": folder_id})

    @router.post("/folder/{folder_id}/{uid}/flag")
    async def toggle_flag(
        request: Request, visit: Annotated[Visit, Depends(gate.action)], folder_id: int, uid: int
    ) -> Response:
        found = await detail(visit, folder_id, uid)
        box = visit.mailbox_id
        await change(
            visit, lambda c: listing.set_flag(c, box, folder_id, [uid], FLAGGED, not found.flagged)
        )
        if request.headers.get("hx-request"):
            return pages.render(
                request,
                "_flag.html",
                {"folder_id": folder_id, "uid": uid, "flagged": not found.flagged},
            )
        return RedirectResponse(f"/folder/{folder_id}/{uid}", status_code=303)

    @router.post("/folder/{folder_id}/act")
    async def act(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        folder_id: int,
        action: Annotated[str, Form(max_length=16)] = "",
        uid: Annotated[list[int] | None, Form()] = None,
        dest: Annotated[int | None, Form()] = None,
        back: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        uids = sorted(set(uid or []))[:MAX_UIDS]
        if action not in ACTIONS:
            raise HTTPException(400)
        box = visit.mailbox_id

        def work(conn: Connection) -> bool:
            match action:
                case "seen" | "unseen":
                    return listing.set_flag(conn, box, folder_id, uids, SEEN, action == "seen")
                case "flag" | "unflag":
                    return listing.set_flag(conn, box, folder_id, uids, FLAGGED, action == "flag")
                case "move":
                    return dest is not None and listing.move(conn, box, folder_id, uids, dest)
                case "delete":
                    return listing.delete_messages(conn, box, folder_id, uids)
                case _:
                    return listing.mark_spam(conn, box, folder_id, uids)

        if uids and not await change(visit, work):
            raise HTTPException(404)
        # Back to the list after a message left the folder or was marked unread.
        stays = action in ("flag", "unflag", "seen")
        target = back if stays and back.startswith("/") and not back.startswith("//") else ""
        return RedirectResponse(target or f"/folder/{folder_id}", status_code=303)

    @router.post("/folder/{folder_id}/empty")
    async def empty(visit: Annotated[Visit, Depends(gate.action)], folder_id: int) -> Response:
        box = visit.mailbox_id

        def work(conn: Connection) -> bool:
            found = listing.find_summary(conn, box, folder_id)
            if found is None or found.role not in ("trash", "junk"):
                return False
            listing.empty_folder(conn, box, folder_id)
            return True

        if not await change(visit, work):
            raise HTTPException(404)
        return RedirectResponse(f"/folder/{folder_id}", status_code=303)

    @router.get("/search")
    async def search(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        q: Annotated[str, Query(max_length=200)] = "",
    ) -> Response:
        found = await listing.search_mailbox(db, blobs, visit.mailbox_id, q) if q.strip() else []
        context = await frame(visit)
        return pages.render(request, "search.html", {**context, "q": q, "found": found})

    return router
