"""The JSON API (OpenAPI at /api/docs): everything the console does, for the province's
other systems, authenticated by bearer tokens (govmail token create).

A call acts as the token's principal and every role check is the services' own, so the
API can do no more than the same person could in the portal or the console. There are
no cookies, hence no CSRF surface. Failed token attempts are counted per client address
by the process's Authenticator (shared with SMTP, IMAP and the web logins); past the
limits every call from that address is answered 429 until the window passes.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations
# at definition, and `Depends(principal)` names a local function of api_app.

import asyncio
import io
import json
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import swagger_ui_bundle
from fastapi import Body, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.exceptions import HTTPException as StarletteHTTPException

from govmail import __version__
from govmail.core.errors import (
    AddressCollisions,
    Conflict,
    GovmailError,
    InvalidInput,
    NotAllowed,
    NotFound,
)
from govmail.directory import agencies as directory
from govmail.directory.accounts import client_key
from govmail.directory.browse import AgencyNode, agency_tree
from govmail.directory.delegations import grant_delegation, revoke_delegation
from govmail.directory.mailboxes import set_quota
from govmail.store.audit import export_audit, list_audit
from govmail.store.database import Database
from govmail.web.pages import WebServices, error_text
from govmail.web.session import client_address
from govmail.workflows.forms import read_form_file
from govmail.workflows.incidents import (
    list_incidents,
    report_incident,
    show_incident,
    update_incident,
)
from govmail.workflows.model import FORM_01, FORM_02, FORM_03, MailboxRequest, RequestRow
from govmail.workflows.pdf import render_request_pdf
from govmail.workflows.roles import Principal, grant_role, list_roles, revoke_role
from govmail.workflows.tokens import principal_for_token

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # a form's spreadsheet or a signed authorisation
UPLOAD_SUFFIXES = (".xlsx", ".csv")
# The Swagger UI is served from the installed swagger-ui-bundle package: the system runs
# on-premises (R1) and its pages load nothing from elsewhere. The page has no inline
# script, so the CSP allows only this site (Swagger UI sets inline styles itself).
SWAGGER_FILES = Path(swagger_ui_bundle.swagger_ui_path)
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; connect-src 'self';"
    " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
STATUS_OF: tuple[tuple[type[GovmailError], int], ...] = (
    (AddressCollisions, 409),
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (NotAllowed, 403),
)
CODE_OF = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


# --- schemas -----------------------------------------------------------------------------


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(
        description="Mã lỗi ổn định / stable code: invalid_input, not_found, conflict, "
        "forbidden, address_collisions, unauthorized, too_many_requests…"
    )
    message_vi: str = Field(description="Thông báo tiếng Việt / Vietnamese message")
    message_en: str = Field(description="Thông báo tiếng Anh / English message")


class ErrorOut(BaseModel):
    """Mọi lỗi / every error. InvalidInput về các dòng của biểu mẫu có thêm ``problems``
    [{row, reason_vi, reason_en}] (dòng 0: cả tệp) / a form's rows add ``problems``."""

    error: ErrorBody


class CollisionsOut(ErrorOut):
    """Địa chỉ đã có người dùng: đề xuất cho từng dòng, không có gì thay đổi / the rows'
    addresses are taken: proposals per row (1-based), nothing was changed."""

    collisions: dict[str, list[str]] = Field(
        description="Dòng → các địa chỉ còn trống, tốt nhất trước / row → free proposals"
    )


class RowIn(BaseModel):
    """Một người trong bảng của biểu mẫu / one person in a form's table."""

    name: str = Field(description="Họ và tên / full name", examples=["Nguyễn Văn An"])
    position: str = Field("", description="Chức vụ / position (Mẫu 01, 03)")
    department: str = Field("", description="Bộ phận công tác / department (Mẫu 01, 03)")
    address: str = Field(
        "",
        description="Mẫu 01: địa chỉ đề nghị (tùy chọn); Mẫu 02, 03: địa chỉ đã cấp / "
        "01: the address asked for (optional); 02, 03: the address already issued",
    )
    changes: list[tuple[int, str]] = Field(
        default_factory=list,
        description="Mẫu 02: [mã, nội dung mới], mã 1 chức vụ, 2 bộ phận, 3 địa chỉ (trống: "
        "theo quy định) / [code, new value]: 1 position, 2 department, 3 address",
        examples=[[[1, "Trưởng phòng"], [3, ""]]],
    )
    reason: str = Field("", description="Mẫu 03: lý do xóa / reason for the deletion")

    def row(self) -> RequestRow:
        return RequestRow(
            name=self.name,
            position=self.position,
            department=self.department,
            address=self.address,
            changes=tuple(self.changes),
            reason=self.reason,
        )


