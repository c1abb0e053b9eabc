"""Delivery status notifications (RFC 3464): the bounce a sender gets when some
recipients could not receive a message, or the warning that it is late, with a human
part in Vietnamese and English that says what failed and what to do."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime

SUBJECT = "Thư không chuyển được / Undelivered Mail Returned to Sender"
DELAYED_SUBJECT = "Thư chưa chuyển được, đang thử lại / Delayed Mail (still being retried)"


@dataclass(frozen=True)
class FailedRecipient:
    address: str
    status: str  # RFC 3463 code, e.g. "5.2.2" (4.x.x in a delay warning)
    diagnostic: str  # e.g. "smtp; 552 5.2.2 Mailbox full"
    reason_vi: str
    reason_en: str
    remote_mta: str = ""  # the remote server that answered, when one did


# What the sender can do, by the detail of the status code (RFC 3463 subject.detail);
# the first matching prefix wins.
_ADVICE: tuple[tuple[str, str, str], ...] = (
    (
        "2.2",
        "Hãy liên hệ người nhận bằng cách khác hoặc gửi lại sau khi họ đã giải phóng"
        " dung lượng hộp thư.",
        "Contact these recipients another way, or send it again once they have freed"
        " space in their mailbox.",
    ),
    (
        "1.",
        "Hãy kiểm tra lại địa chỉ người nhận (gõ sai, hoặc hộp thư không còn) rồi gửi lại.",
        "Check the recipient's address (a typo, or a mailbox that no longer exists) and"
        " send it again.",
    ),
    (
        "4.7",
        "Máy chủ nhận không thể nhận thư trong thời gian cho phép. Hãy liên hệ người nhận"
        " bằng cách khác; nếu cần, chuyển thông báo này cho bộ phận quản trị thư điện tử.",
        "The receiving server could not be reached in the time allowed. Contact these"
        " recipients another way; if needed, forward this notice to your mail"
        " administrators.",
    ),
    (
        "4.6",
        "Thư bị chuyển vòng giữa các máy chủ. Hãy chuyển thông báo này cho bộ phận quản"
        " trị thư điện tử.",
        "The message was looping between servers. Forward this notice to your mail administrators.",
    ),
    (
        "",
        "Máy chủ nhận đã từ chối thư với lý do nêu trên. Hãy liên hệ người nhận bằng cách"
        " khác, hoặc chuyển thông báo này cho bộ phận quản trị thư điện tử.",
        "The receiving server refused the message for the reason above. Contact these"
        " recipients another way, or forward this notice to your mail administrators.",
    ),
)


def _advice(failed: list[FailedRecipient]) -> tuple[str, str]:
    vi: list[str] = []
    en: list[str] = []
    for f in failed:
        detail = f.status.partition(".")[2]
        for prefix, advice_vi, advice_en in _ADVICE:
            if detail.startswith(prefix):
                if advice_vi not in vi:
                    vi.append(advice_vi)
                    en.append(advice_en)
                break
    return " ".join(vi), " ".join(en)


def build_dsn(
    *,
    reporting_host: str,
    sender: str,
    failed: list[FailedRecipient],
    original: bytes,
    at: datetime,
    delayed_until: datetime | None = None,
    arrived: datetime | None = None,
    last_attempt: datetime | None = None,
) -> bytes:
    """A multipart/report DSN to ``sender`` about ``failed``; ``original`` is the message
    (only its header block is returned to the sender, as Postfix does by default).

    With ``delayed_until`` it is a delay warning (Action: delayed): the mail is still
    queued and will be tried until then; otherwise it reports a final failure.
    ``arrived`` is when the message was queued (default ``at``); ``last_attempt`` when a
    server was last tried for these recipients (a failure from the queue).
    """
    header_end = original.find(b"\r\n\r\n")
    original_headers = original[: header_end + 2] if header_end >= 0 else original
    who_vi = "\n".join(f"  <{f.address}>: {f.reason_vi}" for f in failed)
    who_en = "\n".join(f"  <{f.address}>: {f.reason_en}" for f in failed)
    intro_vi = f"Đây là thông báo tự động từ hệ thống thư điện tử {reporting_host}.\n\n"
    intro_en = f"This is an automatic message from the mail system at {reporting_host}.\n\n"
    if delayed_until is not None:
        until = f"{delayed_until:%d/%m/%Y %H:%M %z}"
        human = (
            f"{intro_vi}Thư của bạn CHƯA chuyển được tới những người nhận sau:\n{who_vi}\n\n"
            f"Hệ thống sẽ tự động thử lại đến {until}. Bạn KHÔNG cần gửi lại thư; nếu"
            " thư vẫn không chuyển được, bạn sẽ nhận thêm một thông báo.\n\n"
            "-----\n"
            f"{intro_en}Your message has NOT yet been delivered to these recipients:\n"
            f"{who_en}\n\n"
            f"It will be tried again automatically until {until}. You do NOT need to send"
            " it again; if it still cannot be delivered, you will get another notice.\n"
        )
        subject, action = DELAYED_SUBJECT, "delayed"
    else:
        advice_vi, advice_en = _advice(failed)
        human = (
            f"{intro_vi}Thư của bạn KHÔNG được chuyển tới những người nhận sau:\n{who_vi}\n\n"
            "Việc chuyển thư tới những người nhận khác (nếu có) không bị ảnh hưởng; nếu"
            f" có người nào khác không nhận được, bạn sẽ nhận thêm thông báo. {advice_vi}\n\n"
            "-----\n"
            f"{intro_en}Your message could NOT be delivered to these recipients:\n{who_en}\n\n"
            "Delivery to any other recipients is not affected; if it fails for any of"
            f" them, you will get another notice. {advice_en}\n"
        )
        subject, action = SUBJECT, "failed"
    boundary = f"=_govmail_dsn_{uuid.uuid4().hex}"
    per_message = (
        f"Reporting-MTA: dns; {reporting_host}\r\n"
        f"Arrival-Date: {format_datetime(arrived or at)}\r\n"
    )
    tried = f"Last-Attempt-Date: {format_datetime(last_attempt)}\r\n" if last_attempt else ""
    per_recipient = "".join(
        f"\r\nFinal-Recipient: rfc822; {f.address}\r\nAction: {action}\r\nStatus: {f.status}\r\n"
        + (f"Remote-MTA: dns; {f.remote_mta}\r\n" if f.remote_mta else "")
        + f"Diagnostic-Code: {_one_line(f.diagnostic)}\r\n"
        + tried
        + (
            f"Will-Retry-Until: {format_datetime(delayed_until)}\r\n"
            if delayed_until is not None
            else ""
        )
        for f in failed
    )
    body = base64.encodebytes(human.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    head = (
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_host}>\r\n"
        f"To: <{sender}>\r\n"
        f"Subject: {Header(subject, 'utf-8').encode()}\r\n"
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


def _one_line(text: str) -> str:
    """A remote reply of several lines as one field value (no header injection)."""
    return " ".join(text.split())
