"""The admin console (Quản trị) of the centre: the request queue with its SLA, approving
with the collision screen, password resets, directory upkeep, the audit log, incidents and
the sending policy's decisions and quarantine."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations
# at definition, and `Depends(gate.page)` names the router function's local `gate`.

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy import func, select

from govmail.core.errors import (
    AddressCollisions,
    Conflict,
    GovmailError,
    InvalidInput,
    NotAllowed,
    NotFound,
)
from govmail.directory import agencies as agency_service
from govmail.directory.browse import agency_tree
from govmail.directory.delegations import grant_delegation, revoke_delegation
from govmail.directory.mailboxes import set_quota
from govmail.directory.people import move_person, update_person
from govmail.policy.review import delete_held, list_decisions, list_quarantine, release
from govmail.store.audit import export_audit, list_audit
from govmail.store.schema import incidents, people, requests
from govmail.web.directory import page_frame
from govmail.web.pages import VIETNAM, WebServices
from govmail.web.session import Gate, Visit, principal_of
from govmail.workflows.incidents import STATUSES as INCIDENT_STATUSES
from govmail.workflows.incidents import list_incidents, update_incident
from govmail.workflows.model import (
    AWAITING_DIRECTOR,
    FORM_TITLES,
    OPEN_STATUSES,
    PENDING,
    STATUS_LABELS,
)
from govmail.workflows.pdf import render_request_pdf
from govmail.workflows.roles import ROLE_LABELS, Principal, grant_role, list_roles, revoke_role

AUDIT_PAGE = 50
QUEUE_LIMIT = 500
# The statuses the queue filters by; "open" (pending or awaiting the Director) first.
QUEUE_STATUSES = {"open": ("Đang mở", "Open"), **{k: STATUS_LABELS[k] for k in STATUS_LABELS}}
QUEUE_STATUSES.pop("submitted")
QUEUE_STATUSES.pop("endorsed")
FIELD = 500  # the longest value any console form field takes


@dataclass(frozen=True)
class QueueCounts:
    """The figures at the top of the queue."""

    pending: int
    awaiting_director: int
    overdue: int
    open_incidents: int


def _error(exc: GovmailError) -> tuple[str, str]:
    return exc.message_vi, exc.message_en


def _status(exc: GovmailError) -> int:
    """The HTTP status a page answers a domain error with."""
    for kind, code in ((NotAllowed, 403), (NotFound, 404), (Conflict, 409)):
        if isinstance(exc, kind):
            return code
    return 400


def _day_start(value: str, *, next_day: bool = False) -> datetime | None:
    """A date field (YYYY-MM-DD) as the start of that Vietnamese day (or of the next one:
    "until" includes the day typed)."""
    if not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            "Ngày không hợp lệ (định dạng năm-tháng-ngày).", "Invalid date (YYYY-MM-DD)."
        ) from None
    if next_day:
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=VIETNAM).astimezone(UTC)


def _age_days(moment: datetime) -> int:
    return max(0, (datetime.now(UTC) - moment).days)


class _Chunks:
    """A write-only text stream that hands what it was given to a streaming response."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.ready = asyncio.Event()

    def write(self, text: str) -> int:
        self.parts.append(text)
        self.ready.set()
        return len(text)

    def take(self) -> str:
        taken, self.parts = "".join(self.parts), []
        self.ready.clear()
        return taken