class RequestIn(BaseModel):
    form: str = Field(
        description="Loại yêu cầu / form: 01, 02, 03, reset, delegation", examples=["01"]
    )
    agency: str | None = Field(
        None,
        description="Cơ quan gửi (địa chỉ hoặc tên viết tắt); với cơ quan mới: cơ quan cấp "
        "trên / the requesting agency (address or abbr); for a new agency: its parent",
        examples=["ttr"],
    )
    rows: list[RowIn] = Field(default_factory=list, description="Bảng của biểu mẫu / the rows")
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="Các trường ngoài bảng / fields outside the table: requester {name, "
        "position, phone}; Mẫu 01 agency {name, abbr, external}; Mẫu 02 rename; reset "
        "address; delegation person, revoke",
    )
    decision_date: date | None = Field(
        None,
        description="Ngày quyết định có hiệu lực (quá 10 ngày: nộp muộn) / when the decision "
        "took effect (R21: filed more than 10 days later is late)",
    )


class SubmittedOut(BaseModel):
    id: int = Field(description="Số yêu cầu / the request's number")
    status: str = Field(description="pending hoặc awaiting_director (R10)")
    late: bool = Field(description="Nộp muộn (R21) / filed late")


class RowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    position: str
    department: str
    address: str
    changes: list[tuple[int, str]]
    reason: str


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    status: str
    note: str


