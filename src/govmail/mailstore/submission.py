"""What an official's outgoing message must satisfy before it is accepted, whichever way
it comes (SMTP submission now, the webmail later): who it claims to be from, and the
headers RFC 6409 lets a submission server add."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from govmail.core.mime import has_header, header_addresses, header_end
from govmail.directory.accounts import Account


@dataclass(frozen=True)
class Refusal:
    """Why a message is not accepted: an SMTP reply code with its RFC 3463 status, and
    texts for the sender in Vietnamese and English."""

    code: str  # e.g. "553 5.7.1"
    vi: str
    en: str


def check_from(raw: bytes, account: Account) -> Refusal | None:
    """The From: header must name only addresses ``account`` may send as (its own, or an
    agency mailbox delegated to its owner, R22)."""
    header = raw[: header_end(raw)]
    if b"\r" in header.replace(b"\r\n", b""):
        # A bare CR splits a field for some parsers and not for others: one could read
        # a From: that this check never saw.
        return Refusal(
            "550 5.6.0",
            "Phần đầu thư chứa ký tự CR đơn lẻ",
            "Bare CR in the message header",
        )
    senders = header_addresses(raw, "from")
    if not senders and has_header(raw, "from"):
        return Refusal(
            "553 5.7.1",
            "Trường From của thư không có địa chỉ hợp lệ",
            "The From: header holds no valid address",
        )
    claimed = [a for a in senders if a not in account.senders]
    if claimed:
        return Refusal(
            "553 5.7.1",
            f"Tài khoản {account.address} không được gửi thư với tên <{claimed[0]}> (From)",
            f"From: <{claimed[0]}> is not owned by {account.address}",
        )
    return None


def missing_headers(raw: bytes, *, sender: str, hostname: str, at: datetime) -> bytes:
    """Date, Message-ID and From for a submitted message that lacks them (RFC 6409 §8)."""
    added = []
    if not has_header(raw, "date"):
        added.append(f"Date: {format_datetime(at)}")
    if not has_header(raw, "message-id"):
        added.append(f"Message-ID: <{uuid.uuid4().hex}@{hostname}>")
    if not has_header(raw, "from") and sender:
        added.append(f"From: <{sender}>")
    return "".join(f"{line}\r\n" for line in added).encode("utf-8", "surrogateescape")
