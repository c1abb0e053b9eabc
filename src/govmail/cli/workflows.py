"""The CLI of the request workflows, roles, password resets, API tokens and incidents: the
centre's operator at the shell, acting with every power and audited by OS user name."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from govmail.cli.app import (
    DEFAULT_DATA,
    AsJson,
    DataDir,
    _emit,
    _fail,
    _os_actor,
    _run,
    _translated,
    app,
)
from govmail.config import Config
from govmail.core.errors import AddressCollisions, InvalidInput
from govmail.store.database import Database
from govmail.workflows.model import FORM_01, FORM_02, FORM_03, MailboxRequest, RequestRow
from govmail.workflows.requests import RequestDesk
from govmail.workflows.roles import Principal
from govmail.workflows.service import request_desk

request_app = typer.Typer(help="Yêu cầu của cơ quan (Mẫu 01–03, R6–R10).", no_args_is_help=True)
password_app = typer.Typer(help="Mật khẩu (R7).", no_args_is_help=True)
role_app = typer.Typer(help="Vai trò quản trị (roles).", no_args_is_help=True)
token_app = typer.Typer(help="Token của API (API tokens).", no_args_is_help=True)
incident_app = typer.Typer(help="Sự cố (incident tickets, R20).", no_args_is_help=True)
app.add_typer(request_app, name="request")
app.add_typer(password_app, name="password")
app.add_typer(role_app, name="role")
app.add_typer(token_app, name="token")
app.add_typer(incident_app, name="incident")


def operator() -> Principal:
    return Principal.operator(_os_actor())


def desk(db: Database, cfg: Config) -> RequestDesk:
    return request_desk(db, cfg)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"'{value}': hãy ghi ngày dạng YYYY-MM-DD.") from None


def _request_line(r: MailboxRequest) -> str:
    flags = (" [MUỘN]" if r.late else "") + (" [QUÁ HẠN]" if r.overdue else "")
    return (
        f"{r.id:>5}  {r.form:<10} {r.status_label:<28} {r.agency or r.agency_name}"
        f"  {r.submitted_at.astimezone():%Y-%m-%d %H:%M}  {len(r.rows)} dòng{flags}"
    )


# --- requests ----------------------------------------------------------------------------


@request_app.command("submit")
def request_submit(
    agency: Annotated[
        str | None, typer.Option("--agency", help="The requesting agency (address or abbr).")
    ] = None,
    form: Annotated[str, typer.Option("--form", help="01, 02, 03, reset or delegation.")] = "",
    file: Annotated[
        Path | None, typer.Option("--file", help="The form's rows: .xlsx or .csv.")
    ] = None,
    decision_date: Annotated[
        str | None,
        typer.Option("--decision-date", help="When the decision took effect (R21), YYYY-MM-DD."),
    ] = None,
    new_agency: Annotated[
        str | None, typer.Option("--new-agency", help="Mẫu 01: name of a new agency.")
    ] = None,
    abbr: Annotated[str | None, typer.Option("--abbr", help="The new agency's abbr.")] = None,
    external: Annotated[
        bool, typer.Option("--external", help="The new agency is outside the scope (R10).")
    ] = False,
    rename: Annotated[str | None, typer.Option("--rename", help="Mẫu 02: new name.")] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="reset: the mailbox's address.")
    ] = None,
    person: Annotated[
        str | None, typer.Option("--person", help="delegation: the delegate's address.")
    ] = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="delegation: take it back.")] = False,
    document: Annotated[
        Path | None, typer.Option("--document", help="delegation: the signed authorisation.")
    ] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Gửi một yêu cầu (file a request on behalf of an agency); in ra số yêu cầu."""
    from govmail.workflows.forms import read_form_file

    form = {"1": FORM_01, "2": FORM_02, "3": FORM_03}.get(form, form)
    rows: list[RequestRow] = []
    if file is not None:
        if form not in (FORM_01, FORM_02, FORM_03):
            raise _fail(
                InvalidInput(
                    "--file chỉ dùng cho Mẫu 01, 02, 03.", "--file is for forms 01, 02, 03."
                ),
                as_json,
            )
        rows = _translated(as_json, lambda: read_form_file(file, form))
    payload: dict[str, Any] = {}
    if new_agency:
        payload["agency"] = {"name": new_agency, "abbr": abbr, "external": external}
    if rename:
        payload["rename"] = rename
    if address:
        payload["address"] = address
    if person:
        payload["person"] = person
        payload["revoke"] = revoke
    attached = (document.name, document.read_bytes()) if document is not None else None
    who = operator()
    request = _run(
        data,
        as_json,
        lambda db, cfg: desk(db, cfg).submit(
            who,
            form=form,
            agency=agency,
            rows=rows,
            payload=payload,
            decision_date=_date(decision_date),
            document=attached,
        ),
    )
    text = str(request.id)
    if not as_json and request.late:
        text += "\n(Nộp muộn: quá 10 ngày kể từ ngày quyết định có hiệu lực.)"
    _emit(as_json, {"id": request.id, "status": request.status, "late": request.late}, text)


