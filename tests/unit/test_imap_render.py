"""Unit tests for govmail.imap.proto.render: FETCH data byte for byte as Dovecot 2.3 sends it."""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govmail.core.mime import analyze_message
from govmail.imap.proto.render import (
    binary_literal8,
    binary_section,
    body_structure,
    envelope,
    partial,
    section_bytes,
)

# dovecot.json holds Dovecot 2.3.19's replies (the reference stack) to one FETCH item at a
# time for every message of the corpus in data/imap_render/record.py, which APPENDed them;
# re-record with `.venv/bin/python tests/unit/data/imap_render/record.py`.
DATA = Path(__file__).parent / "data" / "imap_render" / "dovecot.json"


def _bytes(value: Any) -> bytes:
    if isinstance(value, dict):
        return base64.b64decode(value["base64"])
    return str(value).encode()


# Items we do not compare: not valid RFC 3501/3516 syntax, which our parser refuses (BAD)
# where Dovecot answers anyway: part number 0, and BINARY[TEXT].
UNSUPPORTED_ITEMS = {"BODY[0]", "BINARY[TEXT]", "BINARY.SIZE[TEXT]"}


@cache
def recorded() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return loaded


def cases(pattern: str) -> list[Any]:
    """The recorded (message, item, reply) whose item matches the regular expression."""
    return [
        pytest.param(name, item, value, id=f"{name}:{item}")
        for name, entry in recorded().items()
        for item, value in entry["fetch"].items()
        if re.match(pattern, item) and item not in UNSUPPORTED_ITEMS
    ]


@cache
def message(name: str) -> tuple[bytes, dict[str, Any], list[Any]]:
    raw = _bytes(recorded()[name]["raw"])
    summary = analyze_message(raw)
    return raw, summary.structure, summary.envelope


# --- IMAP values, to compare what differs only in quoting ---------------------------------

_TOKEN = re.compile(rb'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|~?\{(\d+)\}\r\n|([^\s()]+))', re.S)


def imap_value(data: bytes) -> Any:
    """Parse an IMAP value (lists, NIL, quoted strings, literals, atoms) into Python."""
    stack: list[list[Any]] = [[]]
    pos = 0
    while pos < len(data):
        match = _TOKEN.match(data, pos)
        if match is None:
            break
        pos = match.end()
        if match[1]:
            stack.append([])
        elif match[2]:
            done = stack.pop()
            stack[-1].append(done)
        elif match[3] is not None:
            stack[-1].append(re.sub(rb"\\(.)", rb"\1", match[3]))
        elif match[4] is not None:
            size = int(match[4])
            stack[-1].append(data[pos : pos + size])
            pos += size
        else:
            stack[-1].append(None if match[5] == b"NIL" else match[5])
    return stack[0]


def literal(value: bytes) -> tuple[bytes, bool]:
    """The content of a recorded literal and whether it was a literal8 (~{n})."""
    match = re.match(rb"(~?)\{(\d+)\}\r\n", value)
    if match is None:
        raise AssertionError(f"not a literal: {value[:40]!r}")
    content = value[match.end() :]
    assert len(content) == int(match[2])
    return content, bool(match[1])


# --- Where we differ from Dovecot, and why ------------------------------------------------

# Dovecot sends a subject or name as a literal when its header text was folded or had a tab
# or a run of blanks, which its cleaning removes; core.mime stores only the cleaned string
# (MessageSummary.envelope), so we quote it. Clients read the same string either way.
SAME_VALUE_OTHER_QUOTING = {
    ("quoting_limits", "ENVELOPE"),
    ("long_subject", "ENVELOPE"),
}

# core.mime reads "Content-Type: text" (no subtype) as text/plain, as RFC 2045 §5.2 says
# for an invalid type (see test_mime); Dovecot shows ("text" "" ...).
NO_SUBTYPE = {
    ("no_subtype", "BODYSTRUCTURE"): b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1'
    b" NIL NIL NIL NIL)",
    ("no_subtype", "BODY"): b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)',
}

