"""The trace and missing headers an SMTP server adds to a message it accepts (pure)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from email.utils import format_datetime

_UNSAFE = re.compile(r"[^\x21-\x7e\u00a0-\U0010ffff]+")


def clean_token(value: str, limit: int = 255) -> str:
    """A client-supplied word (HELO name, login) made safe inside a header."""
    return _UNSAFE.sub("_", value)[:limit] or "unknown"


def received_header(
    *,
    helo: str,
    client_ip: str,
    hostname: str,
    protocol: str,
    queue_id: str,
    tls: tuple[str, str, int] | None,
    login: str | None,
    recipient: str | None,
    at: datetime,
) -> bytes:
    """A Received field (RFC 5321 §4.4) with TLS and authentication details, as Postfix
    writes it. ``recipient`` is named only for a single-recipient message: the same
    bytes then serve every recipient (one blob), and no recipient learns of another."""
    literal = f"IPv6:{client_ip}" if ":" in client_ip else client_ip  # RFC 5321 §4.1.3
    lines = [
        f"Received: from {clean_token(helo)} (unknown [{literal}])",
        f"\tby {hostname} (govmail) with {protocol} id {queue_id}",
    ]
    if tls is not None:
        version, cipher, bits = tls
        lines.append(f"\t(using {version} with cipher {cipher} ({bits}/{bits} bits))")
    if login:
        lines.append(f"\t(Authenticated sender: {clean_token(login)})")
    last = f"\tfor <{recipient}>; " if recipient else "\t"
    lines.append(last + format_datetime(at))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogateescape")


def protocol_name(*, extended: bool, tls: bool, authenticated: bool, utf8: bool) -> str:
    """The WITH clause of RFC 3848 / RFC 6531: ESMTP, ESMTPS, ESMTPSA, UTF8SMTPSA, ..."""
    if not extended:
        return "SMTP"
    return ("UTF8SMTP" if utf8 else "ESMTP") + ("S" if tls else "") + ("A" if authenticated else "")


def new_queue_id() -> str:
    """A short random id naming one SMTP transaction in Received, replies and logs."""
    return uuid.uuid4().hex[:16].upper()