def console_router(services: WebServices, gate: Gate) -> APIRouter:
    """Routes under /console: the queue, a request (approve with the collision screen,
    reject, the Director's endorsement, its PDF), password resets, the directory, the
    audit log (and its CSV), incidents and the sending policy."""
    router = APIRouter()
    db, cfg, pages, desk = services.db, services.cfg, services.pages, services.desk
    blobs = services.store.blobs

    async def admit(visit: Visit, *, director: bool = False) -> Principal:
        """The principal of a centre administrator (or, for the R10 pages, the Director);
        anyone else gets the 403 page."""
        who = await principal_of(db, visit)
        if not (who.centre or (director and who.director)):
            raise HTTPException(403)
        return who

    async def render(
        request: Request,
        visit: Visit,
        template: str,
        context: dict[str, Any],
        *,
        status_code: int = 200,
    ) -> Response:
        frame = await page_frame(services, visit)
        return pages.render(
            request, f"console/{template}", {**frame, **context}, status_code=status_code
        )

    # --- the queue ---------------------------------------------------------------------

    async def queue_counts() -> QueueCounts:
        async with db.read() as conn:
            by_status: dict[str, int] = {
                row[0]: int(row[1])
                for row in await conn.execute(
                    select(requests.c.status, func.count())
                    .where(requests.c.status.in_(OPEN_STATUSES))
                    .group_by(requests.c.status)
                )
            }
            submitted = (
                await conn.scalars(
                    select(requests.c.submitted_at).where(requests.c.status.in_(OPEN_STATUSES))
                )
            ).all()
            tickets = await conn.scalar(
                select(func.count()).select_from(incidents).where(incidents.c.status != "resolved")
            )
        now = datetime.now(UTC)
        overdue = 0
        for moment in submitted:
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            if desk.calendar.add_working_days(moment, cfg.workflow.sla_working_days) < now:
                overdue += 1
        return QueueCounts(
            int(by_status.get(PENDING, 0)),
            int(by_status.get(AWAITING_DIRECTOR, 0)),
            overdue,
            int(tickets or 0),
        )

    @router.get("/console")
    async def queue(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        status: Annotated[str, Query(max_length=40)] = "open",
        form: Annotated[str, Query(max_length=20)] = "",
        agency: Annotated[str, Query(max_length=200)] = "",
    ) -> Response:
        who = await admit(visit, director=True)
        error = None
        found = []
        try:
            found = await desk.list_requests(
                who,
                status=None if status == "all" else status or None,
                form=form or None,
                agency=agency.strip() or None,
                limit=QUEUE_LIMIT,
            )
        except GovmailError as exc:
            error = _error(exc)
        return await render(
            request,
            visit,
            "queue.html",
            {
                "who": who,
                "requests": found,
                "counts": await queue_counts(),
                "status": status,
                "form": form,
                "agency": agency,
                "statuses": QUEUE_STATUSES,
                "forms": FORM_TITLES,
                "error": error,
                "age": _age_days,
                "limit": QUEUE_LIMIT,
            },
        )

    # --- one request -------------------------------------------------------------------

    async def show_request(
        request: Request,
        visit: Visit,
        who: Principal,
        request_id: int,
        *,
        error: tuple[str, str] | None = None,
        status_code: int = 200,
    ) -> Response:
        try:
            shown = await desk.show(who, request_id)
        except GovmailError as exc:
            return pages.error(request, _status(exc), *_error(exc))
        return await render(
            request,
            visit,
            "request.html",
            {
                "who": who,
                "r": shown,
                "statuses": STATUS_LABELS,
                "error": error,
                "open": shown.status in OPEN_STATUSES,
            },
            status_code=status_code,
        )

    @router.get("/console/requests/{request_id:int}")
    async def request_page(
        request: Request, visit: Annotated[Visit, Depends(gate.page)], request_id: int
    ) -> Response:
        who = await admit(visit, director=True)
        return await show_request(request, visit, who, request_id)

    @router.get("/console/requests/{request_id:int}.pdf")
    async def request_pdf(
        request: Request, visit: Annotated[Visit, Depends(gate.page)], request_id: int
    ) -> Response:
        who = await admit(visit, director=True)
        try:
            shown = await desk.show(who, request_id)
        except GovmailError as exc:
            return pages.error(request, _status(exc), *_error(exc))
        data = await asyncio.to_thread(
            render_request_pdf, shown, place=cfg.workflow.place, addressee=cfg.workflow.addressee
        )
        return Response(
            data,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="yeu-cau-{request_id}.pdf"',
                "Cache-Control": "no-store",
            },
        )

    async def collision_screen(
        request: Request,
        visit: Visit,
        who: Principal,
        request_id: int,
        chosen: dict[int, str],
        *,
        error: tuple[str, str] | None = None,
        status_code: int = 200,
    ) -> Response:
        try:
            shown = await desk.show(who, request_id)
        except GovmailError as exc:
            return pages.error(request, _status(exc), *_error(exc))
        if shown.status != PENDING:
            # Decided, or awaiting the Director: the request page says which.
            return await show_request(
                request, visit, who, request_id, error=error, status_code=status_code
            )
        try:
            plan = await desk.preview(who, request_id, chosen)
        except GovmailError as exc:
            return await show_request(
                request, visit, who, request_id, error=_error(exc), status_code=_status(exc)
            )
        rows = [
            {
                "number": number,
                "row": shown.rows[number - 1] if 0 < number <= len(shown.rows) else None,
                "address": item["address"],
                "proposals": item["proposals"],
                "holder": item.get("holder", ""),
                "typed": chosen.get(number, ""),
            }
            for number, item in sorted(plan.items())
        ]
        return await render(
            request,
            visit,
            "approve.html",
            {
                "r": shown,
                "rows": rows,
                "error": error,
                "collisions": any(r["proposals"] for r in rows),
            },
            status_code=status_code,
        )

    @router.get("/console/requests/{request_id:int}/approve")
    async def approve_screen(
        request: Request, visit: Annotated[Visit, Depends(gate.page)], request_id: int
    ) -> Response:
        who = await admit(visit)
        return await collision_screen(request, visit, who, request_id, {})

    @router.post("/console/requests/{request_id:int}/approve")
    async def approve(
        request: Request, visit: Annotated[Visit, Depends(gate.action)], request_id: int
    ) -> Response:
        who = await admit(visit)
        chosen = await _chosen_addresses(request)
        try:
            approval = await desk.approve(who, request_id, addresses=chosen)
        except AddressCollisions as exc:
            return await collision_screen(
                request, visit, who, request_id, chosen, error=_error(exc), status_code=409
            )
        except InvalidInput as exc:
            # A typed address that can never be one: the screen again, choices cleared.
            return await collision_screen(
                request, visit, who, request_id, {}, error=_error(exc), status_code=400
            )
        except GovmailError as exc:
            return await show_request(
                request, visit, who, request_id, error=_error(exc), status_code=_status(exc)
            )
        # The temporary passwords live in this one response only (no-store, nothing kept).
        return await render(request, visit, "approved.html", {"approval": approval})

    @router.post("/console/requests/{request_id:int}/reject")
    async def reject(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        request_id: int,
        reason: Annotated[str, Form(max_length=4000)] = "",
    ) -> Response:
        who = await admit(visit, director=True)
        try:
            await desk.reject(who, request_id, reason=reason)
        except GovmailError as exc:
            return await show_request(
                request, visit, who, request_id, error=_error(exc), status_code=_status(exc)
            )
        return RedirectResponse(f"/console/requests/{request_id}", status_code=303)

    @router.post("/console/requests/{request_id:int}/endorse")
    async def endorse(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        request_id: int,
        note: Annotated[str, Form(max_length=4000)] = "",
    ) -> Response:
        who = await admit(visit, director=True)
        try:
            await desk.endorse(who, request_id, note=note)
        except GovmailError as exc:
            return await show_request(
                request, visit, who, request_id, error=_error(exc), status_code=_status(exc)
            )
        return RedirectResponse(f"/console/requests/{request_id}", status_code=303)

    # --- password resets (R7) ---------------------------------------------------------

    @router.get("/console/passwords")
    async def passwords(request: Request, visit: Annotated[Visit, Depends(gate.page)]) -> Response:
        await admit(visit)
        return await render(request, visit, "passwords.html", {"done": None, "error": None})

    @router.post("/console/passwords")
    async def reset(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        address: Annotated[str, Form(max_length=FIELD)] = "",
    ) -> Response:
        who = await admit(visit)
        try:
            done = await desk.reset_password(who, address.strip())
        except GovmailError as exc:
            return await render(
                request,
                visit,
                "passwords.html",
                {"done": None, "error": _error(exc), "address": address},
                status_code=_status(exc),
            )
        return await render(request, visit, "passwords.html", {"done": done, "error": None})

    # --- directory upkeep --------------------------------------------------------------

    async def directory_page(
        request: Request,
        visit: Visit,
        *,
        notice: str | None = None,
        error: tuple[str, str] | None = None,
        status_code: int = 200,
    ) -> Response:
        tree = await agency_tree(db, cfg)
        async with db.read() as conn:
            counts: dict[int, int] = {
                row[0]: int(row[1])
                for row in await conn.execute(
                    select(people.c.agency_id, func.count())
                    .where(people.c.status == "active")
                    .group_by(people.c.agency_id)
                )
            }
        return await render(
            request,
            visit,
            "directory.html",
            {
                "tree": tree,
                "counts": counts,
                "roles": await list_roles(db, cfg),
                "role_labels": ROLE_LABELS,
                "notice": notice,
                "error": error,
                "can_merge": hasattr(agency_service, "merge_agency"),
            },
            status_code=status_code,
        )

    @router.get("/console/directory")
    async def directory(request: Request, visit: Annotated[Visit, Depends(gate.page)]) -> Response:
        await admit(visit)
        return await directory_page(request, visit)

    async def directory_action(
        request: Request, visit: Visit, work: Callable[[Principal], Awaitable[str]]
    ) -> Response:
        """Run one upkeep action; the page again with what it did, or its error."""
        who = await admit(visit)
        try:
            notice = await work(who)
        except GovmailError as exc:
            return await directory_page(request, visit, error=_error(exc), status_code=_status(exc))
        return await directory_page(request, visit, notice=notice)

    Text = Annotated[str, Form(max_length=FIELD)]

    @router.post("/console/directory/agency/rename")
    async def rename(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        agency: Text = "",
        name: Text = "",
        abbr: Text = "",
    ) -> Response:
        async def work(who: Principal) -> str:
            done = await agency_service.rename_agency(
                db, cfg, agency.strip(), name=name, abbr=abbr.strip() or None, actor=who.actor
            )
            return f"Đã đổi tên cơ quan thành “{done.name}” ({done.address})."

        return await directory_action(request, visit, work)

    @router.post("/console/directory/agency/move")
    async def move(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        agency: Text = "",
        parent: Text = "",
    ) -> Response:
        async def work(who: Principal) -> str:
            done = await agency_service.move_agency(
                db, cfg, agency.strip(), parent=parent.strip() or None, actor=who.actor
            )
            where = done.parent_name or done.parent_address or "cấp cao nhất"
            return f"Đã chuyển {done.name} về {where}."

        return await directory_action(request, visit, work)

    @router.post("/console/directory/agency/merge")
    async def merge(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        agency: Text = "",
        into: Text = "",
    ) -> Response:
        async def work(who: Principal) -> str:
            merge_agency = getattr(agency_service, "merge_agency", None)
            if merge_agency is None:
                raise NotAllowed("Chưa hỗ trợ sáp nhập cơ quan.", "Merging is not available.")
            await merge_agency(
                db, cfg, agency.strip(), into.strip(), actor=who.actor, source=who.source
            )
            return f"Đã sáp nhập {agency.strip()} vào {into.strip()}."

        return await directory_action(request, visit, work)

    @router.post("/console/directory/agency/dissolve")
    async def dissolve(
        request: Request, visit: Annotated[Visit, Depends(gate.action)], agency: Text = ""
    ) -> Response:
        async def work(who: Principal) -> str:
            done = await agency_service.dissolve_agency(db, cfg, agency.strip(), actor=who.actor)
            return f"Đã giải thể {done.name} ({done.address}); địa chỉ được giữ lại."

        return await directory_action(request, visit, work)

    @router.post("/console/directory/person/move")
    async def person_move(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        person: Text = "",
        to: Text = "",
    ) -> Response:
        async def work(who: Principal) -> str:
            done = await move_person(db, cfg, person.strip(), to=to.strip(), actor=who.actor)
            return f"Đã chuyển {done.full_name} ({done.address}) sang {done.agency_name}."

        return await directory_action(request, visit, work)

    @router.post("/console/directory/person/update")
    async def person_update(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        person: Text = "",
        position: Text = "",
        department: Text = "",
    ) -> Response:
        async def work(who: Principal) -> str:
            done = await update_person(
                db,
                cfg,
                person.strip(),
                position=position.strip() or None,
                department=department.strip() or None,
                actor=who.actor,
            )
            return f"Đã cập nhật {done.full_name}: {done.position}, {done.department}."

        return await directory_action(request, visit, work)

    @router.post("/console/directory/quota")
    async def quota(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        mailbox: Text = "",
        megabytes: Text = "",
    ) -> Response:
        async def work(who: Principal) -> str:
            try:
                size = int(megabytes.strip())
            except ValueError:
                raise InvalidInput(
                    "Hạn mức phải là một số MB.", "The quota must be a number of MB."
                ) from None
            await set_quota(db, cfg, mailbox.strip(), megabytes=size, actor=who.actor)
            return f"Đã đặt hạn mức {size} MB cho {mailbox.strip()}."

        return await directory_action(request, visit, work)

    @router.post("/console/directory/role")
    async def role(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        address: Text = "",
        role: Text = "",
        agency: Text = "",
        action: Text = "grant",
    ) -> Response:
        async def work(who: Principal) -> str:
            change = grant_role if action == "grant" else revoke_role
            done = await change(db, cfg, who, address.strip(), role, agency.strip() or None)
            label = ROLE_LABELS.get(done.role, (done.role, done.role))[0]
            verb = "Đã cấp" if action == "grant" else "Đã thu hồi"
            return f"{verb} vai trò {label} của {done.address}."

        return await directory_action(request, visit, work)

    @router.post("/console/directory/delegation")
    async def delegation(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        agency: Text = "",
        person: Text = "",
        action: Text = "grant",
    ) -> Response:
        async def work(who: Principal) -> str:
            change = grant_delegation if action == "grant" else revoke_delegation
            done = await change(
                db, cfg, agency.strip(), person.strip(), actor=who.actor, source=who.source
            )
            verb = "Đã ủy quyền" if action == "grant" else "Đã thu hồi ủy quyền"
            return f"{verb} hộp thư cơ quan cho {done.person_address}."

        return await directory_action(request, visit, work)

    # --- the audit log -----------------------------------------------------------------

    @dataclass(frozen=True)
    class AuditQuery:
        since: str = ""
        until: str = ""
        actor: str = ""
        action: str = ""
        target: str = ""
        text: str = ""

        def filters(self) -> dict[str, Any]:
            return {
                "since": _day_start(self.since),
                "until": _day_start(self.until, next_day=True),
                "actor": self.actor.strip() or None,
                "action": self.action.strip() or None,
                "target": self.target.strip() or None,
                "text": self.text.strip() or None,
            }

        def query_string(self, **extra: Any) -> str:
            values = {k: v for k, v in vars(self).items() if v}
            return urlencode({**values, **extra})

    Search = Annotated[str, Query(max_length=FIELD)]

    @router.get("/console/audit")
    async def audit_page(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        since: Search = "",
        until: Search = "",
        actor: Search = "",
        action: Search = "",
        target: Search = "",
        text: Search = "",
        page: Annotated[int, Query(ge=1, le=100000)] = 1,
    ) -> Response:
        await admit(visit)
        wanted = AuditQuery(since, until, actor, action, target, text)
        entries = []
        error = None
        try:
            entries = await list_audit(
                db, **wanted.filters(), limit=AUDIT_PAGE + 1, offset=(page - 1) * AUDIT_PAGE
            )
        except GovmailError as exc:
            error = _error(exc)
        return await render(
            request,
            visit,
            "audit.html",
            {
                "aq": wanted,
                "entries": entries[:AUDIT_PAGE],
                "more": len(entries) > AUDIT_PAGE,
                "page": page,
                "error": error,
            },
            status_code=400 if error else 200,
        )

    @router.get("/console/audit.csv")
    async def audit_csv(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        since: Search = "",
        until: Search = "",
        actor: Search = "",
        action: Search = "",
        target: Search = "",
        text: Search = "",
    ) -> Response:
        await admit(visit)
        try:
            filters = AuditQuery(since, until, actor, action, target, text).filters()
        except GovmailError as exc:
            return pages.error(request, 400, *_error(exc))
        out = _Chunks()

        async def export() -> None:
            await export_audit(db, out, fmt="csv", **filters)  # type: ignore[arg-type]

        async def body() -> AsyncIterator[bytes]:
            # The BOM lets Excel read the Vietnamese text as UTF-8.
            yield "\ufeff".encode()
            task = asyncio.create_task(export())
            try:
                while not task.done() or out.parts:
                    waiter = asyncio.create_task(out.ready.wait())
                    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    chunk = out.take()
                    if chunk:
                        yield chunk.encode()
                await task  # its error, if it failed
            finally:
                task.cancel()

        stamp = datetime.now(VIETNAM).strftime("%Y%m%d-%H%M")
        return StreamingResponse(
            body(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="nhat-ky-{stamp}.csv"',
                "Cache-Control": "no-store",
            },
        )

    # --- incidents ---------------------------------------------------------------------

    async def incidents_page(
        request: Request,
        visit: Visit,
        who: Principal,
        status: str,
        *,
        error: tuple[str, str] | None = None,
        status_code: int = 200,
    ) -> Response:
        tickets = await list_incidents(db, who, status=status or None)
        return await render(
            request,
            visit,
            "incidents.html",
            {
                "tickets": tickets,
                "status": status,
                "statuses": INCIDENT_STATUSES,
                "error": error,
            },
            status_code=status_code,
        )

    @router.get("/console/incidents")
    async def incidents_list(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        status: Annotated[str, Query(max_length=20)] = "",
    ) -> Response:
        who = await admit(visit)
        return await incidents_page(request, visit, who, status)

    @router.post("/console/incidents/{incident_id:int}")
    async def incident_update(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        incident_id: int,
        status: Annotated[str, Form(max_length=20)] = "",
        note: Annotated[str, Form(max_length=4000)] = "",
    ) -> Response:
        who = await admit(visit)
        try:
            await update_incident(db, cfg, blobs, who, incident_id, status=status, resolution=note)
        except GovmailError as exc:
            return await incidents_page(
                request, visit, who, "", error=_error(exc), status_code=_status(exc)
            )
        return RedirectResponse("/console/incidents", status_code=303)

    # --- the sending policy ------------------------------------------------------------

    async def policy_page(
        request: Request,
        visit: Visit,
        *,
        notice: str | None = None,
        error: tuple[str, str] | None = None,
        status_code: int = 200,
    ) -> Response:
        decisions, held = await asyncio.gather(list_decisions(db, limit=200), list_quarantine(db))
        return await render(
            request,
            visit,
            "policy.html",
            {"decisions": decisions, "held": held, "notice": notice, "error": error},
            status_code=status_code,
        )

    @router.get("/console/policy")
    async def policy(request: Request, visit: Annotated[Visit, Depends(gate.page)]) -> Response:
        await admit(visit)
        return await policy_page(request, visit)

    @router.post("/console/policy/quarantine/{held_id:int}/{verb}")
    async def quarantine_action(
        request: Request, visit: Annotated[Visit, Depends(gate.action)], held_id: int, verb: str
    ) -> Response:
        who = await admit(visit)
        try:
            if verb == "release":
                done = await release(db, blobs, held_id, actor=who.actor)
                notice = (
                    f"Đã trả thư số {done.id}: giao {len(done.delivered)} hộp thư,"
                    f" {done.queued} người nhận ngoài tỉnh vào hàng đợi."
                )
            elif verb == "delete":
                await delete_held(db, blobs, held_id, actor=who.actor)
                notice = f"Đã xóa thư bị giữ số {held_id}."
            else:
                raise HTTPException(404)
        except GovmailError as exc:
            return await policy_page(request, visit, error=_error(exc), status_code=_status(exc))
        return await policy_page(request, visit, notice=notice)

    return router


async def _chosen_addresses(request: Request) -> dict[int, str]:
    """The collision screen's choices: ``address_<row>`` (a proposal, or an address typed
    by a client without the radio buttons), overridden by a non-empty ``custom_<row>``
    (the field to type another address)."""
    form = await request.form()
    chosen: dict[int, str] = {}
    custom: dict[int, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str) or not value.strip():
            continue
        prefix, _, row = key.partition("_")
        if row.isdigit() and prefix in ("address", "custom"):
            (chosen if prefix == "address" else custom)[int(row)] = value.strip()
    return {**chosen, **custom}
