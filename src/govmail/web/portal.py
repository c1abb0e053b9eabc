"""The agency portal (Cổng cơ quan): an agency's IT officer and head file requests on
Mẫu 01–03, password resets and delegations, follow them, download their PDF; anyone
signed in reports incidents."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations
# at definition, and `Depends(gate.page)` names the router function's local `gate`.

import asyncio
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData, UploadFile

from govmail.core.errors import Conflict, GovmailError, InvalidInput, NotAllowed, NotFound
from govmail.directory.agencies import load_agencies
from govmail.directory.model import Agency, Person
from govmail.directory.people import load_people
from govmail.store.schema import agencies, people
from govmail.web.directory import page_frame
from govmail.web.mail import content_disposition
from govmail.web.pages import WebServices, full_time
from govmail.web.session import Gate, Visit, principal_of
from govmail.workflows import incidents as tickets
from govmail.workflows.forms import (
    parse_typed_rows,
    read_form_file,
    template_csv,
    template_xlsx,
)
from govmail.workflows.model import (
    CHANGE_CODES,
    DELEGATION,
    FORM_01,
    FORM_02,
    FORM_03,
    FORM_TITLES,
    OPEN_STATUSES,
    RESET,
    STATUS_LABELS,
    RequestRow,
)
from govmail.workflows.pdf import render_request_pdf
from govmail.workflows.requests import MAX_DOCUMENT_BYTES
from govmail.workflows.roles import Principal

PAGE_SIZE = 50  # requests per page of the agency's list
MAX_TABLE_BYTES = 5 * 1024 * 1024  # an uploaded .xlsx/.csv of at most MAX_ROWS rows
MAX_BODY = MAX_DOCUMENT_BYTES + MAX_TABLE_BYTES + 256 * 1024  # a form with both files
MAX_PEOPLE_LISTED = 2000  # a larger agency types the address instead of picking it
TABLE_SUFFIXES = (".xlsx", ".csv")
# The signed authorisation (R22): a scan or a PDF, recognised by its first bytes.
DOCUMENT_MAGIC = {
    ".pdf": (b"%PDF",),
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
}
STATUS_FILTERS = {
    "open": "Đang chờ xử lý",
    "approved": "Đã thực hiện",
    "rejected": "Bị từ chối",
    "withdrawn": "Đã rút lại",
    "all": "Tất cả",
}


@dataclass(frozen=True)
class FormPage:
    """How the portal shows one kind of request: its table's typed column order (Mẫu
    01–03), an example line, and whether it reports a personnel decision (R21)."""

    form: str
    columns: tuple[str, ...] = ()
    example: str = ""
    personnel: bool = False
    head_only: bool = False

    @property
    def title(self) -> str:
        return FORM_TITLES[self.form][0]

    @property
    def title_en(self) -> str:
        return FORM_TITLES[self.form][1]

    @property
    def table(self) -> bool:
        return bool(self.columns)


FORM_PAGES = {
    FORM_01: FormPage(
        FORM_01,
        ("Họ và tên", "Chức vụ", "Bộ phận công tác", "Địa chỉ đề nghị (không bắt buộc)"),
        "Nguyễn Văn An | Chuyên viên | Văn phòng",
        personnel=True,
    ),
    FORM_02: FormPage(
        FORM_02,
        ("Họ và tên", "Địa chỉ hộp thư đã được cấp", "Mã (1, 2 hoặc 3)", "Nội dung mới"),
        "Nguyễn Văn Nguyên | nvnguyen_ttr | 1 | Trưởng phòng",
        personnel=True,
    ),
    FORM_03: FormPage(
        FORM_03,
        ("Họ và tên", "Địa chỉ hộp thư được cấp", "Lý do (không bắt buộc)"),
        "Phạm Du Lịch | pdlich_ttr | Nghỉ hưu",
        personnel=True,
    ),
    RESET: FormPage(RESET),
    DELEGATION: FormPage(DELEGATION, head_only=True),
}


@dataclass(frozen=True)
class Entered:
    """What the requester typed on a form, shown again when the request is refused."""

    agency_id: int | None = None
    name: str = ""
    position: str = ""
    phone: str = ""
    decision_date: str = ""
    rows: str = ""
    rename: str = ""
    address: str = ""
    person: str = ""
    revoke: bool = False

    @classmethod
    def read(cls, form: FormData) -> "Entered":
        agency = _field(form, "agency", 12)
        return cls(
            agency_id=int(agency) if agency.isdigit() else None,
            name=_field(form, "requester_name", 300),
            position=_field(form, "requester_position", 300),
            phone=_field(form, "requester_phone", 100),
            decision_date=_field(form, "decision_date", 10),
            rows=_field(form, "rows", 2_000_000),
            rename=_field(form, "rename", 500),
            address=_field(form, "address", 320),
            person=_field(form, "person", 320),
            revoke=bool(_field(form, "revoke", 4)),
        )

    def payload(self, form: str) -> dict[str, Any]:
        found: dict[str, Any] = {
            "requester": {"name": self.name, "position": self.position, "phone": self.phone}
        }
        if form == FORM_02 and self.rename.strip():
            found["rename"] = self.rename
        if form == RESET:
            found["address"] = self.address
        if form == DELEGATION:
            found["person"] = self.person
            found["revoke"] = self.revoke
        return found

    def decision(self) -> date | None:
        if not self.decision_date.strip():
            return None
        try:
            return date.fromisoformat(self.decision_date.strip())
        except ValueError:
            raise InvalidInput(
                "Ngày quyết định có hiệu lực không hợp lệ (định dạng năm-tháng-ngày).",
                "Invalid decision date (YYYY-MM-DD).",
            ) from None


def _field(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    if value is None or not isinstance(value, str):
        return ""
    if len(value) > limit:
        raise InvalidInput(
            f"Trường “{name}” dài quá {limit} ký tự.", f"Field {name} is longer than {limit}."
        )
    return value


def _upload(form: FormData, name: str) -> UploadFile | None:
    """The file chosen in ``name``; a browser sends an empty part when none was."""
    value = form.get(name)
    return value if isinstance(value, UploadFile) and value.filename else None


def when(moment: datetime | None) -> str:
    """A stored time in Vietnam time; SQLite gives back the UTC times it keeps naive."""
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return full_time(moment)


def status_code_of(error: GovmailError) -> int:
    if isinstance(error, NotAllowed):
        return 403
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Conflict):
        return 409
    return 400


def _form_page(form: str) -> FormPage:
    page = FORM_PAGES.get(form)
    if page is None:
        raise HTTPException(404)
    return page


def _table_rows(form: str, filename: str, data: bytes) -> list[RequestRow]:
    """The rows of an uploaded spreadsheet, read from a private temporary file under the
    upload's own name (its suffix picks the reader; problems name the file)."""
    name = Path(filename.replace("\\", "/")).name
    suffix = Path(name).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InvalidInput(
            f"Tệp {name} không phải .xlsx hoặc .csv.", f"{name} is not an .xlsx or .csv file."
        )
    safe = "".join(c for c in name if c.isprintable() and c not in '<>:"|?*/') or "danh-sach"
    with tempfile.TemporaryDirectory(prefix="govmail-form-") as place:
        path = Path(place) / (safe if safe.lower().endswith(suffix) else f"danh-sach{suffix}")
        path.write_bytes(data)
        return read_form_file(path, form)