# BINARY where Dovecot refuses and we decode, each with the reason.
BINARY_DIFFERENCES = {
    # Dovecot answers NO [PARSE] for quoted-printable with "=ZZ" or a lone "=4" and for
    # base64 with characters outside the alphabet. RFC 2045 (§6.7 note 2, §6.8) tells
    # decoders to keep such "=" sequences and to skip such characters; an attachment that
    # opens serves the reader better than an error.
    ("binary_parts", "2"): "a=b ét\u00e9soft\r\ntrailing bad=ZZ=4 end".encode(),
    ("binary_parts", "5"): b"hello world",
    # A folded "Content-Transfer-Encoding:\r\n quoted-printable" is quoted-printable to
    # Dovecot's BODYSTRUCTURE but unknown to its BINARY; we decode it, as BODYSTRUCTURE says.
    ("binary_cte_first", "2"): b"a=",
    ("binary_cte_first", ""): None,  # the whole message, with that part decoded
}


# --- ENVELOPE, BODYSTRUCTURE, BODY ----------------------------------------------------------


@pytest.mark.parametrize("name, item, value", cases("ENVELOPE$"))
def test_envelope_matches_dovecot(name: str, item: str, value: Any) -> None:
    ours = envelope(message(name)[2])
    if (name, item) in SAME_VALUE_OTHER_QUOTING:
        assert ours != _bytes(value)
        assert imap_value(ours) == imap_value(_bytes(value))
    else:
        assert ours == _bytes(value)


@pytest.mark.parametrize("name, item, value", cases("BODY(STRUCTURE)?$"))
def test_body_structure_matches_dovecot(name: str, item: str, value: Any) -> None:
    ours = body_structure(message(name)[1], extensible=item == "BODYSTRUCTURE")
    assert ours == NO_SUBTYPE.get((name, item), _bytes(value))


@pytest.mark.parametrize("name, item, value", cases(r"RFC822\.SIZE$"))
def test_size_is_the_raw_length(name: str, item: str, value: Any) -> None:
    assert str(len(message(name)[0])).encode() == _bytes(value)


# --- BODY[section]<partial> -----------------------------------------------------------------

_ITEM = re.compile(r"(BODY|BINARY|BINARY\.SIZE)\[([^\]]*)\](?:<(\d+)\.(\d+)>)?")


def parse_item(item: str) -> tuple[str, tuple[int, ...], str | None, tuple[str, ...], Any]:
    match = _ITEM.fullmatch(item)
    assert match is not None, item
    spec, fields = match[2], ()
    if " (" in spec:
        spec, names = spec.split(" (", 1)
        fields = tuple(names.rstrip(")").split())
    numbers: list[int] = []
    words = spec.split(".") if spec else []
    while words and words[0].isdigit():
        numbers.append(int(words.pop(0)))
    text = ".".join(words) or None
    span = (int(match[3]), int(match[4])) if match[3] else None
    return match[1], tuple(numbers), text, fields, span


@pytest.mark.parametrize("name, item, value", cases(r"BODY\["))
def test_sections_match_dovecot(name: str, item: str, value: Any) -> None:
    raw, structure, _ = message(name)
    _, part, text, fields, span = parse_item(item)
    data = section_bytes(raw, structure, part, text, fields)
    if span is not None:
        data = partial(data, *span)
    assert data == literal(_bytes(value))[0]


# --- BINARY and BINARY.SIZE -----------------------------------------------------------------


@pytest.mark.parametrize("name, item, value", cases(r"BINARY\["))
def test_binary_matches_dovecot(name: str, item: str, value: Any) -> None:
    raw, structure, _ = message(name)
    _, part, text, _, span = parse_item(item)
    assert text is None
    data = binary_section(raw, structure, part)
    difference = BINARY_DIFFERENCES.get((name, ".".join(map(str, part))), ...)
    if difference is not ...:
        assert isinstance(value, dict) and "NO [" in value["tagged"]  # Dovecot refused
        assert data is not None
        if difference is not None:
            assert (partial(data, *span) if span else data) == (
                partial(difference, *span) if span else difference
            )
        return
    if isinstance(value, dict) and "tagged" in value:
        assert "NO [UNKNOWN-CTE]" in value["tagged"]
        assert data is None
        return
    assert data is not None
    expected, literal8 = literal(_bytes(value))
    assert (partial(data, *span) if span else data) == expected
    assert binary_literal8(structure, part) == literal8


