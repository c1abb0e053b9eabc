"""The mail the workflows send: notices to requesters on every status change, welcome
mail to new officials, temporary passwords to agency IT officers. Each is committed in the
transaction of the change it reports, so no notice is lost and none is sent for a change
that did not happen."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import Config
from govmail.core.mime import analyze_message
from govmail.mailstore.delivery import Delivery, StoredMessage, deliver_batch
from govmail.store.blobs import BlobStore
from govmail.workflows.model import STATUS_LABELS, MailboxRequest

SYSTEM_NAME = "Hệ thống thư điện tử công vụ"


def system_message(cfg: Config, to: str, subject: str, lines: Sequence[str]) -> bytes:
    """A plain UTF-8 message from the postmaster, marked auto-generated (RFC 3834).

    Written out directly rather than with ``email.message.EmailMessage``: its header
    folding costs ~40 ms per Vietnamese header, which a 200-person approval pays 400 times.
    """
    to, subject = _one_line(to), _one_line(subject)
    name, address = parseaddr(to)
    headers = [
        ("From", formataddr((SYSTEM_NAME, f"postmaster@{cfg.domain}"), charset="utf-8")),
        ("To", formataddr((name, address), charset="utf-8") if address else to),
        ("Subject", _encoded(subject[:200])),
        ("Date", format_datetime(datetime.now().astimezone())),
        ("Message-ID", make_msgid(domain=cfg.hostname)),
        ("Auto-Submitted", "auto-generated"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", "base64"),
    ]
    body = base64.encodebytes("\n".join(lines).replace("\n", "\r\n").encode("utf-8"))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("ascii")
    return head + b"\r\n" + body.replace(b"\n", b"\r\n")


def _encoded(value: str) -> str:
    """An unstructured header value as RFC 2047 encoded words when it is not ASCII."""
    if value.isascii():
        return value
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")


def _one_line(value: str) -> str:
    """No line break ever reaches a header: names and subjects come from forms."""
    return " ".join(value.split())


def request_notice(
    cfg: Config, to: str, request: MailboxRequest, status: str, note: str = ""
) -> bytes:
    label_vi, label_en = STATUS_LABELS.get(status, (status, status))
    lines = [
        "Kính gửi quý cơ quan,",
        "",
        f"Yêu cầu số {request.id} ({request.title}) của {request.agency_name}: {label_vi.lower()}.",
    ]
    if note:
        lines += ["", note]
    if request.late:
        lines += [
            "",
            "Lưu ý: yêu cầu được gửi quá 10 ngày kể từ ngày quyết định có hiệu lực"
            " (Khoản 4 Điều 14 Quy định).",
        ]
    lines += [
        "",
        f"Xem chi tiết trong Cổng cơ quan của hệ thống thư điện tử công vụ (mục Yêu cầu,"
        f" số {request.id}).",
        "",
        "-- ",
        f"Request {request.id} ({request.form}) of {request.agency_name}: {label_en}.",
    ]
    return system_message(cfg, to, f"[Yêu cầu số {request.id}] {request.title}: {label_vi}", lines)


def welcome_message(cfg: Config, address: str, name: str, agency_name: str) -> bytes:
    lines = [
        f"Chào {name},",
        "",
        f"Hộp thư điện tử công vụ {address} của anh/chị ({agency_name}) đã được cấp.",
        "Mật khẩu tạm thời do cán bộ chuyên trách CNTT của cơ quan chuyển tới; anh/chị"
        " phải đổi mật khẩu ở lần đăng nhập đầu tiên.",
        "",
        "Một vài điều cần nhớ (Quy định sử dụng hệ thống thư điện tử công vụ):",
        "- Giữ bí mật mật khẩu; không để người khác dùng hộp thư của mình.",
        "- Chỉ dùng hộp thư cho công việc; không gửi tài liệu mật qua thư điện tử.",
        "- Văn bản gửi kèm dùng định dạng được phép, phông chữ Unicode (TCVN 6909:2001),"
        " tổng dung lượng tệp đính kèm không quá 10 MB.",
        "- Kiểm tra hộp thư ít nhất 2 lần mỗi ngày làm việc.",
        "- Báo ngay cho cơ quan và Trung tâm khi hộp thư có sự cố hoặc mất mật khẩu.",
        "",
        "Dùng hộp thư bằng trình duyệt (webmail) hoặc bằng Thunderbird, Outlook, điện thoại"
        f" (IMAP và SMTP tại {cfg.hostname}).",
        "",
        "-- ",
        f"Welcome: your official mailbox {address} is ready.",
    ]
    return system_message(
        cfg, f"{name} <{address}>", "Chào mừng đến hệ thống thư điện tử công vụ", lines
    )


def password_notice(
    cfg: Config, to: str, passwords: dict[str, str], agency_name: str, request_id: int | None
) -> bytes:
    where = f" theo yêu cầu số {request_id}" if request_id is not None else ""
    lines = [
        "Kính gửi cán bộ chuyên trách CNTT,",
        "",
        f"Trung tâm đã cấp mật khẩu tạm thời{where} cho các hộp thư sau của {agency_name}:",
        "",
        *(f"  {address}    {password}" for address, password in passwords.items()),
        "",
        "Đề nghị chuyển mật khẩu trực tiếp cho từng người và xóa thư này sau khi chuyển."
        " Người dùng phải đổi mật khẩu ở lần đăng nhập đầu tiên (Khoản 2 Điều 4); trước"
        " khi đổi, IMAP và SMTP không nhận mật khẩu tạm thời.",
        "",
        "-- ",
        "Temporary passwords issued; each must be changed at first login.",
    ]
    return system_message(cfg, to, f"[Mật khẩu tạm thời] {agency_name}", lines)


def _stored(blobs: BlobStore, raw: bytes) -> StoredMessage:
    raw = b"Return-Path: <>\r\n" + raw
    summary = analyze_message(raw)
    return StoredMessage(blob=blobs.put(raw), size=len(raw), summary=summary)


async def deliver_in(
    conn: AsyncConnection, blobs: BlobStore, messages: Sequence[tuple[bytes, Sequence[int]]]
) -> None:
    """Deliver (message, mailbox ids) pairs to those INBOXes inside ``conn``'s transaction:
    the blobs are durable first, the rows commit with the caller's change."""
    wanted = [(raw, boxes) for raw, boxes in messages if boxes]
    # Blobs are written (and fsynced) in parallel threads: a 200-person approval writes 200.
    stored = await asyncio.gather(*(asyncio.to_thread(_stored, blobs, raw) for raw, _ in wanted))
    deliveries = [
        Delivery(message=message, sender="", inbox=sorted(set(boxes)))
        for message, (_, boxes) in zip(stored, wanted, strict=True)
    ]
    if deliveries:
        await conn.run_sync(lambda sync: deliver_batch(sync, deliveries))
