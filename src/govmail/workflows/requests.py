"""Agencies' requests to the centre, one use case per method: submit (Mẫu 01–03, a password
reset, a delegation), the Director's endorsement (R10), approve (performed through the
directory's own services, all rows in one transaction), reject, withdraw; list and show.
CLI, web portal, admin console and JSON API all call these."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import Config
from govmail.core.errors import (
    AddressCollisions,
    Conflict,
    GovmailError,
    InvalidInput,
    NotAllowed,
    NotFound,
)
from govmail.core.naming import propose_personal_addresses
from govmail.core.vietnamese import fold
from govmail.directory import addresses as names
from govmail.directory.agencies import (
    create_agency,
    find_agency_id,
    load_agencies,
    rename_agency_in,
)
from govmail.directory.delegations import grant_delegation_in, revoke_delegation_in
from govmail.directory.mailboxes import create_mailbox, set_password_in
from govmail.directory.model import Agency
from govmail.directory.passwords import generate_initial_password, hash_issued_password
from govmail.directory.people import (
    agency_suffixes,
    change_person,
    clean_field,
    clean_full_name,
    insert_person,
    move_person_in,
    regulation_local_part,
    remove_person_in,
)
from govmail.store import audit
from govmail.store.blobs import BlobStore
from govmail.store.database import Database, is_unique_violation
from govmail.store.schema import (
    REQUEST_FORMS,
    addresses,
    agencies,
    mailboxes,
    people,
    request_events,
    requests,
    roles,
)
from govmail.workflows import notify
from govmail.workflows.calendar import WorkingCalendar, vietnam_date
from govmail.workflows.model import (
    APPROVED,
    AWAITING_DIRECTOR,
    CODE_ADDRESS,
    CODE_DEPARTMENT,
    CODE_POSITION,
    DELEGATION,
    FORM_01,
    FORM_02,
    FORM_03,
    OPEN_STATUSES,
    PENDING,
    REJECTED,
    REPORT_WITHIN_DAYS,
    RESET,
    WITHDRAWN,
    Approval,
    MailboxRequest,
    RequestEvent,
    RequestRow,
)
from govmail.workflows.roles import Principal, officers_of, primary_address

MAX_ROWS = 2000
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
MAX_REASON = 2000


class RequestDesk:
    """The centre's request desk: every request use case, for every edge.

    ``archive`` exports a mailbox before its deletion (R9) and returns the archive's
    path; it is passed in so the desk does not reach into the mail store itself.
    """

    def __init__(
        self,
        db: Database,
        cfg: Config,
        blobs: BlobStore,
        *,
        archive: Any = None,
    ) -> None:
        self.db = db
        self.cfg = cfg
        self.blobs = blobs
        self.archive = archive
        self.calendar = WorkingCalendar(cfg.workflow.extra_holidays)

    # --- submit ------------------------------------------------------------------------

    async def submit(
        self,
        who: Principal,
        *,
        form: str,
        agency: str | None,
        rows: Sequence[RequestRow] = (),
        payload: Mapping[str, Any] | None = None,
        decision_date: date | None = None,
        document: tuple[str, bytes] | None = None,
    ) -> MailboxRequest:
        """File a request; returns it. ``agency`` is the requesting agency's address (for
        a new agency in ``payload["agency"]``: its parent, or None). Refuses malformed
        rows (every problem at once), other agencies' requests, and a request identical
        to one still open."""
        payload = dict(payload or {})
        if form not in REQUEST_FORMS:
            raise InvalidInput(
                f"Loại yêu cầu không hợp lệ: {form} (01, 02, 03, reset, delegation).",
                f"Unknown request form {form} (01, 02, 03, reset, delegation).",
            )
        if len(rows) > MAX_ROWS:
            raise InvalidInput(
                f"Một yêu cầu có tối đa {MAX_ROWS} dòng.", f"At most {MAX_ROWS} rows per request."
            )
        submitted_at = audit.now()
        if decision_date is not None and not (
            date(2000, 1, 1) <= decision_date <= vietnam_date(submitted_at) + timedelta(days=366)
        ):
            raise InvalidInput(
                f"Ngày quyết định có hiệu lực không hợp lệ: {decision_date}.",
                f"Implausible decision date {decision_date}.",
            )
        late = decision_date is not None and vietnam_date(submitted_at) > decision_date + timedelta(
            days=REPORT_WITHIN_DAYS
        )
        if document is not None:
            document = (_file_name(document[0]), _checked_document(document[1]))
        try:
            async with self.db.write() as conn:
                agency_row, external = await self._requesting_agency(conn, who, agency, payload)
                rows, payload = await self._checked(conn, who, form, agency_row, rows, payload)
                if form == DELEGATION and not payload.get("revoke") and document is None:
                    raise InvalidInput(
                        "Cần tải lên văn bản ủy quyền có chữ ký của thủ trưởng cơ quan.",
                        "Upload the authorisation signed by the head of the agency.",
                    )
                blob = None
                if document is not None:  # kept only once the request is known to be good
                    blob = await asyncio.to_thread(self.blobs.put, document[1])
                status = AWAITING_DIRECTOR if external else PENDING
                request_id = (
                    await conn.execute(
                        insert(requests)
                        .values(
                            form=form,
                            agency_id=agency_row.id if agency_row else None,
                            status=status,
                            submitted_by=who.actor,
                            submitter_mailbox_id=who.mailbox_id,
                            submitted_at=submitted_at,
                            decision_date=decision_date,
                            late=late,
                            rows=[r.as_dict() for r in rows],
                            payload=payload,
                            document_blob=blob,
                            document_name=document[0] if document else None,
                            fingerprint=_fingerprint(form, agency_row, rows, payload),
                        )
                        .returning(requests.c.id)
                    )
                ).scalar_one()
                await self._event(conn, request_id, who, "submitted")
                if status == AWAITING_DIRECTOR:
                    await self._event(conn, request_id, who, AWAITING_DIRECTOR)
                await audit.record(
                    conn,
                    who.actor,
                    "request.submit",
                    f"request/{request_id}",
                    source=who.source,
                    form=form,
                    agency=agency_row.address if agency_row else payload.get("agency"),
                    rows=len(rows),
                    late=late,
                )
                request = await self._load(conn, request_id)
                await self._notify_requester(conn, request, status)
                return request
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            raise Conflict(
                "Một yêu cầu giống hệt đang chờ xử lý; không gửi lại.",
                "An identical request is already open; it was not filed again.",
            ) from None

    async def _requesting_agency(
        self, conn: AsyncConnection, who: Principal, agency: str | None, payload: dict[str, Any]
    ) -> tuple[Agency | None, bool]:
        """The agency filing the request and whether R10 applies (outside the scope)."""
        new = payload.get("agency")
        if agency is None and not new:
            raise InvalidInput("Thiếu cơ quan gửi yêu cầu.", "The requesting agency is missing.")
        row = None
        if agency is not None:
            row = (
                await load_agencies(
                    conn, self.cfg, agencies.c.id == await find_agency_id(conn, self.cfg, agency)
                )
            )[0]
            if row.status != "active":
                raise Conflict(
                    f"Cơ quan {row.address} đã giải thể.", f"Agency {row.address} is dissolved."
                )
        if new:
            if not isinstance(new, dict) or not str(new.get("name", "")).strip():
                raise InvalidInput("Thiếu tên cơ quan mới.", "The new agency's name is missing.")
            if row is None:
                who.require_centre()  # a new top-level agency is the centre's to file
            payload["agency"] = {
                "name": " ".join(str(new["name"]).split()),
                "abbr": str(new.get("abbr") or "").strip().lower() or None,
                "parent": row.address if row else None,
                # R10 follows the tree: a unit of an agency outside the scope is outside.
                "external": bool(new.get("external", False)) or bool(row and row.external),
            }
            if row is not None:
                who.require_agency(row.id)
            return row, payload["agency"]["external"] or bool(row and row.external)
        if row is None:  # unreachable: an agency or a new agency was given
            raise InvalidInput("Thiếu cơ quan gửi yêu cầu.", "The requesting agency is missing.")
        who.require_agency(row.id)
        return row, row.external

    async def _checked(
        self,
        conn: AsyncConnection,
        who: Principal,
        form: str,
        agency: Agency | None,
        rows: Sequence[RequestRow],
        payload: dict[str, Any],
    ) -> tuple[list[RequestRow], dict[str, Any]]:
        """The rows and payload cleaned, or InvalidInput listing every problem."""
        problems: list[dict[str, Any]] = []
        clean: list[RequestRow] = []
        seen: dict[tuple[str, ...], int] = {}
        for number, row in enumerate(rows, 1):
            try:
                cleaned = await self._clean_row(conn, form, agency, row)
            except GovmailError as exc:
                problems.append(
                    {"row": number, "reason_vi": exc.message_vi, "reason_en": exc.message_en}
                )
                continue
            key = (
                (cleaned.name, cleaned.position, cleaned.department)
                if form == FORM_01
                else (cleaned.address,)
            )
            if key in seen:
                problems.append(
                    {
                        "row": number,
                        "reason_vi": f"Trùng với dòng {seen[key]}.",
                        "reason_en": f"Same as row {seen[key]}.",
                    }
                )
                continue
            seen[key] = number
            clean.append(cleaned)
        if problems:
            first = ", ".join(str(p["row"]) for p in problems[:5])
            raise InvalidInput(
                f"Có {len(problems)} dòng không hợp lệ (dòng {first}…): "
                + problems[0]["reason_vi"],
                f"{len(problems)} invalid rows (rows {first}…): " + problems[0]["reason_en"],
                problems=problems,
            )
        if form == FORM_01 and not clean and not payload.get("agency"):
            raise InvalidInput(
                "Mẫu 01 cần danh sách cán bộ hoặc tên viết tắt của cơ quan mới.",
                "Form 01 needs people or a new agency.",
            )
        if form == FORM_02:
            rename = str(payload.get("rename") or "").strip()
            if rename:
                payload["rename"] = clean_field(rename, "Tên cơ quan", "Agency name")
            if not clean and not rename:
                raise InvalidInput("Mẫu 02 không có thay đổi nào.", "Form 02 asks for no change.")
        if form == FORM_03 and not clean:
            raise InvalidInput("Mẫu 03 không có hộp thư nào.", "Form 03 names no mailbox.")
        requester = payload.get("requester")
        if form == RESET:
            box = await self._member_mailbox(conn, agency, str(payload.get("address", "")))
            payload = {"address": names.full_address(box.local_part, self.cfg)}
        if form == DELEGATION:
            if agency is None or not (who.centre or agency.id in who.head_of):
                raise NotAllowed(
                    "Chỉ thủ trưởng cơ quan được ủy quyền sử dụng hộp thư cơ quan (Điều 15).",
                    "Only the head of the agency may delegate its mailbox (R22).",
                )
            box = await self._member_mailbox(conn, agency, str(payload.get("person", "")))
            if box.kind != "personal":
                raise InvalidInput(
                    "Người được ủy quyền phải có hộp thư cá nhân.",
                    "The delegate must have a personal mailbox.",
                )
            payload = {
                "person": names.full_address(box.local_part, self.cfg),
                "revoke": bool(payload.get("revoke", False)),
            }
        if isinstance(requester, dict):
            payload["requester"] = {
                k: clean_field(str(requester.get(k, "")), k, k)
                for k in ("name", "position", "phone")
            }
        return clean, payload

    async def _clean_row(
        self, conn: AsyncConnection, form: str, agency: Agency | None, row: RequestRow
    ) -> RequestRow:
        """One row checked against the directory as it is now (at filing, and again at
        approval): a Mẫu 02/03 row must name the mailbox's owner, and a person of another
        agency in a Mẫu 02 is recorded as a transfer in (R8)."""
        _, full_name = clean_full_name(row.name)
        position = clean_field(row.position, "Chức vụ", "Position")
        department = clean_field(row.department, "Bộ phận công tác", "Department")
        if form == FORM_01:
            wanted = names.requested_local_part(row.address, self.cfg) if row.address else ""
            return RequestRow(full_name, position, department, wanted)
        box = await self._member_mailbox(conn, agency, row.address, transfer=form == FORM_02)
        if box.kind != "personal" or box.person_id is None:
            raise InvalidInput(
                f"{row.address} là hộp thư cơ quan.", f"{row.address} is an agency mailbox."
            )
        address = names.full_address(box.local_part, self.cfg)
        owner = (
            await conn.execute(
                select(people.c.full_name, people.c.agency_id).where(people.c.id == box.person_id)
            )
        ).one()
        if fold(owner.full_name) != fold(full_name):
            raise InvalidInput(
                f"Hộp thư {address} là của {owner.full_name}, không phải {full_name}.",
                f"Mailbox {address} belongs to {owner.full_name}, not {full_name}.",
            )
        if form == FORM_03:
            reason = clean_field(row.reason, "Lý do", "Reason")
            return RequestRow(owner.full_name, position, department, address, reason=reason)
        transfer_from = ""
        if agency is not None and owner.agency_id != agency.id:
            source = (await load_agencies(conn, self.cfg, agencies.c.id == owner.agency_id))[0]
            if row.transfer_from and row.transfer_from != source.address:
                raise Conflict(
                    f"{address} đã chuyển sang {source.name} sau khi yêu cầu được gửi.",
                    f"{address} moved to {source.address} after the request was filed.",
                )
            transfer_from = source.address
        changes = []
        for code, value in row.changes:
            if code not in (CODE_POSITION, CODE_DEPARTMENT, CODE_ADDRESS):
                raise InvalidInput(
                    f"Mã thay đổi {code} không hợp lệ (1, 2 hoặc 3).",
                    f"Unknown change code {code} (1, 2 or 3).",
                )
            value = clean_field(value, "Nội dung mới", "New value")
            if code == CODE_ADDRESS and value:
                value = names.requested_local_part(value, self.cfg)
            elif code != CODE_ADDRESS and not value:
                raise InvalidInput(
                    f"Thiếu nội dung mới cho mã {code}.", f"Code {code} needs a new value."
                )
            changes.append((code, value))
        return RequestRow(
            owner.full_name,
            position,
            department,
            address,
            tuple(changes),
            transfer_from=transfer_from,
        )

    async def _member_mailbox(
        self, conn: AsyncConnection, agency: Agency | None, ref: str, *, transfer: bool = False
    ) -> names.MailboxRef:
        """An active mailbox of the agency (its own, or one of its people's). With
        ``transfer`` a person of another agency is accepted (R8: the receiving agency
        files the move)."""
        if not ref.strip():
            raise InvalidInput("Thiếu địa chỉ hộp thư.", "The mailbox address is missing.")
        box = await names.find_mailbox(conn, self.cfg, ref)
        if box.status != "active":
            raise Conflict(
                f"Hộp thư {ref} không còn hoạt động.", f"Mailbox {ref} is no longer active."
            )
        owner = box.agency_id
        if box.person_id is not None:
            owner = await conn.scalar(
                select(people.c.agency_id).where(people.c.id == box.person_id)
            )
        if agency is not None and owner != agency.id and not transfer:
            raise NotAllowed(
                f"Hộp thư {ref} không thuộc {agency.name}.",
                f"Mailbox {ref} does not belong to {agency.address}.",
            )
        return box

    # --- reading -----------------------------------------------------------------------

    async def list_requests(
        self,
        who: Principal,
        *,
        status: str | None = None,
        agency: str | None = None,
        form: str | None = None,
        limit: int = 200,
        offset: int = 0,
        newest: bool = False,
    ) -> list[MailboxRequest]:
        """Requests the principal may see, oldest first (the console's queue), or newest
        first (an agency's history)."""
        async with self.db.read() as conn:
            query = select(requests)
            if status == "open":
                query = query.where(requests.c.status.in_(OPEN_STATUSES))
            elif status:
                query = query.where(requests.c.status == status)
            if form:
                query = query.where(requests.c.form == form)
            if agency:
                query = query.where(
                    requests.c.agency_id == await find_agency_id(conn, self.cfg, agency)
                )
            if not (who.centre or who.director):
                visible = who.agencies
                query = query.where(
                    requests.c.agency_id.in_(sorted(visible))
                    | (requests.c.submitter_mailbox_id == (who.mailbox_id or -1))
                )
            query = query.order_by(
                *(
                    (requests.c.submitted_at.desc(), requests.c.id.desc())
                    if newest
                    else (requests.c.submitted_at, requests.c.id)
                )
            )
            found = (await conn.execute(query.limit(min(limit, 1000)).offset(offset))).all()
            wanted = {r.agency_id for r in found if r.agency_id is not None}
            known = {
                a.id: a
                for a in (
                    await load_agencies(conn, self.cfg, agencies.c.id.in_(sorted(wanted)))
                    if wanted
                    else []
                )
            }
            return [self._request(r, *_agency_of(r, known), ()) for r in found]

    async def show(self, who: Principal, request_id: int) -> MailboxRequest:
        async with self.db.read() as conn:
            request = await self._load(conn, request_id)
            owner = (
                await conn.execute(
                    select(requests.c.agency_id, requests.c.submitter_mailbox_id).where(
                        requests.c.id == request_id
                    )
                )
            ).one()
            self._require_visible(who, owner.agency_id, owner.submitter_mailbox_id)
            return request

    async def document(self, who: Principal, request_id: int) -> tuple[str, bytes]:
        """The uploaded authorisation of a delegation request (name, bytes)."""
        request = await self.show(who, request_id)
        async with self.db.read() as conn:
            blob = await conn.scalar(
                select(requests.c.document_blob).where(requests.c.id == request_id)
            )
        if blob is None:
            raise NotFound("Yêu cầu không có tệp đính kèm.", "The request has no document.")
        return request.document_name or "van-ban.bin", await asyncio.to_thread(self.blobs.get, blob)

    def _require_visible(
        self, who: Principal, agency_id: int | None, submitter: int | None
    ) -> None:
        if who.centre or who.director or (agency_id is not None and agency_id in who.agencies):
            return
        if who.mailbox_id is not None and submitter == who.mailbox_id:
            return
        raise NotAllowed("Bạn không có quyền xem yêu cầu này.", "You may not see this request.")

    async def _agency_id_of(self, conn: AsyncConnection, request_id: int) -> int | None:
        return await conn.scalar(select(requests.c.agency_id).where(requests.c.id == request_id))

    # --- deciding ----------------------------------------------------------------------

    async def endorse(self, who: Principal, request_id: int, *, note: str = "") -> MailboxRequest:
        """The Director approves a request from outside the scope (R10); the centre then
        performs it."""
        who.require_director()
        async with self.db.write() as conn:
            await self._lock(conn, request_id, AWAITING_DIRECTOR)
            await conn.execute(
                update(requests)
                .where(requests.c.id == request_id)
                .values(status=PENDING, endorsed_by=who.actor, endorsed_at=audit.now())
            )
            await self._event(conn, request_id, who, "endorsed", _note(note))
            await audit.record(
                conn, who.actor, "request.endorse", f"request/{request_id}", source=who.source
            )
            request = await self._load(conn, request_id)
            await self._notify_requester(conn, request, "endorsed", _note(note))
            return request

    async def reject(self, who: Principal, request_id: int, *, reason: str) -> MailboxRequest:
        """Refuse a request with a reason the requester reads (centre, or the Director
        for one awaiting R10 approval)."""
        reason = _note(reason)
        if not reason:
            raise InvalidInput("Cần nêu lý do từ chối.", "A reason is required.")
        async with self.db.write() as conn:
            status = await self._lock(conn, request_id, *OPEN_STATUSES)
            if not (who.centre or (status == AWAITING_DIRECTOR and who.director)):
                raise NotAllowed(
                    "Chỉ Trung tâm CNTT&TT được từ chối yêu cầu.",
                    "Only the centre may reject requests.",
                )
            await self._decide(conn, request_id, who, REJECTED, reason=reason)
            request = await self._load(conn, request_id)
            await self._notify_requester(conn, request, REJECTED, f"Lý do: {reason}")
            return request

    async def withdraw(self, who: Principal, request_id: int) -> MailboxRequest:
        """The requesting agency takes back a request not decided yet."""
        async with self.db.write() as conn:
            await self._lock(conn, request_id, *OPEN_STATUSES)
            request = await self._load(conn, request_id)
            agency_id = await self._agency_id_of(conn, request_id)
            if not (who.centre or (agency_id is not None and agency_id in who.agencies)):
                raise NotAllowed(
                    "Bạn không có quyền rút yêu cầu này.", "You may not withdraw this request."
                )
            await self._decide(conn, request_id, who, WITHDRAWN)
            request = await self._load(conn, request_id)
            await self._notify_requester(conn, request, WITHDRAWN)
            return request

    async def preview(
        self, who: Principal, request_id: int, addresses: Mapping[int, str] | None = None
    ) -> dict[int, dict[str, Any]]:
        """The collision screen: for each row that gets an address, the address it would
        get and, when that is taken, free proposals. Changes nothing."""
        who.require_centre()
        async with self.db.read() as conn:
            request = await self._load(conn, request_id, events=False)
            agency = await self._target_agency(conn, request)
            planned, collisions = await self._plan_addresses(
                conn, request, agency, dict(addresses or {})
            )
            holders = {
                row: await self._holder(conn, planned[row], planned, row) for row in collisions
            }
        return {
            row: {
                "address": names.full_address(local, self.cfg) if local else None,
                "proposals": collisions.get(row, []),
                "holder": holders.get(row, ""),
            }
            for row, local in planned.items()
        }

    async def _holder(
        self, conn: AsyncConnection, local: str, planned: dict[int, str], row: int
    ) -> str:
        """Who has ``local`` already, for the operator to tell a namesake from the same
        official asked for twice (R2: one personal mailbox per official)."""
        earlier = [r for r, other in planned.items() if other == local and r < row]
        if earlier:
            return f"dòng {earlier[0]} của yêu cầu này"
        try:
            box = await names.find_mailbox(conn, self.cfg, local)
        except NotFound:
            return "tên dành riêng của hệ thống"
        if box.person_id is None:
            found = await load_agencies(conn, self.cfg, agencies.c.id == box.agency_id)
            return f"hộp thư cơ quan {found[0].name}" if found else "hộp thư cơ quan"
        owner = (
            await conn.execute(
                select(people.c.full_name, people.c.status, agencies.c.name)
                .join(agencies, agencies.c.id == people.c.agency_id)
                .where(people.c.id == box.person_id)
            )
        ).one()
        gone = " (đã xóa, địa chỉ giữ lại)" if owner.status != "active" else ""
        return f"{owner.full_name}, {owner.name}{gone}"

    async def approve(
        self, who: Principal, request_id: int, *, addresses: Mapping[int, str] | None = None
    ) -> Approval:
        """Perform a pending request in one transaction and mark it approved.

        ``addresses`` maps a row (1-based) to the local part the operator chose for it.
        A row whose address is taken and not chosen raises AddressCollisions with
        proposals, and nothing changes. Approving twice, or two operators at once: the
        second finds the request decided (Conflict). Deleting mailboxes exports each to an
        archive first (before the transaction: a failed approval may leave an archive).
        """
        who.require_centre()
        chosen = {
            int(k): names.requested_local_part(v, self.cfg) for k, v in (addresses or {}).items()
        }
        async with self.db.read() as conn:
            request = await self._load(conn, request_id, events=False)
        if request.status not in (PENDING,):
            await self._refuse_decided(request)
        passwords = await self._new_passwords(request)
        archives = await self._archives(request)
        try:
            return await self._approve(who, request_id, chosen, passwords, archives)
        except BaseException:
            # Nothing was deleted: the copies of mailboxes that stay must not linger.
            for archive in archives:
                Path(archive).unlink(missing_ok=True)
            raise

    async def _approve(
        self,
        who: Principal,
        request_id: int,
        chosen: dict[int, str],
        passwords: list[tuple[str, str]],
        archives: list[str],
    ) -> Approval:
        try:
            async with self.db.write() as conn:
                await self._lock(conn, request_id, PENDING)
                request = await self._load(conn, request_id, events=False)
                approval = Approval(request_id, archives=[str(a) for a in archives])
                await self._perform(conn, who, request, chosen, passwords, approval)
                await self._decide(conn, request_id, who, APPROVED, result=_public(approval))
                request = await self._load(conn, request_id)
                await self._notify_requester(conn, request, APPROVED, _summary(approval))
                return approval
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            raise Conflict(
                "Một địa chỉ vừa được cấp cho người khác; hãy xem lại và duyệt lại.",
                "An address was just taken by someone else; review and approve again.",
            ) from None

    async def _refuse_decided(self, request: MailboxRequest) -> None:
        if request.status == AWAITING_DIRECTOR:
            raise Conflict(
                f"Yêu cầu số {request.id} đang chờ Giám đốc Sở phê duyệt (Điều 5).",
                f"Request {request.id} awaits the Director's approval (R10).",
                status=request.status,
            )
        raise Conflict(
            f"Yêu cầu số {request.id} đã được xử lý ({request.status_label.lower()}).",
            f"Request {request.id} was already decided ({request.status}).",
            status=request.status,
        )

    async def _new_passwords(self, request: MailboxRequest) -> list[tuple[str, str]]:
        """(temporary password, argon2 hash) for each mailbox approval will create or
        reset, hashed off the event loop before the transaction opens."""
        count = {FORM_01: len(request.rows), RESET: 1}.get(request.form, 0)
        plain = [generate_initial_password() for _ in range(count)]
        hashes = await asyncio.gather(*(asyncio.to_thread(hash_issued_password, p) for p in plain))
        return list(zip(plain, hashes, strict=True))

    async def _archives(self, request: MailboxRequest) -> list[str]:
        if request.form != FORM_03 or self.archive is None:
            return []
        return [str(await self.archive(row.address)) for row in request.rows]

    async def _perform(
        self,
        conn: AsyncConnection,
        who: Principal,
        request: MailboxRequest,
        chosen: dict[int, str],
        passwords: list[tuple[str, str]],
        approval: Approval,
    ) -> None:
        cfg = self.cfg
        agency = await self._target_agency(conn, request)
        if request.form in (FORM_02, FORM_03):
            # The directory may have changed since filing: check every row again now,
            # under the request's lock (a person who moved away is not the filer's).
            rows = tuple(
                [await self._clean_row(conn, request.form, agency, r) for r in request.rows]
            )
            request = replace(request, rows=rows)
        if request.form == FORM_01:
            if request.payload.get("agency"):
                new = request.payload["agency"]
                agency = await create_agency(
                    conn,
                    cfg,
                    name=new["name"],
                    abbr=new.get("abbr"),
                    parent=new.get("parent"),
                    external=bool(new.get("external")),
                    address=None,
                    actor=who.actor,
                )
                approval.created.append(agency.address)
                await conn.execute(
                    update(requests).where(requests.c.id == request.id).values(agency_id=agency.id)
                )
            agency = _required(agency)
            planned, collisions = await self._plan_addresses(conn, request, agency, chosen)
            if collisions:
                raise AddressCollisions({str(k): v for k, v in collisions.items()})
            dom = await names.domain_id(conn, cfg)
            welcome: list[tuple[bytes, list[int]]] = []
            for number, row in enumerate(request.rows, 1):
                parts, full_name = clean_full_name(row.name)
                local = planned[number]
                person_id = await insert_person(
                    conn, parts, full_name, agency.id, row.position, row.department, local
                )
                plain, hashed = passwords[number - 1]
                box = await create_mailbox(
                    conn,
                    dom,
                    local,
                    person_id=person_id,
                    quota_bytes=cfg.personal_quota_bytes,
                    password_hash=hashed,
                    must_change_password=True,
                )
                address = names.full_address(local, cfg)
                await audit.record(
                    conn,
                    who.actor,
                    "person.add",
                    address,
                    source=who.source,
                    name=full_name,
                    agency=agency.address,
                    request=request.id,
                )
                approval.created.append(address)
                approval.passwords[address] = plain
                welcome.append(
                    (notify.welcome_message(cfg, address, full_name, agency.name), [box])
                )
            await notify.deliver_in(conn, self.blobs, welcome)
            await self._send_passwords(conn, agency, approval.passwords, request.id)
        elif request.form == FORM_02:
            agency = _required(agency)
            planned, collisions = await self._plan_addresses(conn, request, agency, chosen)
            if collisions:
                raise AddressCollisions({str(k): v for k, v in collisions.items()})
            for number, row in enumerate(request.rows, 1):
                person = await _person_agency(conn, cfg, row.address)
                if person != agency.id:
                    await self._tell_source_agency(conn, row, agency, request.id)
                    await move_person_in(
                        conn,
                        cfg,
                        row.address,
                        to=agency.address,
                        actor=who.actor,
                        source=who.source,
                    )
                codes = dict(row.changes)
                changed = await change_person(
                    conn,
                    cfg,
                    row.address,
                    position=codes.get(CODE_POSITION),
                    department=codes.get(CODE_DEPARTMENT),
                    new_local=planned.get(number),
                    actor=who.actor,
                    source=who.source,
                )
                approval.changed.append(changed.address)
            if request.payload.get("rename"):
                renamed = await rename_agency_in(
                    conn,
                    cfg,
                    agency.address,
                    name=request.payload["rename"],
                    actor=who.actor,
                    source=who.source,
                )
                approval.changed.append(renamed.address)
        elif request.form == FORM_03:
            for row in request.rows:
                removed = await remove_person_in(
                    conn,
                    cfg,
                    row.address,
                    actor=who.actor,
                    source=who.source,
                    request=request.id,
                    reason=row.reason,
                )
                approval.deleted.append(removed.address)
        elif request.form == RESET:
            target = await self._member_mailbox(conn, agency, request.payload["address"])
            plain, hashed = passwords[0]
            address, _ = await set_password_in(
                conn,
                cfg,
                request.payload["address"],
                hashed,
                must_change=True,
                actor=who.actor,
                source=who.source,
            )
            approval.changed.append(address)
            approval.passwords[address] = plain
            await self._send_passwords(
                conn, _required(agency), {address: plain}, request.id, target
            )
        elif request.form == DELEGATION:
            agency = _required(agency)
            person = request.payload["person"]
            if not request.payload.get("revoke"):
                await self._member_mailbox(conn, agency, person)  # still one of theirs
            if request.payload.get("revoke"):
                change = await revoke_delegation_in(
                    conn, cfg, agency.address, person, actor=who.actor, source=who.source
                )
            else:
                blob = await conn.scalar(
                    select(requests.c.document_blob).where(requests.c.id == request.id)
                )
                change = await grant_delegation_in(
                    conn,
                    cfg,
                    agency.address,
                    person,
                    actor=who.actor,
                    source=who.source,
                    document=(request.document_name or "", blob) if blob else None,
                )
            approval.changed.append(change.person_address)

    async def _plan_addresses(
        self,
        conn: AsyncConnection,
        request: MailboxRequest,
        agency: Agency | None,
        chosen: dict[int, str],
    ) -> tuple[dict[int, str], dict[int, list[str]]]:
        """Row → the local part it gets (Mẫu 01: every row; Mẫu 02: rows changing their
        address), and row → proposals for rows whose address is taken (R5)."""
        cfg = self.cfg
        dom = await names.domain_id(conn, cfg)
        taken = await names.taken_local_parts(conn, dom)
        planned: dict[int, str] = {}
        collisions: dict[int, list[str]] = {}
        suffixes = agency_suffixes(agency) if agency is not None else []
        if request.form == FORM_01 and agency is None and request.payload.get("agency"):
            abbr = request.payload["agency"].get("abbr")
            suffixes = [abbr] if abbr else []
        claimed: set[str] = set()
        for number, row in enumerate(request.rows, 1):
            own: set[str] = set()
            if request.form == FORM_01:
                local = chosen.get(number) or row.address or regulation_local_part(row.name)
            elif request.form == FORM_02:
                codes = dict(row.changes)
                if CODE_ADDRESS not in codes:
                    continue
                local = chosen.get(number) or codes[CODE_ADDRESS] or regulation_local_part(row.name)
                box = await names.find_mailbox(conn, cfg, row.address)
                own = set(await _mailbox_locals(conn, box.mailbox_id))
            else:
                continue
            planned[number] = local
            if (local in taken and local not in own) or local in claimed:
                _, full_name = clean_full_name(row.name)
                proposals = propose_personal_addresses(
                    full_name,
                    suffixes,
                    lambda x: x in taken or x in claimed,
                    reserved=cfg.reserved_local_parts,
                )
                collisions[number] = proposals
                # The screen preselects the first proposal: keep it from the later rows
                # (two people of the same name get different first choices).
                claimed.update(proposals[:1])
            claimed.add(local)
        return planned, collisions

    async def _target_agency(self, conn: AsyncConnection, request: MailboxRequest) -> Agency | None:
        agency_id = await self._agency_id_of(conn, request.id)
        if agency_id is None or (request.form == FORM_01 and request.payload.get("agency")):
            return None
        agency = (await load_agencies(conn, self.cfg, agencies.c.id == agency_id))[0]
        if agency.status != "active":
            raise Conflict(
                f"Cơ quan {agency.address} đã giải thể.", f"Agency {agency.address} is dissolved."
            )
        return agency

    async def _tell_source_agency(
        self, conn: AsyncConnection, row: RequestRow, agency: Agency, request_id: int
    ) -> None:
        """The agency a person leaves hears of it (R8: the receiving agency files it)."""
        box = await conn.scalar(
            select(mailboxes.c.id)
            .join(agencies, agencies.c.id == mailboxes.c.agency_id)
            .where(
                mailboxes.c.kind == "agency",
                mailboxes.c.status == "active",
                agencies.c.id == await find_agency_id(conn, self.cfg, row.transfer_from),
            )
        )
        if box is None:
            return
        raw = notify.system_message(
            self.cfg,
            row.transfer_from,
            f"[Yêu cầu số {request_id}] {row.name} chuyển sang {agency.name}",
            [
                f"Theo yêu cầu số {request_id} của {agency.name}, {row.name} ({row.address})"
                f" đã được chuyển sang {agency.name} trong Danh bạ. Địa chỉ thư không đổi.",
                "Nếu việc chuyển công tác này không đúng, đề nghị báo ngay cho Trung tâm.",
                "",
                "-- ",
                f"{row.address} moved to {agency.address} (request {request_id}).",
            ],
        )
        await notify.deliver_in(conn, self.blobs, [(raw, [box])])

    async def _send_passwords(
        self,
        conn: AsyncConnection,
        agency: Agency,
        passwords: dict[str, str],
        request_id: int | None,
        box: names.MailboxRef | None = None,
    ) -> None:
        """Mail temporary passwords to the agency's IT officers (R7). Never for a mailbox
        that holds a role: its password goes to the operator alone, so nobody at an
        agency can take over a centre administrator's or another officer's mailbox."""
        if not passwords:
            return
        if box is not None and await conn.scalar(
            select(roles.c.id).where(roles.c.mailbox_id == box.mailbox_id).limit(1)
        ):
            return
        officers = await officers_of(conn, agency.id)
        if box is not None:
            officers = [o for o in officers if o != box.mailbox_id]
        if officers:
            to = ", ".join([await primary_address(conn, self.cfg, o) for o in officers])
            raw = notify.password_notice(self.cfg, to, passwords, agency.name, request_id)
            await notify.deliver_in(conn, self.blobs, [(raw, officers)])

    async def reset_password(self, who: Principal, address: str) -> tuple[str, str]:
        """R7 at the centre's desk: a random temporary password, returned once to the
        operator and mailed to the IT officers of the mailbox's agency; the user must
        change it before IMAP or SMTP accept it."""
        who.require_centre()
        plain = generate_initial_password()
        hashed = await asyncio.to_thread(hash_issued_password, plain)
        async with self.db.write() as conn:
            done, box = await set_password_in(
                conn,
                self.cfg,
                address,
                hashed,
                must_change=True,
                actor=who.actor,
                source=who.source,
            )
            agency_id = box.agency_id
            if box.person_id is not None:
                agency_id = await conn.scalar(
                    select(people.c.agency_id).where(people.c.id == box.person_id)
                )
            if agency_id is not None:
                agency = (await load_agencies(conn, self.cfg, agencies.c.id == agency_id))[0]
                await self._send_passwords(conn, agency, {done: plain}, None, box)
        return done, plain

    # --- shared steps --------------------------------------------------------------------

    async def _lock(self, conn: AsyncConnection, request_id: int, *allowed: str) -> str:
        """Lock the request's row for this transaction and require one of ``allowed``
        statuses: of two operators deciding at once, the second sees the first's result."""
        status = await conn.scalar(
            select(requests.c.status).where(requests.c.id == request_id).with_for_update()
        )
        if status is None:
            raise NotFound(
                f"Không có yêu cầu số {request_id}.", f"No request {request_id}.", id=request_id
            )
        if status not in allowed:
            await self._refuse_decided(await self._load(conn, request_id, events=False))
        return str(status)

    async def _decide(
        self,
        conn: AsyncConnection,
        request_id: int,
        who: Principal,
        status: str,
        *,
        reason: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        await conn.execute(
            update(requests)
            .where(requests.c.id == request_id)
            .values(
                status=status,
                decided_by=who.actor,
                decided_at=audit.now(),
                reason=reason,
                result=result,
            )
        )
        await self._event(conn, request_id, who, status, reason or "")
        await audit.record(
            conn,
            who.actor,
            f"request.{ {APPROVED: 'approve', REJECTED: 'reject'}.get(status, 'withdraw') }",
            f"request/{request_id}",
            source=who.source,
            reason=reason,
            result=result,
        )

    async def _event(
        self, conn: AsyncConnection, request_id: int, who: Principal, status: str, note: str = ""
    ) -> None:
        await conn.execute(
            insert(request_events).values(
                request_id=request_id, at=audit.now(), actor=who.actor, status=status, note=note
            )
        )

    async def _notify_requester(
        self, conn: AsyncConnection, request: MailboxRequest, status: str, note: str = ""
    ) -> None:
        """Tell whoever filed the request (their mailbox; for requests filed at the
        command line, the agency's mailbox) in the same transaction as the change."""
        box = await conn.scalar(
            select(requests.c.submitter_mailbox_id).where(requests.c.id == request.id)
        )
        to = request.submitted_by
        if box is None and request.agency is not None:
            box = await conn.scalar(
                select(mailboxes.c.id).where(
                    mailboxes.c.kind == "agency",
                    mailboxes.c.agency_id
                    == select(requests.c.agency_id)
                    .where(requests.c.id == request.id)
                    .scalar_subquery(),
                )
            )
            to = request.agency
        if box is None:
            return
        raw = notify.request_notice(self.cfg, to, request, status, note)
        await notify.deliver_in(conn, self.blobs, [(raw, [box])])

    async def _load(
        self, conn: AsyncConnection, request_id: int, *, events: bool = True
    ) -> MailboxRequest:
        row = (await conn.execute(select(requests).where(requests.c.id == request_id))).first()
        if row is None:
            raise NotFound(
                f"Không có yêu cầu số {request_id}.", f"No request {request_id}.", id=request_id
            )
        known = {}
        if row.agency_id is not None:
            found = (await load_agencies(conn, self.cfg, agencies.c.id == row.agency_id))[0]
            known[found.id] = found
        agency, agency_name = _agency_of(row, known)
        history: tuple[RequestEvent, ...] = ()
        if events:
            history = tuple(
                RequestEvent(_aware(e.at), e.actor, e.status, e.note)
                for e in await conn.execute(
                    select(request_events)
                    .where(request_events.c.request_id == request_id)
                    .order_by(request_events.c.id)
                )
            )
        return self._request(row, agency, agency_name, history)

    def _request(
        self,
        row: Row[Any],
        agency: str | None,
        agency_name: str,
        history: tuple[RequestEvent, ...],
    ) -> MailboxRequest:
        submitted = _aware(row.submitted_at)
        due = self.calendar.add_working_days(submitted, self.cfg.workflow.sla_working_days)
        return MailboxRequest(
            id=row.id,
            form=row.form,
            agency=agency,
            agency_name=agency_name,
            status=row.status,
            submitted_by=row.submitted_by,
            submitted_at=submitted,
            decision_date=row.decision_date,
            late=row.late,
            rows=tuple(RequestRow.from_dict(r) for r in row.rows),
            payload=dict(row.payload),
            document_name=row.document_name,
            endorsed_by=row.endorsed_by,
            decided_by=row.decided_by,
            decided_at=_aware(row.decided_at) if row.decided_at else None,
            reason=row.reason,
            result=row.result,
            events=history,
            due_at=due,
            overdue=row.status in OPEN_STATUSES and audit.now() > due,
        )


def _agency_of(row: Row[Any], known: Mapping[int, Agency]) -> tuple[str | None, str]:
    """The request's agency as (address, name): a new agency not created yet is named
    from the form; one merged away since keeps no address."""
    found = known.get(row.agency_id) if row.agency_id is not None else None
    if row.form == FORM_01 and row.payload.get("agency") and row.status != APPROVED:
        return (found.address if found else None), str(row.payload["agency"]["name"])
    if found is None:
        return None, ""
    return found.address, found.name


def _required(agency: Agency | None) -> Agency:
    if agency is None:
        raise Conflict("Yêu cầu không gắn với cơ quan nào.", "The request belongs to no agency.")
    return agency


async def _person_agency(conn: AsyncConnection, cfg: Config, ref: str) -> int | None:
    box = await names.find_mailbox(conn, cfg, ref)
    return await conn.scalar(select(people.c.agency_id).where(people.c.id == box.person_id))


async def _mailbox_locals(conn: AsyncConnection, mailbox_id: int) -> list[str]:
    return list(
        (
            await conn.scalars(
                select(addresses.c.local_part).where(addresses.c.mailbox_id == mailbox_id)
            )
        ).all()
    )


def _fingerprint(
    form: str, agency: Agency | None, rows: Sequence[RequestRow], payload: Mapping[str, Any]
) -> str:
    """The same form, agency, rows and fields: the same request (the requester's contact
    details do not make a request different)."""
    content = {
        "form": form,
        "agency": agency.id if agency else None,
        "rows": [r.as_dict() for r in rows],
        "payload": {k: v for k, v in payload.items() if k != "requester"},
    }
    return hashlib.sha256(
        json.dumps(content, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()


# What a signed authorisation may be: a PDF (signed digitally or scanned) or a photo.
_DOCUMENT_MAGIC = (b"%PDF-", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


def _checked_document(data: bytes) -> bytes:
    if not data or len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            "Tệp văn bản ủy quyền trống hoặc lớn hơn 10 MB.",
            "The authorisation document is empty or larger than 10 MB.",
        )
    if not data.startswith(_DOCUMENT_MAGIC):
        raise InvalidInput(
            "Văn bản ủy quyền phải là tệp PDF, PNG hoặc JPEG.",
            "The authorisation must be a PDF, PNG or JPEG file.",
        )
    return data


def _file_name(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in name if c.isprintable() and c not in '<>:"|?*')
    return cleaned[:200] or "van-ban"


def _note(text: str) -> str:
    return " ".join(text.split())[:MAX_REASON]


def _public(approval: Approval) -> dict[str, Any]:
    """What the request row keeps of an approval: never the passwords."""
    kept = approval.as_dict()
    kept.pop("passwords")
    kept["passwords_issued"] = sorted(approval.passwords)
    return kept


def _summary(approval: Approval) -> str:
    lines = []
    if approval.created:
        lines.append("Đã cấp: " + ", ".join(approval.created))
    if approval.changed:
        lines.append("Đã thay đổi: " + ", ".join(approval.changed))
    if approval.deleted:
        lines.append(
            "Đã xóa (địa chỉ được giữ lại, không cấp cho người khác): "
            + ", ".join(approval.deleted)
        )
    if approval.passwords:
        lines.append("Mật khẩu tạm thời đã được gửi tới cán bộ chuyên trách CNTT của cơ quan.")
    return "\n".join(lines)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
