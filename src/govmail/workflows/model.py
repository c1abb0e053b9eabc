"""What a request to the centre is made of: the form's rows, its history, its status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

FORM_01 = "01"  # cấp mới: new agency mailbox and/or personal mailboxes (R6)
FORM_02 = "02"  # thay đổi: position, department, address; rename; transfer in (R8)
FORM_03 = "03"  # xóa: delete personal mailboxes (R9)
RESET = "reset"  # cấp lại mật khẩu (R7)
DELEGATION = "delegation"  # ủy quyền hộp thư cơ quan (R22)

FORM_TITLES = {
    FORM_01: ("Mẫu 01 — Cấp mới hộp thư điện tử công vụ", "Form 01 — new mailboxes"),
    FORM_02: ("Mẫu 02 — Thay đổi thông tin hộp thư điện tử công vụ", "Form 02 — changes"),
    FORM_03: ("Mẫu 03 — Xóa hộp thư điện tử công vụ cá nhân", "Form 03 — deletions"),
    RESET: ("Cấp lại mật khẩu", "Password reset"),
    DELEGATION: ("Ủy quyền sử dụng hộp thư cơ quan", "Agency mailbox delegation"),
}

PENDING = "pending"
AWAITING_DIRECTOR = "awaiting_director"  # R10: an agency outside the scope
APPROVED = "approved"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
OPEN_STATUSES = (PENDING, AWAITING_DIRECTOR)

STATUS_LABELS = {
    PENDING: ("Chờ xử lý", "Pending"),
    AWAITING_DIRECTOR: ("Chờ Giám đốc Sở phê duyệt", "Awaiting the Director"),
    APPROVED: ("Đã thực hiện", "Approved"),
    REJECTED: ("Bị từ chối", "Rejected"),
    WITHDRAWN: ("Đã rút lại", "Withdrawn"),
    "submitted": ("Đã gửi", "Submitted"),
    "endorsed": ("Giám đốc Sở đã phê duyệt", "Endorsed by the Director"),
}

# Mẫu 02's "Mã" column.
CODE_POSITION = 1
CODE_DEPARTMENT = 2
CODE_ADDRESS = 3
CHANGE_CODES = {
    CODE_POSITION: ("Chức vụ", "Position"),
    CODE_DEPARTMENT: ("Bộ phận công tác", "Department"),
    CODE_ADDRESS: ("Địa chỉ hộp thư", "Address"),
}

# R21: personnel changes are reported within 10 days of the decision taking effect.
REPORT_WITHIN_DAYS = 10


@dataclass(frozen=True)
class RequestRow:
    """One person in a form's table; its 1-based position is the ROW of ``--address``.

    Mẫu 01: name, position, department (``address`` optionally asks for one).
    Mẫu 02: name, ``address`` already issued, ``changes`` as (code, new content) pairs:
    1 position, 2 department, 3 address (empty content: convert to the regulation's form).
    A person of another agency named in a Mẫu 02 is transferred in (R8).
    Mẫu 03: name, position, department, ``address``; ``reason`` optional.
    """

    name: str
    position: str = ""
    department: str = ""
    address: str = ""
    changes: tuple[tuple[int, str], ...] = ()
    reason: str = ""
    # Mẫu 02: the agency (address) the person works in now, when the filing agency is
    # receiving them (R8); set by the desk, shown to the centre, checked at approval.
    transfer_from: str = ""

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name}
        for key in ("position", "department", "address", "reason", "transfer_from"):
            if getattr(self, key):
                found[key] = getattr(self, key)
        if self.changes:
            found["changes"] = [[code, value] for code, value in self.changes]
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRow:
        return cls(
            name=str(data.get("name", "")),
            position=str(data.get("position", "")),
            department=str(data.get("department", "")),
            address=str(data.get("address", "")),
            changes=tuple((int(c), str(v)) for c, v in data.get("changes", ())),
            reason=str(data.get("reason", "")),
            transfer_from=str(data.get("transfer_from", "")),
        )


@dataclass(frozen=True)
class RequestEvent:
    at: datetime
    actor: str
    status: str  # submitted, awaiting_director, endorsed, approved, rejected, withdrawn
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "status": self.status,
            "note": self.note,
        }


@dataclass(frozen=True)
class MailboxRequest:
    """A request as the portal, the console, the CLI and the API show it.

    ``payload`` holds the form's fields outside the table: ``requester`` (name, position,
    phone), ``agency`` for a new agency (name, abbr, parent, external), ``rename`` (Mẫu 02),
    ``address`` (reset), ``person`` and ``revoke`` (delegation). ``result`` is what approval
    did (``created``, ``changed``, ``deleted``, ``archives``...), passwords never included.
    """

    id: int
    form: str
    agency: str | None  # the agency's address; None for a new agency not created yet
    agency_name: str
    status: str
    submitted_by: str
    submitted_at: datetime
    decision_date: date | None
    late: bool
    rows: tuple[RequestRow, ...]
    payload: dict[str, Any]
    document_name: str | None = None
    endorsed_by: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    result: dict[str, Any] | None = None
    events: tuple[RequestEvent, ...] = ()
    due_at: datetime | None = None  # the centre's SLA: when it should be decided
    overdue: bool = False

    @property
    def title(self) -> str:
        return FORM_TITLES[self.form][0]

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, (self.status, self.status))[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "form": self.form,
            "agency": self.agency,
            "agency_name": self.agency_name,
            "status": self.status,
            "submitted_by": self.submitted_by,
            "submitted_at": self.submitted_at.isoformat(),
            "decision_date": self.decision_date.isoformat() if self.decision_date else None,
            "late": self.late,
            "rows": [r.as_dict() for r in self.rows],
            "payload": self.payload,
            "document_name": self.document_name,
            "endorsed_by": self.endorsed_by,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "reason": self.reason,
            "result": self.result,
            "events": [e.as_dict() for e in self.events],
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "overdue": self.overdue,
        }


@dataclass(frozen=True)
class Approval:
    """What approving a request did. ``passwords`` (address → temporary password) is shown
    once to the operator and mailed to the agency's IT officers; it is never stored."""

    request_id: int
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    archives: list[str] = field(default_factory=list)
    passwords: dict[str, str] = field(default_factory=dict)
    status: str = APPROVED

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.request_id,
            "status": self.status,
            "created": self.created,
            "changed": self.changed,
            "deleted": self.deleted,
            "archives": self.archives,
            "passwords": self.passwords,
        }