async def _rows(page: FormPage, form: FormData, typed: str) -> list[RequestRow]:
    """The form's table: the uploaded file, or the typed lines (one of them)."""
    if not page.table:
        return []
    upload = _upload(form, "table")
    if upload is not None:
        if typed.strip():
            raise InvalidInput(
                "Hãy nhập danh sách hoặc tải tệp lên, không dùng cả hai.",
                "Type the rows or upload a file, not both.",
            )
        data = await upload.read(MAX_TABLE_BYTES + 1)
        if len(data) > MAX_TABLE_BYTES:
            raise InvalidInput(
                "Tệp danh sách lớn hơn 5 MB.", "The spreadsheet is larger than 5 MB."
            )
        return await asyncio.to_thread(_table_rows, page.form, upload.filename or "", data)
    if not typed.strip():
        return []  # the desk says what the form misses (no rows, no rename)
    return await asyncio.to_thread(parse_typed_rows, typed, page.form)


async def _document(form: FormData) -> tuple[str, bytes] | None:
    """The signed authorisation of a delegation: a PDF or an image of at most 10 MB."""
    upload = _upload(form, "document")
    if upload is None:
        return None
    name = upload.filename or ""
    magic = DOCUMENT_MAGIC.get(Path(name).suffix.lower())
    data = await upload.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            "Tệp văn bản ủy quyền lớn hơn 10 MB.", "The authorisation is larger than 10 MB."
        )
    if magic is None or not data.startswith(magic):
        raise InvalidInput(
            "Văn bản ủy quyền phải là tệp PDF hoặc ảnh (PNG, JPEG).",
            "The authorisation must be a PDF or an image (PNG, JPEG).",
        )
    return name, data


