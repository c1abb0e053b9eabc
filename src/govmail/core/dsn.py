"""Delivery status notifications (RFC 3464): the bounce a sender gets when some
recipients could not receive a message, with a human part in Vietnamese and English."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime

SUBJECT = "Thư không chuyển được / Undelivered Mail Returned to Sender"


@dataclass(frozen=True)
class FailedRecipient:
    address: str
    status: str  # RFC 3463 code, e.g. "5.2.2"
    diagnostic: str  # e.g. "smtp; 552 5.2.2 Mailbox full"
    reason_vi: str
    reason_en: str


def build_dsn(
    *,
    reporting_host: str,
    sender: str,
    failed: list[FailedRecipient],
    original: bytes,
    at: datetime,
) -> bytes:
    """A multipart/report DSN to ``sender`` about ``failed``; ``original`` is the message
    (only its header block is returned to the sender, as Postfix does by default)."""
    header_end = original.find(b"\r\n\r\n")
    original_headers = original[: header_end + 2] if header_end >= 0 else original
    who_vi = "\n".join(f"  <{f.address}>: {f.reason_vi}" for f in failed)
    who_en = "\n".join(f"  <{f.address}>: {f.reason_en}" for f in failed)
    human = (
        f"Đây là thông báo tự động từ hệ thống thư điện tử {reporting_host}.\n\n"
        f"Thư của bạn KHÔNG được chuyển tới những người nhận sau:\n{who_vi}\n\n"
        "Những người nhận khác (nếu có) đã nhận được thư. Hãy liên hệ người nhận bằng cách"
        " khác hoặc gửi lại sau khi họ đã giải phóng dung lượng hộp thư.\n\n"
        "-----\n"
        f"This is an automatic message from the mail system at {reporting_host}.\n\n"
        f"Your message could NOT be delivered to these recipients:\n{who_en}\n\n"
        "Other recipients (if any) received it. Contact these recipients another way, or"
        " send it again once they have freed space in their mailbox.\n"
    )
    boundary = f"=_govmail_dsn_{uuid.uuid4().hex}"
    per_message = f"Reporting-MTA: dns; {reporting_host}\r\nArrival-Date: {format_datetime(at)}\r\n"
    per_recipient = "".join(
        f"\r\nFinal-Recipient: rfc822; {f.address}\r\nAction: failed\r\nStatus: {f.status}\r\n"
        f"Diagnostic-Code: {f.diagnostic}\r\n"
        for f in failed
    )
    body = base64.encodebytes(human.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    head = (
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_host}>\r\n"
        f"To: <{sender}>\r\n"
        f"Subject: {Header(SUBJECT, 'utf-8').encode()}\r\n"
        f"Date: {format_datetime(at)}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@{reporting_host}>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{body}"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        f"{per_message}{per_recipient}"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
    )
    tail = f"--{boundary}--\r\n"
    return head.encode("utf-8", "replace") + original_headers + b"\r\n" + tail.encode()
