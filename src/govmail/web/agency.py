"""The agency mailbox in the webmail (R22): choosing the mailbox to view (one's own or an
agency mailbox one is delegated on) and the one-click acknowledgement of receipt.

Whether a visit may view a mailbox is decided per request (directory/sessions.py checks
the delegation again each time): a revoked delegation sends the reader back to their own
mailbox at the next request.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations
# at definition, and `Depends(gate.page)` names the router function's local `gate`.

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection

from govmail.directory.sessions import switch_mailbox
from govmail.mailstore import listing
from govmail.mailstore.access import DelegatedAccess
from govmail.mailstore.acknowledge import (
    AcknowledgeError,
    Outcome,
    acknowledge,
    agency_of,
    is_acknowledged,
)
from govmail.mailstore.folders import readable_delegations
from govmail.mailstore.service import Incoming, Receipt
from govmail.web.directory import page_frame
from govmail.web.pages import WebServices
from govmail.web.session import Gate, Visit


@dataclass(frozen=True)
class MailboxChoice:
    mailbox_id: int
    address: str
    name: str  # the agency's name; the person's own address for their mailbox
    agency: bool


def mailbox_choices(conn: Connection, visit: Visit, domain: str) -> list[MailboxChoice]:
    """The person's own mailbox, then each agency mailbox they may read (R22)."""
    own = visit.session.mailbox_id
    choices = [MailboxChoice(own, visit.account.address, "Hộp thư cá nhân", False)]
    for box, local in readable_delegations(conn, visit.account.person_id):
        name = agency_of(conn, box) or f"{local}@{domain}"
        choices.append(MailboxChoice(box, f"{local}@{domain}", name, True))
    return choices


def agency_router(services: WebServices, gate: Gate) -> APIRouter:
    """Routes: /mailboxes (the chooser), /mailboxes/switch, and for a message of an
    agency mailbox /folder/{id}/{uid}/acknowledgement (its state, a fragment) and
    /folder/{id}/{uid}/acknowledge (send it)."""
    router = APIRouter()
    db, cfg, pages, store = services.db, services.cfg, services.pages, services.store

    @router.get("/mailboxes")
    async def chooser(request: Request, visit: Annotated[Visit, Depends(gate.page)]) -> Response:
        choices = await db.run(
            lambda c: mailbox_choices(c, visit, cfg.domain), write=False, brief=True
        )
        context = await page_frame(services, visit)
        return pages.render(request, "agency_mailboxes.html", {**context, "choices": choices})

    @router.post("/mailboxes/switch")
    async def switch(
        visit: Annotated[Visit, Depends(gate.action)],
        mailbox: Annotated[int, Form()],
    ) -> Response:
        choices = await db.run(
            lambda c: mailbox_choices(c, visit, cfg.domain), write=False, brief=True
        )
        chosen = next((c for c in choices if c.mailbox_id == mailbox), None)
        # Not delegated (or revoked): the same 404 as a mailbox that does not exist.
        if chosen is None or not await switch_mailbox(
            db, visit.session, visit.account.person_id, mailbox
        ):
            raise HTTPException(404)
        if chosen.agency:
            services.access.audit(
                DelegatedAccess(
                    actor=visit.account.address,
                    target=chosen.address,
                    action="web.switch",
                    details={"client": visit.client},
                )
            )
        return RedirectResponse("/", status_code=303)

    def agency_visit(visit: Visit) -> int:
        """The agency mailbox this visit views and may send as; 404 otherwise."""
        box = visit.mailbox_id
        if box == visit.session.mailbox_id or box not in visit.account.delegated:
            raise HTTPException(404)
        return box

    async def state(request: Request, visit: Visit, folder_id: int, uid: int) -> Response:
        box = agency_visit(visit)
        done = await db.run(
            lambda c: is_acknowledged(c, box, folder_id, uid), write=False, brief=True
        )
        if done is None:
            raise HTTPException(404)
        return pages.render(
            request,
            "agency_acknowledge.html",
            {"visit": visit, "folder_id": folder_id, "uid": uid, "done": done, "error": None},
        )

    @router.get("/folder/{folder_id}/{uid}/acknowledgement")
    async def acknowledgement(
        request: Request, visit: Annotated[Visit, Depends(gate.page)], folder_id: int, uid: int
    ) -> Response:
        return await state(request, visit, folder_id, uid)

    @router.post("/folder/{folder_id}/{uid}/acknowledge")
    async def send_acknowledgement(
        request: Request, visit: Annotated[Visit, Depends(gate.action)], folder_id: int, uid: int
    ) -> Response:
        box = agency_visit(visit)
        detail = await db.run(
            lambda c: listing.message_detail(c, box, folder_id, uid), write=False, brief=True
        )
        if detail is None:
            raise HTTPException(404)
        try:
            raw = await asyncio.to_thread(store.blobs.get, detail.blob)
        except FileNotFoundError:
            raise HTTPException(404) from None

        async def submit(incoming: Incoming) -> Receipt:
            # The same service as SMTP submission: the sending policy when it runs.
            if services.sending is None:
                return await store.receive(incoming)
            receipt, _ = await services.sending.receive(
                incoming, direction="submission", client_ip=visit.client
            )
            return receipt

        fragment = request.headers.get("hx-request") == "true"
        try:
            outcome = await acknowledge(
                store,
                submit,
                account=visit.account,
                agency_mailbox_id=box,
                detail=detail,
                raw=raw,
                client_ip=visit.client,
                agency_address=visit.mailbox_address,
            )
        except AcknowledgeError as exc:
            if not fragment:
                return pages.error(request, exc.status, exc.message_vi, exc.message_en)
            return pages.render(
                request,
                "agency_acknowledge.html",
                {"visit": visit, "folder_id": folder_id, "uid": uid, "done": False, "error": exc},
            )
        if outcome is Outcome.SENT:
            services.access.audit(
                DelegatedAccess(
                    actor=visit.account.address,
                    target=visit.mailbox_address,
                    action="web.acknowledge",
                    details={"folder_id": folder_id, "uid": uid, "client": visit.client},
                )
            )
        if fragment:
            return await state(request, visit, folder_id, uid)
        return RedirectResponse(f"/folder/{folder_id}/{uid}?acknowledged=1", status_code=303)

    return router
