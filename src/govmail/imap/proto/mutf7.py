"""Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3): ``Thư`` ↔ ``Th&AbA-``."""

from __future__ import annotations

import base64
import binascii
import re

_RUNS = re.compile(r"[\x20-\x7e]+|[^\x20-\x7e]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_SHIFT = re.compile(r"&([A-Za-z0-9+,]*)-")
_DIRECT_OR_NUL = re.compile(r"[\x00\x20-\x7e]")


def encode_mailbox(name: str) -> str:
    """The wire form of ``name``: printable ASCII as is (``&`` as ``&-``), everything else
    as base64 of UTF-16BE between ``&`` and ``-``. Raises ValueError on lone surrogates."""
    out: list[str] = []
    for match in _RUNS.finditer(name):
        run = match.group()
        if "\x20" <= run[0] <= "\x7e":
            out.append(run.replace("&", "&-"))
        else:
            encoded = base64.b64encode(run.encode("utf-16-be")).rstrip(b"=")
            out.append("&" + encoded.replace(b"/", b",").decode("ascii") + "-")
    return "".join(out)


def decode_mailbox(wire: str) -> str:
    """The name that ``wire`` encodes. Only the canonical encoding is accepted (the one
    ``encode_mailbox`` produces), so one name has one wire form; raises ValueError
    otherwise."""
    if not _PRINTABLE.fullmatch(wire):
        raise ValueError("mailbox name has characters outside printable ASCII")
    if "&" not in wire:
        return wire
    out: list[str] = []
    pos = 0
    previous_run_end = -1
    while (amp := wire.find("&", pos)) >= 0:
        out.append(wire[pos:amp])
        match = _SHIFT.match(wire, amp)
        if match is None:
            raise ValueError("unterminated '&' in modified UTF-7")
        if match.group(1):
            # Two adjacent runs must have been written as one.
            if amp == previous_run_end:
                raise ValueError("adjacent base64 runs in modified UTF-7")
            out.append(_decode_run(match.group(1)))
            previous_run_end = match.end()
        else:
            out.append("&")
        pos = match.end()
    out.append(wire[pos:])
    return "".join(out)


def _decode_run(run: str) -> str:
    b64 = run.replace(",", "/")
    try:
        raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("invalid base64 in modified UTF-7") from exc
    # Re-encoding catches non-zero padding bits and runs of the wrong length.
    if base64.b64encode(raw).rstrip(b"=") != b64.encode("ascii") or len(raw) % 2:
        raise ValueError("non-canonical base64 in modified UTF-7")
    text = raw.decode("utf-16-be")  # UnicodeDecodeError (a ValueError) on lone surrogates
    if _DIRECT_OR_NUL.search(text):
        raise ValueError("printable ASCII or NUL encoded in modified UTF-7")
    return text
