"""Building blocks of IMAP responses: values in, wire bytes out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from govmail.imap.proto.mutf7 import encode_mailbox

# Longer strings go as literals: some clients cap the length of a quoted string.
_MAX_QUOTED = 1024
_ASTRING_ATOM = re.compile(r'[^(){ %*"\\\x00-\x20\x7f-\U0010ffff]+')
_NEEDS_LITERAL = re.compile(rb"[\x00\r\n]")
_LINE_BREAKS = re.compile(r"[\r\n]+")
# Written out rather than strftime("%b"), which follows the locale.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def astring(value: str, *, utf8: bool = False) -> bytes:
    """An atom when ``value`` is one (and not ``NIL``, which readers would take for
    nothing), else a quoted string or literal."""
    if _ASTRING_ATOM.fullmatch(value) and value.upper() != "NIL":
        return value.encode("ascii")
    return quoted_or_literal(value, utf8=utf8)


def quoted_or_literal(value: str | bytes, *, utf8: bool = False) -> bytes:
    """A quoted string when ``value`` fits in one (short, no CR/LF/NUL, ASCII unless the
    client accepts UTF-8), else a literal ``{n}\\r\\n...``."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) <= _MAX_QUOTED and not _NEEDS_LITERAL.search(data) and _quotable(data, utf8):
        if b"\\" in data or b'"' in data:
            data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + data + b'"'
    return b"{%d}\r\n" % len(data) + data


def _quotable(data: bytes, utf8: bool) -> bool:
    if data.isascii():
        return True
    if not utf8:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def nstring(value: str | bytes | None, *, utf8: bool = False) -> bytes:
    """``NIL`` for None, else a quoted string or literal."""
    return b"NIL" if value is None else quoted_or_literal(value, utf8=utf8)


def mailbox(name: str, utf8: bool) -> bytes:
    """A mailbox name as the client reads it: modified UTF-7 unless it enabled
    UTF8=ACCEPT."""
    return astring(name if utf8 else encode_mailbox(name), utf8=utf8)


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen $Label1)``."""
    return b"(" + " ".join(flags).encode("utf-8") + b")"


def date_time(moment: datetime) -> bytes:
    """``"28-Nov-2026 14:25:31 +0000"`` (a naive ``moment`` is taken as UTC)."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    text = (
        f'"{moment.day:02d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} '
        f'{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {sign}{hours:02d}{minutes:02d}"'
    )
    return text.encode("ascii")


def sequence_set(numbers: Iterable[int]) -> bytes:
    """Numbers as a compact sequence set: ``1:3,5,7:9`` (sorted, duplicates dropped;
    ``b""`` for none)."""
    ordered = sorted(set(numbers))
    if not ordered:
        return b""
    parts: list[str] = []
    start = previous = ordered[0]
    for number in ordered[1:]:
        if number != previous + 1:
            parts.append(f"{start}:{previous}" if start != previous else str(start))
            start = number
        previous = number
    parts.append(f"{start}:{previous}" if start != previous else str(start))
    return ",".join(parts).encode("ascii")


def _one_line(text: str) -> str:
    # Text may quote client input (a mailbox name); a line break would forge a response.
    return _LINE_BREAKS.sub(" ", text) if "\r" in text or "\n" in text else text


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """``<tag> <status> [<code>] <text>\\r\\n``."""
    coded = f"[{code}] " if code else ""
    return f"{tag} {status} {coded}{_one_line(text)}\r\n".encode()


def untagged(text: str | bytes) -> bytes:
    """``* <text>\\r\\n``. ``str`` is free text (line breaks become spaces); ``bytes`` are
    sent as they are, so they may hold literals built with ``quoted_or_literal``."""
    text_bytes = _one_line(text).encode("utf-8") if isinstance(text, str) else text
    return b"* " + text_bytes + b"\r\n"


def continuation(text: str = "") -> bytes:
    """``+ <text>\\r\\n``: go on sending (a literal, an AUTHENTICATE response, DONE)."""
    return f"+ {_one_line(text)}\r\n".encode()