@request_app.command("list")
def request_list(
    status: Annotated[
        str | None,
        typer.Option(help="pending, awaiting_director, approved, rejected, withdrawn, open."),
    ] = None,
    agency: Annotated[str | None, typer.Option(help="Only this agency's requests.")] = None,
    form: Annotated[str | None, typer.Option(help="Only this form.")] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Danh sách yêu cầu, cũ nhất trước (the queue, oldest first)."""
    who = operator()
    found = _run(
        data,
        as_json,
        lambda db, cfg: desk(db, cfg).list_requests(
            who, status=status, agency=agency, form=form, limit=1000
        ),
    )
    _emit(
        as_json,
        [r.as_dict() for r in found],
        "\n".join(_request_line(r) for r in found) or "Không có yêu cầu nào.",
    )


@request_app.command("show")
def request_show(
    request_id: Annotated[int, typer.Argument(help="The request's number.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Chi tiết một yêu cầu và lịch sử của nó."""
    who = operator()
    r = _run(data, as_json, lambda db, cfg: desk(db, cfg).show(who, request_id))
    lines = [_request_line(r)]
    for number, row in enumerate(r.rows, 1):
        detail = ", ".join(x for x in (row.position, row.department, row.address, row.reason) if x)
        changes = "; ".join(f"{code}: {value or '(theo quy định)'}" for code, value in row.changes)
        lines.append(f"  {number}. {row.name}  {detail}  {changes}".rstrip())
    lines += [
        f"  {e.at.astimezone():%Y-%m-%d %H:%M} {e.actor}: {e.status} {e.note}" for e in r.events
    ]
    _emit(as_json, r.as_dict(), "\n".join(lines))


def _addresses(values: list[str], as_json: bool) -> dict[int, str]:
    chosen: dict[int, str] = {}
    for value in values:
        row, sep, local = value.partition("=")
        if not sep or not row.strip().isdigit() or not local.strip():
            raise _fail(
                InvalidInput(
                    f"--address '{value}': hãy ghi DÒNG=ĐỊA_CHỈ, ví dụ 2=nvnguyen_ttr.",
                    f"--address '{value}': write ROW=LOCAL, e.g. 2=nvnguyen_ttr.",
                ),
                as_json,
            )
        chosen[int(row)] = local.strip()
    return chosen


@request_app.command("approve")
def request_approve(
    request_id: Annotated[int, typer.Argument(help="The request's number.")],
    address: Annotated[
        list[str] | None,
        typer.Option("--address", help="ROW=LOCAL: the address chosen for a row (repeatable)."),
    ] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Duyệt và thực hiện yêu cầu. Địa chỉ trùng: thoát mã 3, in đề xuất, không đổi gì."""
    chosen = _addresses(address or [], as_json)
    who = operator()

    async def approve(db: Database, cfg: Config) -> Any:
        try:
            return await desk(db, cfg).approve(who, request_id, addresses=chosen)
        except AddressCollisions as exc:
            return exc

    done = _run(data, as_json, approve)
    if isinstance(done, AddressCollisions):
        if as_json:
            print(json.dumps({"collisions": done.collisions}, ensure_ascii=False, indent=2))
        else:
            from govmail.cli.app import err

            err.print(f"Lỗi: {done.message_vi}", markup=False)
            err.print(f"Error: {done.message_en}", markup=False)
            for row, proposals in done.collisions.items():
                print(f"{row}: {' '.join(proposals)}")
        raise typer.Exit(3)
    lines = [f"Đã duyệt yêu cầu số {request_id}."]
    lines += [f"Cấp mới: {a}" for a in done.created]
    lines += [f"Thay đổi: {a}" for a in done.changed]
    lines += [f"Xóa: {a}" for a in done.deleted]
    lines += [f"Lưu trữ: {a}" for a in done.archives]
    lines += [f"Mật khẩu tạm thời {a}: {p}" for a, p in done.passwords.items()]
    _emit(as_json, done.as_dict(), "\n".join(lines))


@request_app.command("reject")
def request_reject(
    request_id: Annotated[int, typer.Argument(help="The request's number.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the requester.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Từ chối yêu cầu, nêu lý do (the requester is told by mail)."""
    who = operator()
    r = _run(data, as_json, lambda db, cfg: desk(db, cfg).reject(who, request_id, reason=reason))
    _emit(as_json, r.as_dict(), f"Đã từ chối yêu cầu số {r.id}.")


@request_app.command("endorse")
def request_endorse(
    request_id: Annotated[int, typer.Argument(help="The request's number.")],
    note: Annotated[str, typer.Option("--note", help="The Director's note.")] = "",
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Giám đốc Sở phê duyệt yêu cầu của cơ quan ngoài phạm vi (R10)."""
    who = operator()
    r = _run(data, as_json, lambda db, cfg: desk(db, cfg).endorse(who, request_id, note=note))
    _emit(as_json, r.as_dict(), f"Yêu cầu số {r.id}: {r.status_label}.")


@request_app.command("withdraw")
def request_withdraw(
    request_id: Annotated[int, typer.Argument(help="The request's number.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Rút lại một yêu cầu chưa xử lý."""
    who = operator()
    r = _run(data, as_json, lambda db, cfg: desk(db, cfg).withdraw(who, request_id))
    _emit(as_json, r.as_dict(), f"Yêu cầu số {r.id}: {r.status_label}.")


@request_app.command("pdf")
def request_pdf(
    request_id: Annotated[int, typer.Argument(help="The request's number.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the PDF.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Xuất phiếu yêu cầu ra PDF theo Mẫu 01/02/03."""
    from govmail.workflows.pdf import render_request_pdf

    who = operator()

    async def render(db: Database, cfg: Config) -> int:
        request = await desk(db, cfg).show(who, request_id)
        pdf = render_request_pdf(
            request, place=cfg.workflow.place, addressee=cfg.workflow.addressee
        )
        out.write_bytes(pdf)
        return len(pdf)

    size = _run(data, as_json, render)
    _emit(as_json, {"path": str(out), "bytes": size}, f"Đã ghi {out} ({size} byte).")


# --- passwords (R7) ----------------------------------------------------------------------


@password_app.command("reset")
def password_reset(
    address: Annotated[str, typer.Argument(help="The mailbox's address.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Cấp mật khẩu tạm thời (chỉ hiện một lần; gửi cán bộ chuyên trách CNTT của cơ quan)."""
    who = operator()
    done, password = _run(data, as_json, lambda db, cfg: desk(db, cfg).reset_password(who, address))
    _emit(
        as_json,
        {"address": done, "password": password},
        f"Mật khẩu tạm thời của {done} (chỉ hiện một lần, phải đổi khi đăng nhập): {password}",
    )


# --- roles -------------------------------------------------------------------------------

RoleName = Annotated[str, typer.Argument(help="centre_admin, director, it_officer or agency_head.")]
AgencyOption = Annotated[
    str | None, typer.Option("--agency", help="The agency (it_officer, agency_head).")
]


@role_app.command("grant")
def role_grant(
    address: Annotated[str, typer.Argument(help="The mailbox that gets the role.")],
    role: RoleName,
    agency: AgencyOption = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Giao vai trò cho một hộp thư."""
    from govmail.workflows.roles import grant_role

    who = operator()
    g = _run(data, as_json, lambda db, cfg: grant_role(db, cfg, who, address, role, agency))
    _emit(as_json, g.as_dict(), f"{g.address}: {g.role}" + (f" ({g.agency})" if g.agency else ""))


@role_app.command("revoke")
def role_revoke(
    address: Annotated[str, typer.Argument(help="The mailbox that loses the role.")],
    role: RoleName,
    agency: AgencyOption = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Thu hồi vai trò."""
    from govmail.workflows.roles import revoke_role

    who = operator()
    g = _run(data, as_json, lambda db, cfg: revoke_role(db, cfg, who, address, role, agency))
    _emit(as_json, g.as_dict(), f"Đã thu hồi {g.role} của {g.address}.")


@role_app.command("list")
def role_list(
    agency: AgencyOption = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Ai có vai trò gì."""
    from govmail.workflows.roles import list_roles

    found = _run(data, as_json, lambda db, cfg: list_roles(db, cfg, agency=agency))
    _emit(
        as_json,
        [g.as_dict() for g in found],
        "\n".join(f"{g.address}  {g.role}  {g.agency or ''}".rstrip() for g in found)
        or "Chưa giao vai trò nào.",
    )


# --- API tokens --------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. 'egov-portal'.")],
    address: Annotated[str, typer.Option("--address", help="The mailbox it acts as.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Cấp token cho API (in ra một lần)."""
    from govmail.workflows.tokens import create_token

    who = operator()
    token, secret = _run(
        data, as_json, lambda db, cfg: create_token(db, cfg, who, name=name, address=address)
    )
    _emit(as_json, {**token.as_dict(), "token": secret}, secret)


@token_app.command("list")
def token_list(data: DataDir = DEFAULT_DATA, as_json: AsJson = False) -> None:
    """Các token đã cấp."""
    from govmail.workflows.tokens import list_tokens

    found = _run(data, as_json, list_tokens)
    _emit(
        as_json,
        [t.as_dict() for t in found],
        "\n".join(
            f"{t.id:>4}  {t.name}  {t.address}  {'thu hồi' if t.revoked else 'đang dùng'}"
            for t in found
        )
        or "Chưa cấp token nào.",
    )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's number.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Thu hồi token."""
    from govmail.workflows.tokens import revoke_token

    who = operator()
    _run(data, as_json, lambda db, cfg: revoke_token(db, cfg, who, token_id))
    _emit(as_json, {"revoked": token_id}, f"Đã thu hồi token số {token_id}.")


# --- incidents ---------------------------------------------------------------------------


@incident_app.command("list")
def incident_list(
    status: Annotated[str | None, typer.Option(help="open, in_progress, resolved.")] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Các sự cố được báo."""
    from govmail.workflows.incidents import list_incidents

    who = operator()
    found = _run(data, as_json, lambda db, cfg: list_incidents(db, who, status=status))
    _emit(
        as_json,
        [i.as_dict() for i in found],
        "\n".join(f"{i.id:>4}  {i.status_label:<14} {i.reported_by}  {i.subject}" for i in found)
        or "Không có sự cố nào.",
    )


@incident_app.command("update")
def incident_update(
    incident_id: Annotated[int, typer.Argument(help="The incident's number.")],
    status: Annotated[str, typer.Option("--status", help="open, in_progress, resolved.")],
    note: Annotated[str, typer.Option("--note", help="What was done.")] = "",
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Cập nhật trạng thái sự cố (người báo được thông báo qua thư)."""
    from govmail.store.blobs import FileBlobStore
    from govmail.workflows.incidents import update_incident

    who = operator()
    i = _run(
        data,
        as_json,
        lambda db, cfg: update_incident(
            db,
            cfg,
            FileBlobStore(cfg.blob_dir),
            who,
            incident_id,
            status=status,
            resolution=note,
        ),
    )
    _emit(as_json, i.as_dict(), f"Sự cố số {i.id}: {i.status_label}.")
