"""SMTP reply texts: Vietnamese first, English after, one place for all of them.

RFC 5321 replies are ASCII unless the client asked for SMTPUTF8 (RFC 6531 §3.7.4.2),
so the Vietnamese text loses its diacritics for other clients.
"""

from __future__ import annotations

import re

from govmail.core.vietnamese import ascii_vietnamese


def reply(code: str, vi: str, en: str, *, utf8: bool = False) -> str:
    """'550 5.1.1' + texts → one reply line."""
    if not utf8:  # both halves: the English one may quote a client's address
        vi, en = ascii_vietnamese(vi), ascii_vietnamese(en)
    return f"{code} {vi} / {en}"


# Default enhanced codes (RFC 3463) for replies aiosmtpd writes without one: once
# ENHANCEDSTATUSCODES is advertised, every reply after EHLO must carry one (RFC 2034).
_DEFAULT_ENHANCED = {
    "221": "2.0.0",
    "250": "2.0.0",
    "251": "2.1.5",
    "252": "2.5.0",
    "421": "4.3.0",
    "450": "4.2.0",
    "451": "4.3.0",
    "452": "4.3.1",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "535": "5.7.8",
    "538": "5.7.11",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(?: |$)")


def with_enhanced_code(line: str) -> str:
    """Add the default enhanced status code to a reply line that lacks one."""
    code = line[:3]
    if len(line) < 4 or line[3] not in " -" or _HAS_ENHANCED.match(line):
        return line
    enhanced = _DEFAULT_ENHANCED.get(code)
    return f"{code}{line[3]}{enhanced} {line[4:]}" if enhanced else line