# Dovecot's BINARY.SIZE of a multipart or message is not the length of what BINARY sends
# (239 octets sent, 227 reported), and 0 for an encoded message/rfc822; it refuses it for
# every part of a message whose BINARY[] it refuses. Ours is always len(BINARY[part]),
# which is what RFC 3516 defines.
BINARY_SIZE_DIFFERENCES = {
    ("mixed_vietnamese", "1"),
    ("rfc822_base64", ""),
    ("rfc822_base64", "1"),
}


@pytest.mark.parametrize("name, item, value", cases(r"BINARY\.SIZE\["))
def test_binary_size_is_the_binary_length(name: str, item: str, value: Any) -> None:
    raw, structure, _ = message(name)
    _, part, _, _, _ = parse_item(item)
    data = binary_section(raw, structure, part)
    number = ".".join(map(str, part))
    if isinstance(value, dict):
        assert "tagged" in recorded()[name]["fetch"]["BINARY[]"]  # the whole message too
        return
    assert data is not None
    if (name, number) in BINARY_SIZE_DIFFERENCES:
        assert len(data) != int(value)
    else:
        assert len(data) == int(value)


# --- Direct cases -------------------------------------------------------------------------


def test_envelope_strings_quoted_or_literal() -> None:
    env = [
        "Mon, 3 Jun 2024",
        'say "hi"',  # subject: any quote makes a literal (for humans)
        [["Trần", None, "a", "b.c"]],
        [[None, None, "Team", None], [None, None, "m", "x.y"], [None, None, None, None]],
        None,
        None,
        None,
        None,
        '<a"b"c"d"@x>',  # four quoted-specials: still quoted
        '<a"b"c"d"e"@x>',  # five: a literal
    ]
    assert envelope(env) == (
        b'("Mon, 3 Jun 2024" {8}\r\nsay "hi" (({6}\r\nTr\xe1\xba\xa7n NIL "a" "b.c")) '
        b'((NIL NIL "Team" NIL)(NIL NIL "m" "x.y")(NIL NIL NIL NIL)) NIL NIL NIL NIL '
        b'"<a\\"b\\"c\\"d\\"@x>" {14}\r\n<a"b"c"d"e"@x>)'
    )


def test_message_global_is_a_plain_part() -> None:
    raw = b"From: a@b.c\r\nContent-Type: message/global\r\n\r\nFrom: x@y.z\r\n\r\nhi\r\n"
    structure = analyze_message(raw).structure
    assert body_structure(structure, extensible=False) == (
        b'("message" "global" NIL NIL NIL "7bit" 19)'
    )


def test_header_fields_keep_a_header_cut_short() -> None:
    raw = (
        b"From: a@b.c\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n--Z\r\n"
        b"Content-Type: text/plain\r\n--Z--\r\n"
    )
    structure = analyze_message(raw).structure
    assert section_bytes(raw, structure, (1,), "MIME") == b"Content-Type: text/plain"
    assert section_bytes(raw, structure, (), "HEADER.FIELDS", ("FROM",)) == (b"From: a@b.c\r\n\r\n")


def test_binary_of_a_part_cut_short_and_of_an_unknown_encoding() -> None:
    raw = (
        b"From: a@b.c\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n"
        b"--Z\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--Z\r\n"
        b"Content-Transfer-Encoding: x-uue\r\n\r\nx\r\n--Z--\r\n"
    )
    structure = analyze_message(raw).structure
    assert binary_section(raw, structure, (1,)) == b"hi"
    assert binary_literal8(structure, (1,))
    assert binary_section(raw, structure, (2,)) is None
    assert binary_section(raw, structure, ()) is None  # Dovecot: NO [UNKNOWN-CTE] as well
    assert binary_section(raw, structure, (3,)) == b""
    assert not binary_literal8(structure, (3,))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_message_renders(body: bytes) -> None:
    raw = (
        b"From: a@b.c\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n"
        b"--Z\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + body
        + b"\r\n--Z\r\nContent-Type: message/rfc822\r\n\r\n"
        + body
        + b"\r\n--Z\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        + body
    )
    summary = analyze_message(raw)
    envelope(summary.envelope)
    for extensible in (True, False):
        imap_value(body_structure(summary.structure, extensible=extensible))
    for part in ((), (1,), (2,), (2, 1), (3,), (4,)):
        for text in (None, "HEADER", "TEXT", "MIME", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            section_bytes(raw, summary.structure, part, text, ("FROM",))
        binary_section(raw, summary.structure, part)