def portal_router(services: WebServices, gate: Gate) -> APIRouter:
    """Routes: /portal (?agency=ID&status=&page=), /portal/new/{form} (GET, POST),
    /portal/template/{form}.xlsx|.csv, /portal/requests/{id} (.pdf, /document,
    /withdraw), /portal/incidents (GET, POST), /portal/incidents/{id}."""
    db, cfg, pages, desk = services.db, services.cfg, services.pages, services.desk

    class Refusals(APIRoute):
        """A domain error a route lets through becomes a Vietnamese error page with its
        status (another agency's request: 403), never a traceback."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def refusing(request: Request) -> Response:
                try:
                    return await handle(request)
                except GovmailError as exc:
                    return pages.error(request, status_code_of(exc), exc.message_vi, exc.message_en)

            return refusing

    router = APIRouter(route_class=Refusals)

    # --- shared steps ---------------------------------------------------------------------

    async def agencies_of(who: Principal) -> list[Agency]:
        """The active agencies the principal files requests for, by name."""
        if not who.agencies:
            return []
        async with db.read() as conn:
            found = await load_agencies(conn, cfg, agencies.c.id.in_(sorted(who.agencies)))
        return sorted((a for a in found if a.status == "active"), key=lambda a: a.name)

    def chosen(found: list[Agency], wanted: int | None) -> Agency:
        if not found:
            raise NotAllowed(
                "Chỉ cán bộ chuyên trách CNTT, thủ trưởng cơ quan hoặc hộp thư cơ quan"
                " được gửi yêu cầu.",
                "Only an agency's IT officer, its head or its mailbox may file requests.",
            )
        for agency in found:
            if wanted is None or agency.id == wanted:
                return agency
        raise NotAllowed(
            "Bạn không có quyền gửi yêu cầu cho cơ quan này.", "You may not act for this agency."
        )

    def require_head(who: Principal, page: FormPage, agency: Agency) -> None:
        if page.head_only and not (who.centre or agency.id in who.head_of):
            raise NotAllowed(
                "Chỉ thủ trưởng cơ quan được ủy quyền sử dụng hộp thư cơ quan (Điều 15).",
                "Only the head of the agency may delegate its mailbox (R22).",
            )

    async def people_of(agency: Agency) -> list[Person] | None:
        """The agency's officials for the address pickers; None when too many to list."""
        async with db.read() as conn:
            found = await load_people(
                conn, cfg, people.c.agency_id == agency.id, people.c.status == "active"
            )
        if len(found) > MAX_PEOPLE_LISTED:
            return None
        return sorted(found, key=lambda p: p.full_name)

    async def render(
        request: Request,
        visit: Visit,
        template: str,
        context: dict[str, Any],
        status_code: int = 200,
    ) -> Response:
        frame = await page_frame(services, visit)
        values = {**frame, "status_labels": STATUS_LABELS, "when": when, **context}
        return pages.render(request, f"portal/{template}", values, status_code=status_code)

    # --- the portal's home: the agency's requests, or one's incident reports --------------

    @router.get("/portal")
    async def home(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        agency: Annotated[int | None, Query(ge=1)] = None,
        status: Annotated[str, Query(max_length=12)] = "open",
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    ) -> Response:
        who = await principal_of(db, visit)
        found = await agencies_of(who)
        if not found:
            reports = await tickets.list_incidents(db, who, limit=PAGE_SIZE)
            return await render(request, visit, "home.html", {"agency": None, "reports": reports})
        current = chosen(found, agency)
        wanted = status if status in STATUS_FILTERS else "open"
        listed = await desk.list_requests(
            who,
            status=None if wanted == "all" else wanted,
            agency=current.address,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
            newest=wanted != "open",  # open ones by age, like the centre's queue
        )
        context = {
            "agencies": found,
            "agency": current,
            "requests": listed[:PAGE_SIZE],
            "more": len(listed) > PAGE_SIZE,
            "page": page,
            "status": wanted,
            "filters": STATUS_FILTERS,
            "forms": [p for p in FORM_PAGES.values() if not p.head_only]
            + [p for p in FORM_PAGES.values() if p.head_only and current.id in who.head_of],
        }
        return await render(request, visit, "home.html", context)

    # --- filing a request -----------------------------------------------------------------

    async def form_page(
        request: Request,
        visit: Visit,
        page: FormPage,
        agency: Agency,
        entered: Entered,
        *,
        error: GovmailError | None = None,
        status_code: int = 200,
    ) -> Response:
        picked = await people_of(agency) if page.form in (RESET, DELEGATION) else None
        problems = error.details.get("problems") if error is not None else None
        context = {
            "page": page,
            "agency": agency,
            "entered": entered,
            "people": picked,
            "error": (error.message_vi, error.message_en) if error is not None else None,
            "problems": problems or [],
            "codes": CHANGE_CODES,
            "max_document": MAX_DOCUMENT_BYTES,
        }
        return await render(request, visit, "form.html", context, status_code)

    @router.get("/portal/new/{form}")
    async def new_request(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        form: str,
        agency: Annotated[int | None, Query(ge=1)] = None,
    ) -> Response:
        page = _form_page(form)
        who = await principal_of(db, visit)
        found = await agencies_of(who)
        if agency is None and page.head_only:
            # A delegation is the head's: default to an agency they head.
            found = [a for a in found if a.id in who.head_of] or found
        current = chosen(found, agency)
        require_head(who, page, current)
        return await form_page(request, visit, page, current, Entered(agency_id=current.id))

    async def bounded(request: Request) -> None:
        """Refuse a body larger than a form with both files before reading it."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            raise HTTPException(413)

    @router.post("/portal/new/{form}")
    async def file_request(
        request: Request,
        _size: Annotated[None, Depends(bounded)],
        visit: Annotated[Visit, Depends(gate.action)],
        form: str,
    ) -> Response:
        page = _form_page(form)
        who = await principal_of(db, visit)
        data = await request.form(max_files=4, max_fields=40)
        try:
            entered = Entered.read(data)
        except InvalidInput:
            raise HTTPException(400) from None
        current = chosen(await agencies_of(who), entered.agency_id)
        require_head(who, page, current)
        try:
            filed = await desk.submit(
                who,
                form=page.form,
                agency=current.address,
                rows=await _rows(page, data, entered.rows),
                payload=entered.payload(page.form),
                decision_date=entered.decision() if page.personnel else None,
                document=await _document(data) if page.form == DELEGATION else None,
            )
        except NotAllowed:
            raise
        except GovmailError as exc:
            status = 422 if isinstance(exc, InvalidInput) else status_code_of(exc)
            return await form_page(
                request, visit, page, current, entered, error=exc, status_code=status
            )
        return RedirectResponse(f"/portal/requests/{filed.id}?filed=1", status_code=303)

    @router.get("/portal/template/{form}.xlsx")
    async def template_sheet(visit: Annotated[Visit, Depends(gate.page)], form: str) -> Response:
        if not _form_page(form).table:
            raise HTTPException(404)
        data = await asyncio.to_thread(template_xlsx, form)
        return Response(
            data,
            media_type=XLSX_TYPE,
            headers={
                **DOWNLOAD_HEADERS,
                "Content-Disposition": content_disposition(f"mau-{form}.xlsx"),
            },
        )

    @router.get("/portal/template/{form}.csv")
    async def template_text(visit: Annotated[Visit, Depends(gate.page)], form: str) -> Response:
        if not _form_page(form).table:
            raise HTTPException(404)
        return Response(
            template_csv(form).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={
                **DOWNLOAD_HEADERS,
                "Content-Disposition": content_disposition(f"mau-{form}.csv"),
            },
        )

    # --- one request ----------------------------------------------------------------------

    @router.get("/portal/requests/{request_id:int}.pdf")
    async def request_pdf(visit: Annotated[Visit, Depends(gate.page)], request_id: int) -> Response:
        who = await principal_of(db, visit)
        shown = await desk.show(who, request_id)
        # About 0.3 s of CPU: off the event loop, which serves everyone else.
        data = await asyncio.to_thread(
            render_request_pdf,
            shown,
            place=cfg.workflow.place,
            addressee=cfg.workflow.addressee,
        )
        return Response(
            data,
            media_type="application/pdf",
            headers={
                **DOWNLOAD_HEADERS,
                "Content-Disposition": content_disposition(
                    f"yeu-cau-{shown.id}-mau-{shown.form}.pdf"
                ),
            },
        )

    @router.get("/portal/requests/{request_id:int}/document")
    async def request_document(
        visit: Annotated[Visit, Depends(gate.page)], request_id: int
    ) -> Response:
        who = await principal_of(db, visit)
        name, data = await desk.document(who, request_id)
        return Response(
            data,
            media_type="application/octet-stream",
            headers={**DOWNLOAD_HEADERS, "Content-Disposition": content_disposition(name)},
        )

    @router.get("/portal/requests/{request_id:int}")
    async def show_request(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        request_id: int,
        filed: int = 0,
        withdrawn: int = 0,
    ) -> Response:
        who = await principal_of(db, visit)
        shown = await desk.show(who, request_id)
        ours = {a.address for a in await agencies_of(who)}
        context = {
            "r": shown,
            "filed": bool(filed),
            "withdrawn": bool(withdrawn),
            "may_withdraw": shown.status in OPEN_STATUSES and (who.centre or shown.agency in ours),
            "codes": CHANGE_CODES,
        }
        return await render(request, visit, "request.html", context)

    @router.post("/portal/requests/{request_id:int}/withdraw")
    async def withdraw(visit: Annotated[Visit, Depends(gate.action)], request_id: int) -> Response:
        who = await principal_of(db, visit)
        await desk.withdraw(who, request_id)
        return RedirectResponse(f"/portal/requests/{request_id}?withdrawn=1", status_code=303)

    # --- incidents ------------------------------------------------------------------------

    async def incidents_page(
        request: Request,
        visit: Visit,
        who: Principal,
        *,
        subject: str = "",
        description: str = "",
        error: GovmailError | None = None,
    ) -> Response:
        reports = await tickets.list_incidents(db, who, limit=200)
        context = {
            "reports": reports,
            "subject": subject,
            "description": description,
            "error": (error.message_vi, error.message_en) if error is not None else None,
        }
        return await render(
            request, visit, "incidents.html", context, 422 if error is not None else 200
        )

    @router.get("/portal/incidents")
    async def incidents(request: Request, visit: Annotated[Visit, Depends(gate.page)]) -> Response:
        return await incidents_page(request, visit, await principal_of(db, visit))

    @router.post("/portal/incidents")
    async def report(request: Request, visit: Annotated[Visit, Depends(gate.action)]) -> Response:
        who = await principal_of(db, visit)
        data = await request.form(max_files=0, max_fields=10)
        try:
            subject = _field(data, "subject", 1000)
            description = _field(data, "description", 20_000)
        except InvalidInput:
            raise HTTPException(400) from None
        try:
            filed = await tickets.report_incident(
                db, cfg, services.store.blobs, who, subject=subject, description=description
            )
        except InvalidInput as exc:
            return await incidents_page(
                request, visit, who, subject=subject, description=description, error=exc
            )
        return RedirectResponse(f"/portal/incidents/{filed.id}?reported=1", status_code=303)

    @router.get("/portal/incidents/{incident_id:int}")
    async def incident(
        request: Request,
        visit: Annotated[Visit, Depends(gate.page)],
        incident_id: int,
        reported: int = 0,
    ) -> Response:
        who = await principal_of(db, visit)
        found = await tickets.show_incident(db, who, incident_id)
        context = {"incident": found, "reported": bool(reported)}
        return await render(request, visit, "incident.html", context)

    return router
