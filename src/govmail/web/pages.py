"""Shared page machinery of the webmail: the services every router is given, the Jinja2
environment and its filters, rendering with the security headers, and error pages."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from govmail.config import Config
from govmail.directory.accounts import Authenticator
from govmail.directory.sessions import SessionLimits
from govmail.mailstore.access import AccessLog
from govmail.mailstore.service import MailStore
from govmail.policy.service import SendingPolicy
from govmail.store.database import Database
from govmail.workflows.requests import RequestDesk

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
VIETNAM = timezone(timedelta(hours=7), "ICT")  # no daylight saving time

# Every page: nothing inline, nothing from elsewhere, never framed by another site.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class WebServices:
    """What the web routers are given (one of each per process, shared with SMTP/IMAP)."""

    db: Database
    cfg: Config
    store: MailStore
    auth: Authenticator
    access: AccessLog
    sending: SendingPolicy | None
    limits: SessionLimits
    pages: Pages
    desk: RequestDesk  # agencies' requests: the portal, the console and the API


# Vietnamese names of the folders' roles; user folders show their own name.
FOLDER_LABELS = {
    "inbox": "Hộp thư đến",
    "sent": "Đã gửi",
    "drafts": "Thư nháp",
    "trash": "Thùng rác",
    "junk": "Thư rác",
}


def folder_label(folder: Any) -> str:
    return FOLDER_LABELS.get(folder.role or "", str(folder.name))


def local_time(moment: datetime | None, now: datetime | None = None) -> str:
    """ "14:05" for today (Vietnam time), "03/11/2026" for another day."""
    if moment is None:
        return ""
    at = moment.astimezone(VIETNAM)
    today = (now or datetime.now(UTC)).astimezone(VIETNAM).date()
    return f"{at:%H:%M}" if at.date() == today else f"{at:%d/%m/%Y}"


def full_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return f"{moment.astimezone(VIETNAM):%H:%M, %d/%m/%Y}"


def human_size(size: int) -> str:
    """Sizes as Vietnamese readers write them: "512 B", "12,5 KB", "3,2 MB"."""
    if size < 1024:
        return f"{size} B"
    for unit in ("KB", "MB", "GB"):
        size_f = size / 1024
        if size_f < 1024 or unit == "GB":
            text = f"{size_f:.1f}" if size_f < 100 else f"{size_f:.0f}"
            return f"{text.replace('.', ',')} {unit}"
        size = int(size_f)
    return f"{size} GB"  # pragma: no cover - the loop returns


class Pages:
    """The Jinja2 environment (autoescaped) and rendering with the headers every page
    carries."""

    def __init__(self, directory: Path = TEMPLATES) -> None:
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.env.filters.update(
            local_time=local_time,
            full_time=full_time,
            human_size=human_size,
            folder_label=folder_label,
        )

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        # English is switchable (Settings): the pages carry both languages and the
        # class decides which one leads.
        english = request.cookies.get("govmail_lang") == "en"
        values = {"request": request, "lang_class": "lang-en" if english else "", **(context or {})}
        page = self.env.get_template(template).render(values)
        response = HTMLResponse(page, status_code=status_code, headers=headers)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def error(self, request: Request, status_code: int, vi: str, en: str) -> HTMLResponse:
        """A Vietnamese error page (English beside it); never a traceback."""
        return self.render(
            request,
            "error.html",
            {"status": status_code, "message_vi": vi, "message_en": en},
            status_code=status_code,
        )


ERRORS: dict[int, tuple[str, str]] = {
    400: ("Yêu cầu không hợp lệ.", "Bad request."),
    403: ("Yêu cầu bị từ chối.", "Forbidden."),
    404: ("Không tìm thấy trang hoặc thư này.", "Not found."),
    405: ("Thao tác không được hỗ trợ.", "Method not allowed."),
    413: ("Dữ liệu gửi lên quá lớn.", "Request too large."),
    429: ("Quá nhiều yêu cầu, vui lòng thử lại sau.", "Too many requests."),
    500: ("Đã có lỗi trong hệ thống. Vui lòng thử lại sau.", "Internal server error."),
}


def error_text(status_code: int) -> tuple[str, str]:
    return ERRORS.get(status_code, ERRORS[500 if status_code >= 500 else 400])