class RequestOut(BaseModel):
    """Một yêu cầu và lịch sử của nó / a request and its history."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    form: str
    title: str = Field(description="Tên biểu mẫu / the form's title")
    agency: str | None = Field(description="Địa chỉ cơ quan / the agency's address")
    agency_name: str
    status: str = Field(description="pending, awaiting_director, approved, rejected, withdrawn")
    status_label: str = Field(description="Trạng thái bằng tiếng Việt / status in Vietnamese")
    submitted_by: str
    submitted_at: datetime
    decision_date: date | None
    late: bool
    rows: list[RowOut]
    payload: dict[str, Any]
    document_name: str | None
    endorsed_by: str | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    result: dict[str, Any] | None = Field(
        description="Kết quả khi duyệt (không có mật khẩu) / what approval did (no passwords)"
    )
    events: list[EventOut] = Field(description="Lịch sử (trống trong danh sách) / history")
    due_at: datetime | None = Field(description="Hạn xử lý của Trung tâm / the centre's SLA")
    overdue: bool


class PreviewRowOut(BaseModel):
    address: str | None = Field(description="Địa chỉ sẽ cấp / the address it would get")
    proposals: list[str] = Field(
        description="Đề xuất khi địa chỉ đã có người dùng / proposals when it is taken"
    )


class ApproveIn(BaseModel):
    addresses: dict[str, str] = Field(
        default_factory=dict,
        description="Dòng (từ 1) → địa chỉ chọn cho dòng đó / row (1-based) → chosen local part",
        examples=[{"2": "nvan2_ttr"}],
    )


class ApprovalOut(BaseModel):
    id: int
    status: str
    created: list[str] = Field(description="Hộp thư đã cấp / mailboxes created")
    changed: list[str] = Field(description="Hộp thư đã thay đổi / mailboxes changed")
    deleted: list[str] = Field(description="Hộp thư đã xóa / mailboxes deleted")
    archives: list[str] = Field(description="Tệp lưu trữ trước khi xóa / archives (R9)")
    passwords: dict[str, str] = Field(
        description="Mật khẩu tạm thời, chỉ hiện một lần / temporary passwords, shown once"
    )


class RejectIn(BaseModel):
    reason: str = Field(description="Lý do từ chối / why", examples=["Thiếu chữ ký thủ trưởng."])


class EndorseIn(BaseModel):
    note: str = Field("", description="Ý kiến của Giám đốc Sở / the Director's note")


class PasswordResetIn(BaseModel):
    address: str = Field(description="Hộp thư / the mailbox", examples=["nvan@khanhhoa.gov.vn"])


class PasswordOut(BaseModel):
    address: str
    password: str = Field(
        description="Mật khẩu tạm thời (phải đổi khi đăng nhập) / temporary, changed at login"
    )


class DelegationIn(BaseModel):
    agency: str = Field(description="Hộp thư cơ quan / the agency mailbox", examples=["ttr"])
    person: str = Field(description="Người được ủy quyền / the delegate's address")


class DelegationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    agency_address: str
    person_address: str
    active: bool


class RoleIn(BaseModel):
    address: str = Field(description="Hộp thư nhận vai trò / the mailbox")
    role: str = Field(description="centre_admin, director, it_officer, agency_head")
    agency: str | None = Field(
        None, description="Cơ quan (it_officer, agency_head) / the agency of per-agency roles"
    )


class RoleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    address: str
    role: str
    agency: str | None


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str = Field(description="Ai / who (address, cli:user, api:token)")
    action: str = Field(description="Việc gì / what, e.g. request.approve")
    target: str
    details: dict[str, Any]
    source: str = Field(description="Từ đâu / from where (client IP, cli)")


class IncidentIn(BaseModel):
    subject: str = Field(description="Tiêu đề / subject", examples=["Không gửi được thư"])
    description: str = Field(description="Mô tả / description")


class IncidentUpdateIn(BaseModel):
    status: Literal["open", "in_progress", "resolved"] = Field(
        description="Trạng thái mới / new status"
    )
    resolution: str = Field("", description="Cách xử lý / what was done")


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    reported_by: str
    subject: str
    description: str
    status: str
    status_label: str
    resolution: str
    created_at: datetime
    updated_at: datetime


class AgencyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    abbr: str
    address: str
    parent_address: str | None
    external: bool = Field(description="Ngoài phạm vi (R10) / outside the scope")
    status: str
    mailbox_status: str
    aliases: list[str]


class AgencyNodeOut(AgencyOut):
    children: list["AgencyNodeOut"] = Field(description="Cơ quan trực thuộc / sub-agencies")


class RenameIn(BaseModel):
    name: str = Field(description="Tên mới / new name")
    abbr: str | None = Field(None, description="Tên viết tắt mới / new abbreviation")


class MoveIn(BaseModel):
    parent: str | None = Field(description="Cơ quan cấp trên mới, null: cấp cao nhất / new parent")


class MergeIn(BaseModel):
    into: str = Field(description="Cơ quan nhận sáp nhập / the agency merged into")


class MergeOut(BaseModel):
    merged: str
    into: str
    people: int
    children: list[str]
    aliases: list[str] = Field(description="Địa chỉ cũ nay là bí danh / old addresses, aliases")


class QuotaIn(BaseModel):
    mb: int = Field(description="Hạn mức, MB / quota in megabytes", examples=[2048])


class QuotaOut(BaseModel):
    address: str
    quota_mb: int
    used_bytes: int


# --- errors ------------------------------------------------------------------------------


class Unauthorized(Exception):
    """No bearer token, or one that is unknown, revoked or of an inactive mailbox."""

    def __init__(self, given: bool) -> None:
        super().__init__("unauthorized")
        self.given = given


class Throttled(Exception):
    """Too many failed token attempts from this client address."""


def _error(code: str, vi: str, en: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message_vi": vi, "message_en": en, **extra}}


def _status(exc: GovmailError) -> int:
    return next((status for kind, status in STATUS_OF if isinstance(exc, kind)), 400)


def _add_error_handlers(app: FastAPI, retry_after: int) -> None:
    @app.exception_handler(GovmailError)
    async def domain_error(request: Request, exc: GovmailError) -> JSONResponse:
        body: dict[str, Any] = {"error": exc.as_dict()}
        if isinstance(exc, AddressCollisions):
            # The CLI's exit-3 JSON at the top level, so tools read both the same way.
            body["collisions"] = exc.collisions
        return JSONResponse(body, status_code=_status(exc))

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        challenge = 'Bearer realm="govmail"'
        if exc.given:
            challenge += ', error="invalid_token"'
        return JSONResponse(
            _error(
                "unauthorized",
                "Cần token hợp lệ trong tiêu đề Authorization: Bearer <token>.",
                "A valid token is required: Authorization: Bearer <token>.",
            ),
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )

    @app.exception_handler(Throttled)
    async def throttled(request: Request, exc: Throttled) -> JSONResponse:
        return JSONResponse(
            _error(
                "too_many_requests",
                "Quá nhiều lần dùng token sai từ địa chỉ này; hãy thử lại sau.",
                "Too many failed token attempts from this address; try again later.",
            ),
            status_code=429,
            headers={"Retry-After": str(retry_after)},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Only the location and message: ``ctx`` may hold values JSON cannot carry.
        fields = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "reason_en": e.get("msg", "")}
            for e in exc.errors()
        ]
        return JSONResponse(
            _error(
                "invalid_input",
                "Dữ liệu gửi lên không đúng định dạng.",
                "The request does not match the schema.",
                fields=fields,
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        vi, en = error_text(exc.status_code)
        code = CODE_OF.get(exc.status_code, "error")
        return JSONResponse(_error(code, vi, en), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("API request %s %s failed", request.method, request.url.path)
        return JSONResponse(_error("internal_error", *error_text(500)), status_code=500)


# --- the app -----------------------------------------------------------------------------

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Thiếu token hoặc token không hợp lệ / no token"},
    403: {"model": ErrorOut, "description": "Vai trò không cho phép / not allowed"},
    404: {"model": ErrorOut, "description": "Không tìm thấy / not found"},
    409: {"model": ErrorOut, "description": "Xung đột trạng thái / conflict"},
    422: {"model": ErrorOut, "description": "Dữ liệu không hợp lệ / invalid input"},
    429: {"model": ErrorOut, "description": "Quá nhiều lần thử token sai / throttled"},
}
DESCRIPTION = """API của hệ thống thư điện tử công vụ: mọi việc của trang quản trị, cho các
hệ thống khác của tỉnh. Xác thực bằng `Authorization: Bearer <token>` (token do Trung tâm
cấp: `govmail token create TÊN --address HỘP_THƯ`); token hành động với vai trò của hộp
thư đó.

