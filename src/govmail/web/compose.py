"""The webmail's compose page: writing, replying, forwarding, drafts, directory suggestions,
and sending through the same submission service as SMTP (so the policy applies)."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations
# at definition, and `Depends(gate.page)` names the router function's local `gate`.

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection
from starlette.datastructures import FormData, UploadFile

from govmail.directory.search import search_directory
from govmail.mailstore import listing
from govmail.mailstore.compose import (
    ComposeError,
    Draft,
    Upload,
    body_text,
    build_message,
    discard_draft,
    drafts_folder,
    file_draft,
    forward_draft,
    parse_recipients,
    reply_draft,
    resumed_draft,
    threading_headers,
    web_trace,
    with_attachments,
)
from govmail.mailstore.delivery import DeliveryFailed
from govmail.mailstore.flags import ANSWERED
from govmail.mailstore.messages import FolderGone, OverQuota
from govmail.mailstore.preferences import load_preferences, with_signature
from govmail.mailstore.ratelimit import count_recipient, duration
from govmail.mailstore.recipients import LocalRecipient, is_local_domain
from govmail.mailstore.service import Incoming, Receipt
from govmail.policy.formats import FORMAT_EXTENSIONS
from govmail.web.pages import WebServices, human_size
from govmail.web.session import Gate, Visit

log = logging.getLogger(__name__)

MAX_FILES = 50  # attachments of one message
MAX_TEXT = 1_000_000  # characters of the body
SUGGESTIONS = 8
Error = tuple[str, str]


class _Refused(Exception):
    """A Vietnamese/English text to show above the form, which stays filled."""

    def __init__(self, vi: str, en: str) -> None:
        super().__init__(en)
        self.text = (vi, en)


def _ref(value: str) -> tuple[int, int] | None:
    """ "folder:uid" from a hidden field, or None."""
    folder, _, uid = value.partition(":")
    if folder.isdigit() and uid.isdigit() and len(value) < 40:
        return int(folder), int(uid)
    return None


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def compose_router(services: WebServices, gate: Gate) -> APIRouter:
    """Routes: GET /compose (?to=), /compose/reply/{folder}/{uid} (?all=1),
    /compose/forward/{folder}/{uid}, /compose/draft/{uid}, /compose/suggest;
    POST /compose (action=send or save)."""
    router = APIRouter()
    db = services.db
    cfg = services.cfg
    store = services.store
    pages = services.pages
    allowed = sorted(
        {ext for fmt in cfg.policy.allowed_formats for ext in FORMAT_EXTENSIONS.get(fmt, ())}
    )
    # A multipart body is base64-free, but leave room for the form's other fields.
    max_body = cfg.smtp.max_message_bytes + 2 * 1024 * 1024

    async def read(work: Any) -> Any:
        return await db.run(work, write=False, brief=True)

    async def render(
        request: Request,
        visit: Visit,
        draft: Draft,
        *,
        kept: list[listing.Attachment] | None = None,
        source: str = "",
        draft_uid: int | None = None,
        reply: str = "",
        error: Error | None = None,
        lost_files: bool = False,
        notice: str = "",
        sent: Receipt | None = None,
        warnings: list[str] | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        def work(conn: Connection) -> dict[str, Any]:
            used, quota = listing.usage(conn, visit.mailbox_id)
            return {
                "folders": listing.folder_summaries(conn, visit.mailbox_id),
                "used": used,
                "quota": quota,
            }

        context = await read(work)
        return pages.render(
            request,
            "compose.html",
            {
                **context,
                "visit": visit,
                "q": "",
                "draft": draft,
                "kept": kept or [],
                "source": source,
                "draft_uid": draft_uid,
                "reply": reply,
                "error": error,
                "lost_files": lost_files,
                "notice": notice,
                "sent": sent,
                "warnings": warnings or [],
                "max_bytes": cfg.policy.max_attachments_bytes,
                "max_label": human_size(cfg.policy.max_attachments_bytes),
                "extensions": allowed,
            },
            status_code=status_code,
        )

    async def original(visit: Visit, folder_id: int, uid: int) -> tuple[Any, bytes, Any]:
        """A message of the visited mailbox: its detail, bytes and body; 404 otherwise."""
        found = await read(
            lambda conn: listing.message_detail(conn, visit.mailbox_id, folder_id, uid)
        )
        if found is None:
            raise HTTPException(404)
        try:
            raw = await asyncio.to_thread(store.blobs.get, found.blob)
        except FileNotFoundError:
            raise HTTPException(404) from None
        body = await asyncio.to_thread(listing.message_body, raw, found.structure)
        return found, raw, body

    # --- the form, empty or prepared ------------------------------------------------------

    # Settings (web/settings.py): the signature is prefilled into a new body, editable.
    async def signed(visit: Visit, draft: Draft) -> Draft:
        box = visit.mailbox_id
        prefs = await read(lambda conn: load_preferences(conn, box))
        return replace(draft, body=with_signature(draft.body, prefs.signature))

    @router.get("/compose")
    async def compose(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        to: Annotated[str, Query(max_length=2000)] = "",
    ) -> Response:
        return await render(request, visit, await signed(visit, Draft(to=to)))

    @router.get("/compose/reply/{folder_id}/{uid}")
    async def reply(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        folder_id: int,
        uid: int,
        everyone: Annotated[int, Query(alias="all", ge=0, le=1)] = 0,
    ) -> Response:
        found, raw, body = await original(visit, folder_id, uid)
        headers = threading_headers(raw)
        ids = (
            headers.get("message-id", ""),
            headers.get("in-reply-to", ""),
            headers.get("references", ""),
        )
        own = visit.account.senders | {visit.mailbox_address.lower()}
        draft = reply_draft(found, body_text(body), ids, own=own, everyone=bool(everyone))
        draft = await signed(visit, draft)
        return await render(request, visit, draft, reply=f"{folder_id}:{uid}")

    @router.get("/compose/forward/{folder_id}/{uid}")
    async def forward(
        request: Request, visit: Annotated[Visit, Depends(gate.page)], folder_id: int, uid: int
    ) -> Response:
        found, _raw, body = await original(visit, folder_id, uid)
        draft = forward_draft(found, body_text(body))
        draft = await signed(visit, draft)
        return await render(
            request, visit, draft, kept=body.attachments, source=f"{folder_id}:{uid}"
        )

    @router.get("/compose/draft/{uid}")
    async def resume(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        uid: int,
        saved: Annotated[int, Query(ge=0, le=1)] = 0,
    ) -> Response:
        folder = await read(lambda conn: drafts_folder(conn, visit.mailbox_id))
        if folder is None:
            raise HTTPException(404)
        found, raw, body = await original(visit, folder, uid)
        draft = resumed_draft(found, body.text or body_text(body), threading_headers(raw))
        notice = "Đã lưu thư nháp." if saved else ""
        return await render(
            request,
            visit,
            draft,
            kept=body.attachments,
            source=f"{folder}:{uid}",
            draft_uid=uid,
            notice=notice,
        )

    @router.get("/compose/suggest")
    async def suggest(request: Request, visit: Annotated[Visit, Depends(gate.page)]) -> Response:
        """Directory entries for the last address being typed in To, Cc or Bcc (htmx)."""
        field = next((f for f in ("to", "cc", "bcc") if request.query_params.get(f)), "to")
        typed = request.query_params.get(field, "")[:2000]
        term = typed.replace(";", ",").rsplit(",", 1)[-1].strip()
        hits = await search_directory(db, cfg, term, limit=SUGGESTIONS) if len(term) >= 2 else []
        entries = [
            {
                "hit": hit,
                "value": hit.address
                if any(c in hit.name for c in ',;"<>()')
                else f"{hit.name} <{hit.address}>",
            }
            for hit in hits
        ]
        return pages.render(
            request, "_compose_suggest.html", {"entries": entries, "field": field, "term": term}
        )

    # --- sending and saving -----------------------------------------------------------------

    async def bounded(request: Request) -> None:
        """Refuse a body larger than any message could be before reading it."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_body:
            raise HTTPException(413)

    async def kept_files(visit: Visit, source: str, paths: list[str]) -> list[Upload]:
        """The attachments of ``source`` (a draft or a forwarded message of this mailbox)
        the form kept."""
        place = _ref(source)
        wanted = [p for p in paths if len(p) < 40 and all(s.isdigit() for s in p.split("."))]
        if place is None or not wanted:
            return []
        found, raw, _body = await original(visit, *place)
        files = []
        for path in wanted[:MAX_FILES]:
            part = listing.attachment_part(raw, found.structure, path)
            if part is not None:
                files.append(Upload(part[0].filename, part[1]))
        return files

    async def recipients(visit: Visit, draft: Draft) -> Incoming:
        """The envelope as SMTP's RCPT builds it, each recipient counted against R23;
        raises ComposeError or _Refused with the reason."""
        addresses = [
            *parse_recipients(draft.to),
            *parse_recipients(draft.cc),
            *parse_recipients(draft.bcc),
        ]
        addresses = list(dict.fromkeys(addresses))
        if not addresses:
            raise _Refused("Chưa có người nhận.", "No recipient given.")
        if len(addresses) > cfg.smtp.max_recipients:
            raise _Refused(
                f"Quá nhiều người nhận (tối đa {cfg.smtp.max_recipients}).",
                f"Too many recipients (at most {cfg.smtp.max_recipients}).",
            )
        local: dict[int, str] = {}
        seen: dict[int, LocalRecipient] = {}
        remote: list[str] = []
        for address in addresses:
            name, _, domain = address.rpartition("@")
            if not is_local_domain(cfg, domain):
                remote.append(address)
                continue
            found = await store.find_recipient(name)
            if found is None:
                raise _Refused(
                    f"Hộp thư <{address}> không tồn tại. Hãy kiểm tra lại địa chỉ"
                    " (có thể tra trong Danh bạ).",
                    f"<{address}>: no such mailbox.",
                )
            if found.status != "active":
                raise _Refused(
                    f"Hộp thư <{address}> đã ngừng hoạt động.", f"<{address}>: mailbox disabled."
                )
            local.setdefault(found.mailbox_id, address)
            seen[found.mailbox_id] = found
        for address in addresses:
            over = await count_recipient(store, visit.account, address, visit.client)
            if over is not None:
                window_vi, window_en = duration(over.window_s)
                wait_vi, wait_en = duration(over.retry_after_s)
                scope_vi, scope_en = ("ngoài tỉnh ", "external ") if over.external else ("", "")
                raise _Refused(
                    f"Tài khoản đã gửi tới {over.limit} người nhận {scope_vi}trong {window_vi},"
                    f" hãy thử lại sau {wait_vi}.",
                    f"Sending limit of {over.limit} {scope_en}recipients per {window_en}"
                    f" reached, try again in {wait_en}.",
                )
        at = datetime.now().astimezone()
        raw = build_message(draft, sender=visit.mailbox_address, hostname=cfg.hostname, at=at)
        trace = web_trace(
            client_ip=visit.client, hostname=cfg.hostname, login=visit.account.address, at=at
        )
        return Incoming(
            raw=raw,
            sender=visit.mailbox_address,
            local=local,
            seen=seen,
            remote=remote,
            account=visit.account,
            trace=trace,
            at=at,
            sent_mailbox=visit.mailbox_id,  # an agency mailbox keeps its own sent mail
        )

    async def change(visit: Visit, work: Any) -> Any:
        try:
            result = await db.run(work, write=True)
        except FolderGone:
            raise HTTPException(404) from None
        store.changes.publish([visit.mailbox_id])
        return result

    @router.post("/compose")
    async def submit(
        request: Request,
        _size: Annotated[None, Depends(bounded)],
        visit: Annotated[Visit, Depends(gate.action)],
    ) -> Response:
        form = await request.form(max_files=MAX_FILES, max_fields=200)
        action = _text(form, "action", 8)
        if action not in ("send", "save"):
            raise HTTPException(400)
        draft = Draft(
            to=_text(form, "to", 20_000),
            cc=_text(form, "cc", 20_000),
            bcc=_text(form, "bcc", 20_000),
            subject=_text(form, "subject", 2000),
            body=_text(form, "body", MAX_TEXT),
            in_reply_to=_text(form, "in_reply_to", 1000),
            references=_text(form, "references", 20_000),
        )
        source = _text(form, "source", 40)
        reply_to = _text(form, "reply", 40)
        draft_field = _text(form, "draft", 12)
        draft_uid = int(draft_field) if draft_field.isdigit() else None
        paths = [p for p in form.getlist("keep") if isinstance(p, str)]
        uploads = [
            f for f in form.getlist("attachment") if isinstance(f, UploadFile) and f.filename
        ]
        # What the page shows again when the form is refused: typed text and kept files
        # stay; chosen files must be chosen again (a browser never refills a file input).
        kept_listing: list[listing.Attachment] = []
        place = _ref(source)
        if place is not None:
            _found, _raw, kept_body = await original(visit, *place)
            kept_listing = [a for a in kept_body.attachments if a.path in paths]

        async def refused(text: Error, status: int = 422) -> HTMLResponse:
            return await render(
                request,
                visit,
                draft,
                kept=kept_listing,
                source=source,
                draft_uid=draft_uid,
                reply=reply_to,
                error=text,
                lost_files=bool(uploads),
                status_code=status,
            )

        files = [Upload(f.filename or "", await f.read()) for f in uploads]
        files = await kept_files(visit, source, paths) + files
        if sum(len(f.data) for f in files) > cfg.smtp.max_message_bytes:
            limit = human_size(cfg.smtp.max_message_bytes)
            return await refused(
                (f"Thư quá lớn (tối đa {limit}).", f"Message too large (at most {limit})."), 413
            )
        draft = with_attachments(draft, files)

        if action == "save":
            at = datetime.now().astimezone()
            raw = build_message(
                draft, sender=visit.mailbox_address, hostname=cfg.hostname, at=at, keep_bcc=True
            )
            stored = await store.store(raw)
            try:
                uid = await change(
                    visit, lambda c: file_draft(c, visit.mailbox_id, stored, draft_uid)
                )
            except OverQuota:
                return await refused(("Hộp thư đã đầy, không lưu được thư nháp.", "Mailbox full."))
            if uid is None:
                return await refused(("Hộp thư không có thư mục Nháp.", "No Drafts folder."))
            return RedirectResponse(f"/compose/draft/{uid}?saved=1", status_code=303)

        try:
            incoming = await recipients(visit, draft)
        except ComposeError as exc:
            return await refused((exc.message_vi, exc.message_en))
        except _Refused as exc:
            return await refused(exc.text)
        try:
            if services.sending is None:
                receipt, evaluation = await store.receive(incoming), None
            else:
                receipt, evaluation = await services.sending.receive(
                    incoming, direction="submission", client_ip=visit.client
                )
        except (DeliveryFailed, OSError):
            log.exception("webmail send by %s failed", visit.account.address)
            return await refused(
                (
                    "Lỗi tạm thời khi gửi thư, hãy thử lại sau.",
                    "Temporary failure sending the message, try again later.",
                ),
                503,
            )
        if receipt.refusal is not None:
            return await refused((receipt.refusal.vi, receipt.refusal.en))

        box = visit.mailbox_id
        replied = _ref(reply_to)

        def tidy(conn: Connection) -> None:
            if draft_uid is not None:
                discard_draft(conn, box, draft_uid)
            if replied is not None:
                listing.set_flag(conn, box, replied[0], [replied[1]], ANSWERED, True)

        if draft_uid is not None or replied is not None:
            await change(visit, tidy)
        warnings = [w.vi for w in evaluation.warnings] if evaluation is not None else []
        return await render(request, visit, Draft(), sent=receipt, warnings=warnings)

    return router