The JSON API of govmail: everything the admin console does. Authenticate with
`Authorization: Bearer <token>`; a token acts as its mailbox, with that mailbox's roles.
Errors are `{"error": {"code", "message_vi", "message_en", …}}`."""


def api_app(services: WebServices) -> FastAPI:
    """The API as its own ASGI app, mounted at /api by web/app.py."""
    db, cfg, desk = services.db, services.cfg, services.desk
    app = FastAPI(
        title="govmail API",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # our own page below: the Swagger UI without inline script
        redoc_url=None,
        openapi_url="/openapi.json",
        responses=ERRORS,
    )
    _add_error_handlers(app, int(cfg.auth.window_s))
    bearer = HTTPBearer(auto_error=False, description="Token: govmail token create")

    async def principal(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        """The token's principal; refuses (401) without a live token and (429) a client
        address that has failed too often."""
        ip = client_address(request)
        # A key no account can have: the per-account limit then counts this address's
        # token failures, the per-IP limit all its failures in every protocol.
        key = f"api-token@{client_key(ip)}"
        if services.auth.second_factor_throttled(key, ip):
            raise Throttled()
        if credentials is None:
            raise Unauthorized(given=request.headers.get("authorization") is not None)
        who = await principal_for_token(db, credentials.credentials, source=ip)
        if who is None:
            services.auth.second_factor_failed(key, ip)
            raise Unauthorized(given=True)
        return who

    Who = Annotated[Principal, Depends(principal)]

    # --- documentation ---------------------------------------------------------------

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>govmail API</title>
<link rel="stylesheet" href="{root}/docs/ui/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg">
</head><body><div id="swagger-ui" data-spec="{root}/openapi.json"></div>
<script src="{root}/docs/ui/swagger-ui-bundle.js"></script>
<script src="{root}/docs/start.js"></script>
</body></html>"""
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})

    app.mount("/docs/ui", StaticFiles(directory=SWAGGER_FILES), name="swagger-ui")

    @app.get("/docs/start.js", include_in_schema=False)
    async def docs_start() -> Response:
        script = (
            "const box = document.getElementById('swagger-ui');\n"
            "window.ui = SwaggerUIBundle({url: box.dataset.spec, dom_id: '#swagger-ui',"
            " deepLinking: true, persistAuthorization: false});\n"
        )
        return Response(script, media_type="text/javascript")

    # --- requests --------------------------------------------------------------------

    @app.get("/requests", tags=["requests"], summary="Danh sách yêu cầu / list requests")
    async def requests_list(
        who: Who,
        status: Annotated[
            str | None,
            Query(description="pending, awaiting_director, approved, rejected, withdrawn, open"),
        ] = None,
        agency: Annotated[str | None, Query(description="Cơ quan / agency")] = None,
        form: Annotated[str | None, Query(description="01, 02, 03, reset, delegation")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[RequestOut]:
        """Các yêu cầu người gọi được xem, cũ nhất trước (không kèm lịch sử) / the
        requests the caller may see, oldest first (without history)."""
        found = await desk.list_requests(
            who, status=status, agency=agency, form=form, limit=limit, offset=offset
        )
        return [_request_out(r) for r in found]

    @app.post("/requests", status_code=201, tags=["requests"], summary="Gửi yêu cầu / submit")
    async def requests_submit(who: Who, body: RequestIn) -> SubmittedOut:
        """Gửi Mẫu 01/02/03, cấp lại mật khẩu hoặc ủy quyền (không kèm tệp) / file a
        request. Dòng sai: 422 với ``problems``; yêu cầu giống hệt đang chờ: 409."""
        request = await desk.submit(
            who,
            form=_form(body.form),
            agency=body.agency,
            rows=[r.row() for r in body.rows],
            payload=body.payload,
            decision_date=body.decision_date,
        )
        return SubmittedOut(id=request.id, status=request.status, late=request.late)

    @app.post(
        "/requests/upload",
        status_code=201,
        tags=["requests"],
        summary="Gửi yêu cầu kèm tệp / submit with files",
    )
    async def requests_upload(
        who: Who,
        form: Annotated[str, Form(description="01, 02, 03, reset, delegation")],
        agency: Annotated[str | None, Form(description="Cơ quan gửi / the agency")] = None,
        decision_date: Annotated[
            date | None, Form(description="Ngày quyết định có hiệu lực / R21")
        ] = None,
        payload: Annotated[
            str, Form(description="Các trường ngoài bảng, JSON / fields outside the table")
        ] = "{}",
        file: Annotated[
            UploadFile | None, File(description="Bảng của biểu mẫu .xlsx/.csv / the rows")
        ] = None,
        document: Annotated[
            UploadFile | None,
            File(description="Văn bản ủy quyền đã ký / the signed authorisation (R22)"),
        ] = None,
    ) -> SubmittedOut:
        """Như POST /requests, với bảng trong tệp .xlsx/.csv và văn bản ủy quyền / the
        same, the rows read from a spreadsheet, with the delegation's document."""
        form = _form(form)
        fields = _payload(payload)
        rows: list[RequestRow] = []
        if file is not None:
            rows = await _read_rows(file, form)
        attached = None
        if document is not None:
            attached = (document.filename or "van-ban", await _upload_bytes(document))
        request = await desk.submit(
            who,
            form=form,
            agency=agency or None,
            rows=rows,
            payload=fields,
            decision_date=decision_date,
            document=attached,
        )
        return SubmittedOut(id=request.id, status=request.status, late=request.late)

    @app.get("/requests/{request_id}", tags=["requests"], summary="Một yêu cầu / one request")
    async def requests_show(who: Who, request_id: int) -> RequestOut:
        return _request_out(await desk.show(who, request_id))

    @app.get(
        "/requests/{request_id}/pdf",
        tags=["requests"],
        summary="Biểu mẫu PDF / the form as PDF",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}}},
    )
    async def requests_pdf(who: Who, request_id: int) -> Response:
        """Biểu mẫu đã điền, trình bày như Mẫu 01/02/03 / the filled form as a PDF."""
        request = await desk.show(who, request_id)
        data = await asyncio.to_thread(
            render_request_pdf,
            request,
            place=cfg.workflow.place,
            addressee=cfg.workflow.addressee,
        )
        return Response(
            data,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="yeu-cau-{request_id}.pdf"'},
        )

    @app.get(
        "/requests/{request_id}/preview",
        tags=["requests"],
        summary="Xem trước địa chỉ / the collision screen",
    )
    async def requests_preview(
        who: Who,
        request_id: int,
        address: Annotated[
            list[str] | None,
            Query(description="DÒNG=ĐỊA_CHỈ đã chọn (lặp lại được) / ROW=LOCAL, repeatable"),
        ] = None,
    ) -> dict[str, PreviewRowOut]:
        """Địa chỉ mỗi dòng sẽ nhận và đề xuất khi trùng; không thay đổi gì / each row's
        address and proposals when taken; changes nothing."""
        chosen = _chosen(dict(a.partition("=")[::2] for a in address or []))
        found = await desk.preview(who, request_id, chosen)
        return {str(row): PreviewRowOut(**plan) for row, plan in found.items()}

    @app.post(
        "/requests/{request_id}/approve",
        tags=["requests"],
        summary="Duyệt / approve",
        responses={409: {"model": CollisionsOut, "description": "Địa chỉ trùng / collisions"}},
    )
    async def requests_approve(
        who: Who, request_id: int, body: Annotated[ApproveIn | None, Body()] = None
    ) -> ApprovalOut:
        """Thực hiện yêu cầu trong một giao dịch (Trung tâm). Địa chỉ trùng: 409 với
        ``collisions``; đã xử lý: 409 / perform a request (centre only)."""
        chosen = _chosen(body.addresses if body is not None else {})
        done = await desk.approve(who, request_id, addresses=chosen)
        return ApprovalOut(**done.as_dict())

    @app.post("/requests/{request_id}/reject", tags=["requests"], summary="Từ chối / reject")
    async def requests_reject(who: Who, request_id: int, body: RejectIn) -> RequestOut:
        return _request_out(await desk.reject(who, request_id, reason=body.reason))

    @app.post(
        "/requests/{request_id}/endorse",
        tags=["requests"],
        summary="Giám đốc Sở phê duyệt / the Director endorses (R10)",
    )
    async def requests_endorse(
        who: Who, request_id: int, body: Annotated[EndorseIn | None, Body()] = None
    ) -> RequestOut:
        note = body.note if body is not None else ""
        return _request_out(await desk.endorse(who, request_id, note=note))

    @app.post("/requests/{request_id}/withdraw", tags=["requests"], summary="Rút lại / withdraw")
    async def requests_withdraw(who: Who, request_id: int) -> RequestOut:
        return _request_out(await desk.withdraw(who, request_id))

    # --- passwords, delegations, roles -----------------------------------------------

    @app.post("/passwords/reset", tags=["accounts"], summary="Cấp lại mật khẩu / reset (R7)")
    async def password_reset(who: Who, body: PasswordResetIn) -> PasswordOut:
        """Mật khẩu tạm thời, chỉ trả về một lần và gửi cán bộ chuyên trách CNTT (Trung
        tâm) / a temporary password, returned once (centre only)."""
        address, password = await desk.reset_password(who, body.address)
        return PasswordOut(address=address, password=password)

    @app.post(
        "/delegations", status_code=201, tags=["accounts"], summary="Ủy quyền / delegate (R22)"
    )
    async def delegation_grant(who: Who, body: DelegationIn) -> DelegationOut:
        """Trung tâm ủy quyền trực tiếp; cơ quan gửi yêu cầu ``delegation`` kèm văn bản /
        the centre grants directly; agencies file a delegation request."""
        who.require_centre()
        change = await grant_delegation(
            db, cfg, body.agency, body.person, actor=who.actor, source=who.source
        )
        return DelegationOut.model_validate(change)

    @app.delete("/delegations", tags=["accounts"], summary="Thu hồi ủy quyền / revoke")
    async def delegation_revoke(who: Who, body: DelegationIn) -> DelegationOut:
        who.require_centre()
        change = await revoke_delegation(
            db, cfg, body.agency, body.person, actor=who.actor, source=who.source
        )
        return DelegationOut.model_validate(change)

    @app.get("/roles", tags=["accounts"], summary="Vai trò / roles")
    async def roles_list(
        who: Who, agency: Annotated[str | None, Query(description="Cơ quan / agency")] = None
    ) -> list[RoleOut]:
        who.require_centre()  # who administers the system is the centre's to know
        return [RoleOut.model_validate(g) for g in await list_roles(db, cfg, agency=agency)]

    @app.post("/roles", status_code=201, tags=["accounts"], summary="Giao vai trò / grant")
    async def roles_grant(who: Who, body: RoleIn) -> RoleOut:
        grant = await grant_role(db, cfg, who, body.address, body.role, body.agency)
        return RoleOut.model_validate(grant)

    @app.delete("/roles", tags=["accounts"], summary="Thu hồi vai trò / revoke")
    async def roles_revoke(who: Who, body: RoleIn) -> RoleOut:
        grant = await revoke_role(db, cfg, who, body.address, body.role, body.agency)
        return RoleOut.model_validate(grant)

    # --- audit log -------------------------------------------------------------------

    @app.get("/audit", tags=["audit"], summary="Nhật ký quản trị / the audit log")
    async def audit_list(
        who: Who,
        since: Annotated[datetime | None, Query(description="Từ (kể cả) / from, inclusive")] = None,
        until: Annotated[
            datetime | None, Query(description="Đến (không kể) / to, exclusive")
        ] = None,
        actor: Annotated[str | None, Query(description="Ai, đúng nguyên văn / exact")] = None,
        action: Annotated[str | None, Query(description="Tiền tố, vd. person. / prefix")] = None,
        target: Annotated[str | None, Query(description="Chuỗi con / substring")] = None,
        text: Annotated[str | None, Query(description="Tìm chung / anywhere")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[AuditOut]:
        """Mới nhất trước (Trung tâm) / newest first (centre only)."""
        who.require_centre()
        found = await list_audit(
            db,
            since=since,
            until=until,
            actor=actor,
            action=action,
            target=target,
            text=text,
            limit=limit,
            offset=offset,
        )
        return [AuditOut.model_validate(e) for e in found]

    @app.get(
        "/audit/export",
        tags=["audit"],
        summary="Xuất nhật ký / export the audit log",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
    )
    async def audit_export(
        who: Who,
        format: Annotated[Literal["csv", "jsonl"], Query(description="csv hoặc jsonl")] = "csv",
        since: Annotated[datetime | None, Query()] = None,
        until: Annotated[datetime | None, Query()] = None,
        actor: Annotated[str | None, Query()] = None,
        action: Annotated[str | None, Query()] = None,
        target: Annotated[str | None, Query()] = None,
        text: Annotated[str | None, Query()] = None,
    ) -> StreamingResponse:
        """Mọi mục khớp, cũ nhất trước, truyền dần (Trung tâm) / every matching entry,
        oldest first, streamed (centre only)."""
        who.require_centre()
        filters = {
            "since": since,
            "until": until,
            "actor": actor,
            "action": action,
            "target": target,
            "text": text,
        }
        media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
        return StreamingResponse(
            _audit_stream(db, format, filters),
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="nhat-ky-quan-tri.{format}"',
                "Cache-Control": "no-store",
            },
        )

    # --- incidents -------------------------------------------------------------------

    @app.get("/incidents", tags=["incidents"], summary="Sự cố / incidents")
    async def incidents_list(
        who: Who,
        status: Annotated[str | None, Query(description="open, in_progress, resolved")] = None,
    ) -> list[IncidentOut]:
        """Trung tâm xem tất cả, người khác xem của mình / the centre sees all."""
        found = await list_incidents(db, who, status=status)
        return [IncidentOut.model_validate(i) for i in found]

    @app.post("/incidents", status_code=201, tags=["incidents"], summary="Báo sự cố / report")
    async def incidents_report(who: Who, body: IncidentIn) -> IncidentOut:
        incident = await report_incident(
            db, cfg, services.store.blobs, who, subject=body.subject, description=body.description
        )
        return IncidentOut.model_validate(incident)

    @app.get("/incidents/{incident_id}", tags=["incidents"], summary="Một sự cố / one")
    async def incidents_show(who: Who, incident_id: int) -> IncidentOut:
        return IncidentOut.model_validate(await show_incident(db, who, incident_id))

    @app.patch("/incidents/{incident_id}", tags=["incidents"], summary="Cập nhật / update")
    async def incidents_update(who: Who, incident_id: int, body: IncidentUpdateIn) -> IncidentOut:
        incident = await update_incident(
            db,
            cfg,
            services.store.blobs,
            who,
            incident_id,
            status=body.status,
            resolution=body.resolution,
        )
        return IncidentOut.model_validate(incident)

    # --- directory upkeep (centre only) ----------------------------------------------

    @app.get("/agencies", tags=["directory"], summary="Cây cơ quan / the agency tree")
    async def agencies_tree(who: Who) -> list[AgencyNodeOut]:
        who.require_centre()
        return [_node(n) for n in await agency_tree(db, cfg)]

    @app.post("/agencies/{ref}/rename", tags=["directory"], summary="Đổi tên / rename")
    async def agencies_rename(who: Who, ref: str, body: RenameIn) -> AgencyOut:
        """Địa chỉ đổi thì địa chỉ cũ thành bí danh / a changed address keeps the old one."""
        who.require_centre()
        agency = await directory.rename_agency(
            db, cfg, ref, name=body.name, abbr=body.abbr, actor=who.actor
        )
        return AgencyOut.model_validate(agency)

    @app.post("/agencies/{ref}/move", tags=["directory"], summary="Chuyển / move")
    async def agencies_move(who: Who, ref: str, body: MoveIn) -> AgencyOut:
        who.require_centre()
        agency = await directory.move_agency(db, cfg, ref, parent=body.parent, actor=who.actor)
        return AgencyOut.model_validate(agency)

    @app.post("/agencies/{ref}/merge", tags=["directory"], summary="Sáp nhập / merge")
    async def agencies_merge(who: Who, ref: str, body: MergeIn) -> MergeOut:
        """Cán bộ giữ địa chỉ; địa chỉ cơ quan cũ thành bí danh của cơ quan mới / people
        keep their addresses; the old agency address becomes an alias."""
        who.require_centre()
        merged = await directory.merge_agency(
            db, cfg, ref, body.into, actor=who.actor, source=who.source
        )
        return MergeOut(**merged)

    @app.post("/agencies/{ref}/dissolve", tags=["directory"], summary="Giải thể / dissolve")
    async def agencies_dissolve(who: Who, ref: str) -> AgencyOut:
        who.require_centre()
        agency = await directory.dissolve_agency(db, cfg, ref, actor=who.actor)
        return AgencyOut.model_validate(agency)

    @app.put("/mailboxes/{address}/quota", tags=["directory"], summary="Hạn mức / quota (R17)")
    async def mailbox_quota(who: Who, address: str, body: QuotaIn) -> QuotaOut:
        who.require_centre()
        done = await set_quota(db, cfg, address, megabytes=body.mb, actor=who.actor)
        return QuotaOut(**done)

    return app


# --- helpers -----------------------------------------------------------------------------


def _request_out(request: MailboxRequest) -> RequestOut:
    return RequestOut.model_validate(request)


def _node(node: AgencyNode) -> AgencyNodeOut:
    return AgencyNodeOut(
        **AgencyOut.model_validate(node.agency).model_dump(),
        children=[_node(child) for child in node.children],
    )


def _form(form: str) -> str:
    """ "1" means "01", as at the command line."""
    return {"1": FORM_01, "2": FORM_02, "3": FORM_03}.get(form.strip(), form.strip())


def _payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidInput(
            "Trường payload phải là một đối tượng JSON.", "The payload field must be a JSON object."
        )
    return value


def _chosen(addresses: dict[str, str]) -> dict[int, str]:
    """{"ROW": "local"} → {row: local}; a row that is not a positive number is refused."""
    chosen: dict[int, str] = {}
    for row, local in addresses.items():
        if not row.strip().isdigit() or int(row) < 1 or not local.strip():
            raise InvalidInput(
                f"Địa chỉ chọn '{row}={local}': hãy ghi DÒNG=ĐỊA_CHỈ, ví dụ 2=nvnguyen_ttr.",
                f"Chosen address '{row}={local}': write ROW=LOCAL, e.g. 2=nvnguyen_ttr.",
            )
        chosen[int(row)] = local.strip()
    return chosen


async def _upload_bytes(upload: UploadFile) -> bytes:
    """The uploaded file's bytes, refusing more than MAX_UPLOAD_BYTES without reading
    them all."""
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInput(
            f"Tệp {upload.filename} lớn hơn 10 MB.", f"{upload.filename} is larger than 10 MB."
        )
    return data


async def _read_rows(upload: UploadFile, form: str) -> list[RequestRow]:
    """The form's rows from an uploaded .xlsx/.csv, saved under its own suffix (the
    reader picks the format by it) in a temporary directory removed afterwards."""
    name = Path((upload.filename or "").replace("\\", "/")).name
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidInput(
            f"Tệp {name or '(không tên)'} không phải .xlsx hoặc .csv.",
            f"{name or '(unnamed)'} is not an .xlsx or .csv file.",
            problems=[
                {
                    "row": 0,
                    "reason_vi": "Hãy tải lên tệp .xlsx hoặc .csv.",
                    "reason_en": "Upload an .xlsx or .csv file.",
                }
            ],
        )
    data = await _upload_bytes(upload)

    def read() -> list[RequestRow]:
        with tempfile.TemporaryDirectory(prefix="govmail-upload-") as tmp:
            path = Path(tmp) / f"bang{suffix}"
            path.write_bytes(data)
            return read_form_file(path, form)

    return await asyncio.to_thread(read)


# --- streaming the audit export -------------------------------------------------------


class _Pipe(io.StringIO):
    """What export_audit writes, taken by the response a page at a time."""

    def take(self) -> str:
        text = self.getvalue()
        self.seek(0)
        self.truncate()
        return text


class _PacedDatabase:
    """The database as export_audit sees it when its output streams to a client: before
    reading each page it waits until the client has taken everything written so far, so
    a slow client never makes the server hold more than one page of the log."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.is_sqlite = db.is_sqlite
        self.wanting = asyncio.Event()  # the writer finished a page and waits for room
        self.room = asyncio.Event()  # the reader took what was written

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        self.wanting.set()
        await self.room.wait()
        self.room.clear()
        async with self.db.read() as conn:
            yield conn


async def _audit_stream(db: Database, fmt: str, filters: dict[str, Any]) -> AsyncIterator[bytes]:
    pipe = _Pipe()
    paced = _PacedDatabase(db)
    if fmt == "csv":
        pipe.write("\ufeff")  # Excel reads a CSV as UTF-8 only after a BOM
    # export_audit only calls db.read() and reads db.is_sqlite: the paced stand-in has both.
    writer = asyncio.create_task(export_audit(paced, pipe, fmt=fmt, **filters))  # type: ignore[arg-type]
    try:
        while True:
            asked = asyncio.create_task(paced.wanting.wait())
            await asyncio.wait({writer, asked}, return_when=asyncio.FIRST_COMPLETED)
            asked.cancel()
            paced.wanting.clear()
            chunk = pipe.take()
            if chunk:
                yield chunk.encode("utf-8")
            if writer.done():
                writer.result()  # an error ends the stream (the status line is sent)
                return
            paced.room.set()
    finally:
        writer.cancel()
