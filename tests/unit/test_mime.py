"""Unit tests for govmail.core.mime: envelope, body structure and offsets, search text, probes."""

from __future__ import annotations

import base64
import json
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govmail.core import mime
from govmail.core.mime import (
    SEARCH_TEXT_LIMIT,
    MessageSummary,
    analyze_message,
    has_header,
    header_addresses,
    header_end,
)
from govmail.core.vietnamese import fold

# --- helpers --------------------------------------------------------------------------------


def _q(value: Any) -> str:
    """Render an IMAP nstring/number as Dovecot does for ASCII values (always quoted here)."""
    if value is None:
        return "NIL"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list(values: list[Any] | None, render: Any = _q) -> str:
    return "NIL" if not values else "(" + " ".join(render(v) for v in values) + ")"


def _params(params: list[list[str]]) -> str:
    return _list([item for pair in params for item in pair])


def _disposition(disposition: list[Any] | None) -> str:
    return "NIL" if disposition is None else f"({_q(disposition[0])} {_params(disposition[1])})"


def _addresses(addresses: list[list[str | None]] | None) -> str:
    return "NIL" if addresses is None else "(" + "".join(_list(a) for a in addresses) + ")"


def envelope_text(envelope: list[Any]) -> str:
    """The IMAP ENVELOPE that a server would send for ``envelope``."""
    fields = [_q(envelope[0]), _q(envelope[1])]
    fields += [_addresses(a) for a in envelope[2:8]]
    return "(" + " ".join([*fields, _q(envelope[8]), _q(envelope[9])]) + ")"


def bodystructure(node: dict[str, Any]) -> str:
    """The IMAP BODYSTRUCTURE that a server would send for ``node``."""
    extension = [_disposition(node["disposition"]), _list(node["language"]), _q(node["location"])]
    if node["type"] == "multipart":
        children = "".join(bodystructure(child) for child in node["parts"])
        return (
            f"({children} {' '.join([_q(node['subtype']), _params(node['params']), *extension])})"
        )
    fields = [_q(node[key]) for key in ("type", "subtype")] + [_params(node["params"])]
    fields += [_q(node[key]) for key in ("id", "description", "encoding", "size")]
    if "message" in node:
        message = node["message"]
        fields += [envelope_text(message["envelope"]), bodystructure(message["structure"])]
        fields.append(_q(node["lines"]))
    elif node["type"] == "text":
        fields.append(_q(node["lines"]))
    return "(" + " ".join([*fields, _q(node["md5"]), *extension]) + ")"


def section(raw: bytes, root: dict[str, Any], spec: str) -> bytes:
    """Serve BODY[spec] by slicing ``raw`` with the offsets, as the IMAP server will."""
    node, is_message = root, True  # a message (top or embedded) or a part of one
    names = spec.split(".") if spec else []
    for name in (n for n in names if n.isdigit()):
        if not is_message and "message" in node:
            node, is_message = node["message"]["structure"], True
        if node["type"] == "multipart":
            node = node["parts"][int(name) - 1]
        is_message = False
    suffix = names[-1] if names and not names[-1].isdigit() else ""
    if suffix in ("HEADER", "TEXT"):
        message = node if is_message else node["message"]["structure"]
        if suffix == "HEADER":
            return raw[message["header_offset"] : message["body_offset"]]
        return raw[message["body_offset"] : message["end_offset"]]
    if suffix == "MIME":
        return raw[node["header_offset"] : node["body_offset"]]
    return raw if is_message else raw[node["body_offset"] : node["end_offset"]]


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("parts", ()):
        yield from nodes(child)
    if "message" in node:
        yield from nodes(node["message"]["structure"])


def assert_well_formed(raw: bytes, summary: MessageSummary) -> None:
    """Offsets in bounds and nested, sizes and lines as IMAP reports them, JSON-safe."""
    # Strict UTF-8 (no lone surrogates): what SQLite and PostgreSQL accept.
    texts = [summary.search_text, summary.subject, summary.from_display, summary.message_id or ""]
    dumped = json.dumps([summary.envelope, summary.structure, *texts], ensure_ascii=False)
    assert "\x00" not in dumped and "\\u0000" not in dumped  # PostgreSQL refuses NUL
    dumped.encode()
    root = summary.structure
    assert (root["header_offset"], root["end_offset"]) == (0, len(raw))
    assert root["body_offset"] == summary.header_size == header_end(raw)
    crlf_only = raw.count(b"\n") == raw.count(b"\r\n")
    _assert_node(raw, root, 0, len(raw), crlf_only)
    assert len(summary.search_text.encode()) <= SEARCH_TEXT_LIMIT


def _assert_node(raw: bytes, node: dict[str, Any], low: int, high: int, crlf_only: bool) -> None:
    start, body, end = node["header_offset"], node["body_offset"], node["end_offset"]
    assert low <= start <= body <= end <= high
    assert node["lines"] == raw.count(b"\n", body, end)
    if crlf_only:
        assert node["size"] == end - body
    assert node["type"] == node["type"].lower() and node["encoding"] == node["encoding"].lower()
    if node["type"] == "multipart":
        assert node["parts"]
        previous = body
        for child in node["parts"]:
            assert child["header_offset"] >= previous
            _assert_node(raw, child, body, end, crlf_only)
            previous = child["end_offset"]
    if "message" in node:
        inner = node["message"]["structure"]
        assert (inner["header_offset"], inner["end_offset"]) == (body, end)
        assert len(node["message"]["envelope"]) == 10
        _assert_node(raw, inner, body, end, crlf_only)


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


# --- Dovecot-derived cases ------------------------------------------------------------------
# Replies of Dovecot 2.3.19 (the reference stack) to FETCH (ENVELOPE BODYSTRUCTURE) and
# BODY[section] after APPENDing these messages; literals are written as quoted strings.

SIMPLE = crlf("From: a@b.c\nSubject: hi\n\nhello\n")
ALTERNATIVE = crlf(
    'From: a@b.c\nTo: x@y.z, "Q" <q@r.s>\nCc: undisclosed-recipients:;\n'
    "Subject: =?UTF-8?B?QsOhbyBjw6FvIHR14bqnbg==?=\nDate: Mon, 3 Jun 2024 10:00:00 +0700\n"
    "Message-ID: <abc@b.c>\nMIME-Version: 1.0\n"
    'Content-Type: multipart/alternative; boundary="XX"\n\npreamble\n--XX\n'
    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
    "B=C3=A1o c=C3=A1o\n--XX\nContent-Type: text/html; charset=utf-8\n\n<p>B&aacute;o</p>\n"
    "--XX--\nepilogue\n"
)
ATTACHMENT = crlf(
    "From: a@b.c\nContent-Type: multipart/mixed; boundary=ZZ\n\n--ZZ\n"
    "Content-Type: text/plain; charset=utf-8\n\nxin chao\n--ZZ\n"
    'Content-Type: application/pdf; name="=?UTF-8?B?QsOhbyBjw6Fv?=.pdf"\n'
    "Content-Disposition: attachment;\n filename*=UTF-8''B%C3%A1o%20c%C3%A1o%20tu%E1%BA%A7n.pdf\n"
    "Content-Transfer-Encoding: base64\nContent-ID: <x@y>\nContent-Description: Bao cao\n"
    "Content-Language: vi, en\nContent-Location: http://x/y\nContent-MD5: abc\n\n"
    "JVBERi0xLjQK\nJVBERi0xLjQK\n--ZZ--\n"
)
RFC822 = crlf(
    "From: a@b.c\nContent-Type: multipart/mixed; boundary=ZZ\n\n--ZZ\n\nsee attached\n--ZZ\n"
    "Content-Type: message/rfc822\n\nFrom: inner@x.y\nSubject: inner\n"
    "Content-Type: multipart/alternative; boundary=YY\n\n--YY\n\nt\n--YY\n"
    "Content-Type: text/html\n\n<b>h</b>\n--YY--\n\n--ZZ--\n"
)
EPILOGUE = crlf(
    "From: a@b.c\nContent-Type: multipart/mixed; boundary=A\n\n--A\n"
    "Content-Type: multipart/alternative; boundary=B\n\n--B\n\nplain\n--B--\nepi\n--A\n"
    "X: y\n\n--A\nContent-Type: message/rfc822\n\nSubject: in\n"
    "Content-Type: multipart/mixed; boundary=C\n\n--C\n\nc\n--C--\n--A--\n"
)
H = "From: a@b.c\n"
TEXT = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit"'

DOVECOT_BODYSTRUCTURE = {
    "simple": (SIMPLE, f"{TEXT} 7 1 NIL NIL NIL NIL)"),
    "no eol": (crlf("From: a@b.c\n\n") + b"hello", f"{TEXT} 5 0 NIL NIL NIL NIL)"),
    "no blank line": (crlf("From: a@b.c\nSubject: hi\n"), f"{TEXT} 0 0 NIL NIL NIL NIL)"),
    "alternative": (
        ALTERNATIVE,
        '(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 17 0 NIL NIL NIL NIL)'
        '("text" "html" ("charset" "utf-8") NIL NIL "7bit" 17 0 NIL NIL NIL NIL)'
        ' "alternative" ("boundary" "XX") NIL NIL NIL)',
    ),
    "attachment with RFC 2231 and RFC 2047 names": (
        ATTACHMENT,
        '(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 8 0 NIL NIL NIL NIL)'
        '("application" "pdf" ("name" "=?UTF-8?B?QsOhbyBjw6Fv?=.pdf") "<x@y>" "Bao cao" "base64"'
        ' 26 "abc" ("attachment" ("filename*" "UTF-8\'\'B%C3%A1o%20c%C3%A1o%20tu%E1%BA%A7n.pdf"))'
        ' ("vi" "en") "http://x/y") "mixed" ("boundary" "ZZ") NIL NIL NIL)',
    ),
    "message/rfc822": (
        RFC822,
        f'({TEXT} 12 0 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" 147 '
        '(NIL "inner" ((NIL NIL "inner" "x.y")) ((NIL NIL "inner" "x.y")) '
        '((NIL NIL "inner" "x.y")) NIL NIL NIL NIL NIL) '
        f'({TEXT} 1 0 NIL NIL NIL NIL)("text" "html" ("charset" "us-ascii") NIL NIL "7bit"'
        ' 8 0 NIL NIL NIL NIL) "alternative" ("boundary" "YY") NIL NIL NIL) 12 NIL NIL NIL NIL)'
        ' "mixed" ("boundary" "ZZ") NIL NIL NIL)',
    ),
    "message/rfc822 in base64 is not looked into": (
        crlf(H + "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n")
        + b"RnJvbTogYUBiLmMNCg0KeA0K\r\n",
        '("message" "rfc822" NIL NIL NIL "base64" 26 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)'
        f" {TEXT} 0 0 NIL NIL NIL NIL) 1 NIL NIL NIL NIL)",
    ),
    "digest parts default to message/rfc822": (
        crlf(
            H + "Content-Type: multipart/digest; boundary=ZZ\n\n--ZZ\n\n"
            "From: d@e.f\nSubject: d1\n\nbody1\n--ZZ--\n"
        ),
        '(("message" "rfc822" NIL NIL NIL "7bit" 33 (NIL "d1" ((NIL NIL "d" "e.f")) '
        '((NIL NIL "d" "e.f")) ((NIL NIL "d" "e.f")) NIL NIL NIL NIL NIL) '
        f'{TEXT} 5 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL) "digest" ("boundary" "ZZ") NIL NIL NIL)',
    ),
    "boundary parameter missing: one empty part": (
        crlf(H + "Content-Type: multipart/mixed\n\n--XX\nhello\n--XX--\n"),
        f'({TEXT} 0 0 NIL NIL NIL NIL) "mixed" NIL NIL NIL NIL)',
    ),
    "boundary never appears: one empty part": (
        crlf(H + "Content-Type: multipart/mixed; boundary=ZZ\n\n--XX\nhello\n--XX--\n"),
        f'({TEXT} 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "ZZ") NIL NIL NIL)',
    ),
    "close delimiter missing": (
        crlf(
            H + "Content-Type: multipart/mixed; boundary=ZZ\n\n--ZZ\nContent-Type: text/plain\n"
            "\nhello\n--ZZ\n\nworld\n"
        ),
        f'({TEXT} 5 0 NIL NIL NIL NIL){TEXT} 7 1 NIL NIL NIL NIL) "mixed" ("boundary" "ZZ") NIL'
        " NIL NIL)",
    ),
    "boundaries with trailing white space": (
        crlf(
            H + "Content-Type: multipart/mixed; boundary=ZZ\n\n--ZZ   \n\nhello\n--ZZ \t\n\n"
            "world\n--ZZ--  \n"
        ),
        f'({TEXT} 5 0 NIL NIL NIL NIL){TEXT} 5 0 NIL NIL NIL NIL) "mixed" ("boundary" "ZZ") NIL'
        " NIL NIL)",
    ),
    "a boundary matches as a prefix": (
        crlf(
            H + "Content-Type: multipart/mixed; boundary=ZZ\n\n--ZZ\n\none\n--ZZZ\n\ntwo\n--ZZ--\n"
        ),
        f'({TEXT} 3 0 NIL NIL NIL NIL){TEXT} 3 0 NIL NIL NIL NIL) "mixed" ("boundary" "ZZ") NIL'
        " NIL NIL)",
    ),
    "nested boundary extends the outer one": (
        crlf(
            H + "Content-Type: multipart/mixed; boundary=A\n\n--A\n"
            "Content-Type: multipart/alternative; boundary=AB\n\n--AB\n\nplain\n--AB--\n--A--\n"
        ),
        f'(({TEXT} 5 0 NIL NIL NIL NIL) "alternative" ("boundary" "AB") NIL NIL NIL) "mixed"'
        ' ("boundary" "A") NIL NIL NIL)',
    ),
    "inner multipart left open by an outer boundary": (
        crlf(
            H + "Content-Type: multipart/mixed; boundary=A\n\n--A\n"
            "Content-Type: multipart/alternative; boundary=B\n\n--B\n\ninner\n--A\n\nsecond\n"
            "--A--\n"
        ),
        f'(({TEXT} 5 0 NIL NIL NIL NIL) "alternative" ("boundary" "B") NIL NIL NIL)'
        f'{TEXT} 6 0 NIL NIL NIL NIL) "mixed" ("boundary" "A") NIL NIL NIL)',
    ),
    "empty parts": (
        crlf(H + "Content-Type: multipart/mixed; boundary=ZZ\n\n--ZZ\n--ZZ\n\n--ZZ\n\n\n--ZZ--\n"),
        f"({TEXT} 0 0 NIL NIL NIL NIL){TEXT} 0 0 NIL NIL NIL NIL){TEXT} 0 0 NIL NIL NIL NIL)"
        ' "mixed" ("boundary" "ZZ") NIL NIL NIL)',
    ),
    "bare LF counted as CRLF": (
        b"From: a@b.c\nContent-Type: multipart/mixed; boundary=A\n\n--A\n\nhi\nthere\n--A--\n",
        f'({TEXT} 9 1 NIL NIL NIL NIL) "mixed" ("boundary" "A") NIL NIL NIL)',
    ),
    "text parameters keep their order, charset added last": (
        crlf(H + 'Content-Type: text/html; format=flowed; name="a \\"q\\" b"; x=1;\n\nx\n'),
        '("text" "html" ("format" "flowed" "name" "a \\"q\\" b" "x" "1" "charset" "us-ascii")'
        ' NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
    ),
    "RFC 2231 sections joined, still encoded": (
        crlf(
            H + 'Content-Type: text/plain\nContent-Disposition: attachment; filename*1="b";'
            ' filename*0="a"; filename*2*=%41\n\nx\n'
        ),
        f'{TEXT} 3 1 NIL ("attachment" ("filename*" "\'\'ab%41")) NIL NIL)',
    ),
    "first Content-Type counts, comments skipped": (
        crlf(H + "Content-Type: text/html (c)\nContent-Type: image/png\n\nx\n"),
        '("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)',
    ),
    "Content-* ignored in a message that is not MIME": (
        crlf(H + "Content-Transfer-Encoding: base64\nContent-ID: <x>\n\neA==\n"),
        f"{TEXT} 6 1 NIL NIL NIL NIL)",
    ),
    "invalid transfer encoding is 7bit": (
        crlf(H + "Content-Type: text/plain\nContent-Transfer-Encoding: x weird\n\nx\n"),
        f"{TEXT} 3 1 NIL NIL NIL NIL)",
    ),
}


@pytest.mark.parametrize("raw, expected", DOVECOT_BODYSTRUCTURE.values(), ids=DOVECOT_BODYSTRUCTURE)
def test_bodystructure_matches_dovecot(raw: bytes, expected: str) -> None:
    summary = analyze_message(raw)
    assert bodystructure(summary.structure) == expected
    assert_well_formed(raw, summary)


DOVECOT_SECTIONS = {
    "message/rfc822": (
        RFC822,
        {
            "1.MIME": b"\r\n",
            "1": b"see attached",
            "2.MIME": b"Content-Type: message/rfc822\r\n\r\n",
            "2.HEADER": b"From: inner@x.y\r\nSubject: inner\r\n"
            b"Content-Type: multipart/alternative; boundary=YY\r\n\r\n",
            "2.TEXT": b"--YY\r\n\r\nt\r\n--YY\r\nContent-Type: text/html\r\n\r\n"
            b"<b>h</b>\r\n--YY--\r\n",
            "2.1": b"t",
            "2.2.MIME": b"Content-Type: text/html\r\n\r\n",
            "2.2": b"<b>h</b>",
        },
    ),
    "epilogue and a header cut short": (
        EPILOGUE,
        {
            "1": b"--B\r\n\r\nplain\r\n--B--\r\nepi",
            "1.1": b"plain",
            "2.MIME": b"X: y\r\n",
            "2": b"",
            "3": b"Subject: in\r\nContent-Type: multipart/mixed; boundary=C\r\n\r\n"
            b"--C\r\n\r\nc\r\n--C--\r\n",
            "3.TEXT": b"--C\r\n\r\nc\r\n--C--\r\n",
            "3.1": b"c",
        },
    ),
    "missing boundary": (
        crlf(H + "Content-Type: multipart/mixed; boundary=ZZ\n\npre\n--XX\nhello\n--XX--\n"),
        {"1": b"", "1.MIME": b"", "TEXT": b"pre\r\n--XX\r\nhello\r\n--XX--\r\n"},
    ),
    "empty parts": (
        crlf(H + "Content-Type: multipart/mixed; boundary=ZZ\n\n--ZZ\n--ZZ\n\n--ZZ\n\n\n--ZZ--\n"),
        {"1.MIME": b"", "2.MIME": b"", "3.MIME": b"\r\n", "3": b""},
    ),
    "header ended by the close delimiter": (
        crlf(H + "Content-Type: multipart/mixed; boundary=ZZ\n\n--ZZ\nContent-Type: text/plain\n")
        + b"--ZZ--\r\n",
        {"1.MIME": b"Content-Type: text/plain", "1": b""},
    ),
    "encoded message/rfc822": (
        crlf(H + "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nRnJvbQ==\n"),
        {"1": b"RnJvbQ==\r\n", "1.HEADER": b"RnJvbQ==\r\n", "1.TEXT": b""},
    ),
    "simple": (SIMPLE, {"HEADER": crlf("From: a@b.c\nSubject: hi\n\n"), "1": b"hello\r\n"}),
}


@pytest.mark.parametrize("raw, expected", DOVECOT_SECTIONS.values(), ids=DOVECOT_SECTIONS)
def test_sections_slice_like_dovecot(raw: bytes, expected: dict[str, bytes]) -> None:
    summary = analyze_message(raw)
    assert {spec: section(raw, summary.structure, spec) for spec in expected} == expected


def test_nested_offsets_slice_exactly_the_parts() -> None:
    part_html = b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Xin ch\xc3\xa0o</p>"
    part_png = b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo="
    inner = (
        b"--in\r\nContent-Type: text/plain\r\n\r\nXin chao\r\n--in\r\n" + part_html + b"\r\n--in--"
    )
    raw = (
        b"From: a@b.c\r\nContent-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\n"
        b"Content-Type: multipart/alternative; boundary=in\r\n\r\n"
        + inner
        + b"\r\n--out\r\n"
        + part_png
        + b"\r\n--out--\r\n"
    )
    summary = analyze_message(raw)
    root = summary.structure
    assert section(raw, root, "1") == inner + b"\r\n"  # Dovecot: the close line's end is in
    assert section(raw, root, "1.1") == b"Xin chao"
    assert section(raw, root, "1.2.MIME") + section(raw, root, "1.2") == part_html
    assert section(raw, root, "2.MIME") + section(raw, root, "2") == part_png
    assert [p["subtype"] for p in root["parts"][0]["parts"]] == ["plain", "html"]
    assert_well_formed(raw, summary)


# --- envelope -------------------------------------------------------------------------------


def test_envelope_of_a_simple_message() -> None:
    assert envelope_text(analyze_message(SIMPLE).envelope) == (
        '(NIL "hi" ((NIL NIL "a" "b.c")) ((NIL NIL "a" "b.c")) ((NIL NIL "a" "b.c"))'
        " NIL NIL NIL NIL NIL)"
    )


def test_envelope_groups_and_raw_strings() -> None:
    envelope = analyze_message(ALTERNATIVE).envelope
    assert envelope_text(envelope) == (
        '("Mon, 3 Jun 2024 10:00:00 +0700" "=?UTF-8?B?QsOhbyBjw6FvIHR14bqnbg==?="'
        ' ((NIL NIL "a" "b.c")) ((NIL NIL "a" "b.c")) ((NIL NIL "a" "b.c"))'
        ' ((NIL NIL "x" "y.z")("Q" NIL "q" "r.s"))'
        ' ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL "<abc@b.c>")'
    )


def test_envelope_matches_dovecot_on_odd_headers() -> None:
    raw = crlf(
        "Date:  Mon, 3 Jun 2024\n 10:00:00 +0700 \nFrom: a@b.c, <c@d.e>\nSender: s@t.u\n"
        'Reply-To: \nTo: "Q\\"x" <@r1,@r2:q@r.s>\nIn-Reply-To: <x@y>\nMessage-ID:   <abc@b.c>  \n'
        'Bcc: bare\nCc: Friends: x@y.z, "B" <b@c.d>;, solo@e.f\nSubject: a\n  folded\n\tagain\n'
        "\nx\n"
    )
    assert envelope_text(analyze_message(raw).envelope) == (
        '("Mon, 3 Jun 2024 10:00:00 +0700 " "a folded again"'
        ' ((NIL NIL "a" "b.c")(NIL NIL "c" "d.e")) ((NIL NIL "s" "t.u"))'
        ' ((NIL NIL "a" "b.c")(NIL NIL "c" "d.e")) (("Q\\"x" "@r1,@r2" "q" "r.s"))'
        ' ((NIL NIL "Friends" NIL)(NIL NIL "x" "y.z")("B" NIL "b" "c.d")(NIL NIL NIL NIL)'
        '(NIL NIL "solo" "e.f")) ((NIL NIL "bare" "MISSING_DOMAIN")) "<x@y>" "<abc@b.c>  ")'
    )


def test_envelope_addresses_like_dovecot() -> None:
    raw = crlf(
        'From: a@b.c (Comment Name)\nTo: John Smith <j@s.t> (cmt), "x y" <>, '
        "=?utf-8?B?VHLhuqdu?= <t@u.v>\nCc: a@b.c (c1) (c2), G: ;, x@[1.2.3.4]\n"
        'Bcc: "john doe"@q.r, "  A   B " <a@b.c>\n\nx\n'
    )
    envelope = analyze_message(raw).envelope
    assert envelope[2] == [["Comment Name", None, "a", "b.c"]]
    assert envelope[5] == [
        ["John Smith", None, "j", "s.t"],
        ["x y", None, "MISSING_MAILBOX", "MISSING_DOMAIN"],
        ["=?utf-8?B?VHLhuqdu?=", None, "t", "u.v"],  # names stay encoded, as IMAP wants
    ]
    assert envelope[6] == [
        ["c2", None, "a", "b.c"],
        [None, None, "G", None],
        [None, None, None, None],
        [None, None, "x", "[1.2.3.4]"],
    ]
    assert envelope[7] == [[None, None, "john doe", "q.r"], ["A B", None, "a", "b.c"]]


def test_envelope_when_headers_are_missing_or_repeated() -> None:
    assert analyze_message(b"\r\nbody").envelope == [None] * 10
    empty = analyze_message(crlf("From: \nTo: \nSubject:\nDate: \n\nx\n")).envelope
    assert empty == ["", "", None, None, None, None, None, None, None, None]
    repeated = crlf(
        "Subject: one\nSubject: two\nDate: d1\nDate: d2\nMessage-ID: <1>\nMessage-ID: <2>\n"
        "From: a@b.c\nFrom: d@e.f\n\nx\n"
    )
    envelope = analyze_message(repeated).envelope
    assert envelope[:2] == ["d2", "two"] and envelope[9] == "<2>"  # the last one wins
    assert envelope[2] == [[None, None, "a", "b.c"], [None, None, "d", "e.f"]]  # all count


def test_envelope_of_an_address_field_with_only_a_comment_is_nil() -> None:
    # Dovecot 2.3.19: "Cc: (only comment)" gives NIL, not a MISSING_MAILBOX address.
    raw = crlf("From: a@b.c\nCc: (only comment)\nBcc: (c), x@y.z\n\nx\n")
    envelope = analyze_message(raw).envelope
    assert envelope[6] is None and envelope[7] == [[None, None, "x", "y.z"]]


def test_content_fields_keep_their_spelling_for_bodystructure() -> None:
    # Dovecot's BODYSTRUCTURE shows ("TEXT" "Plain" ("CHARSET" "UTF-8" "Format" "Flowed")
    # NIL NIL "8BIT" ... ("INLINE" NIL) ...); govmail compares the lower-case fields.
    raw = crlf(
        "From: a@b.c\nMIME-Version: 1.0\n"
        'Content-Type: TEXT/Plain; CHARSET="UTF-8"; Format=Flowed; Name*0=a; name*1=b\n'
        "Content-Transfer-Encoding: 8BIT\nContent-Disposition: INLINE\n\nx\n"
    )
    node = analyze_message(raw).structure
    assert (node["type"], node["subtype"], node["encoding"]) == ("text", "plain", "8bit")
    assert node["as_written"] == {
        "type": "TEXT",
        "subtype": "Plain",
        "encoding": "8BIT",
        "disposition": "INLINE",
    }
    assert node["params"] == [["CHARSET", "UTF-8"], ["Format", "Flowed"], ["Name", "ab"]]
    assert node["disposition"] == ["inline", []]
    assert "as_written" not in analyze_message(SIMPLE).structure


def test_envelope_keeps_tabs_of_strings_but_not_of_the_subject() -> None:
    raw = crlf("Message-ID: <a\n\tb@c>\nDate:\n Mon\nSubject:  \t lead\t\ttab  \n\nx\n")
    envelope = analyze_message(raw).envelope
    assert (envelope[0], envelope[1], envelope[9]) == (" Mon", "lead tab", "<a\tb@c>")


def test_envelope_of_8bit_and_nul_headers() -> None:
    raw = "From: Nguyễn Văn A <a@b.c>\nSubject: Báo\x00cáo\n\nx\n".replace("\n", "\r\n")
    envelope = analyze_message(raw.encode()).envelope
    assert envelope[1] == "Báo\ufffdcáo"  # NUL as Dovecot shows it; PostgreSQL refuses NUL
    assert envelope[2] == [["Nguyễn Văn A", None, "a", "b.c"]]
    invalid = analyze_message(b"Subject: \xe1\xe2 x\r\n\r\n").envelope
    assert invalid[1] == "\ufffd\ufffd x"


# --- subject, display fields, date ----------------------------------------------------------

VIETNAMESE = "Báo cáo tuần"


@pytest.mark.parametrize(
    "header",
    [
        b"=?UTF-8?B?QsOhbyBjw6FvIHR14bqnbg==?=",
        b"=?utf-8?Q?B=C3=A1o_c=C3=A1o_tu=E1=BA=A7n?=",
        VIETNAMESE.encode(),
        unicodedata.normalize("NFD", VIETNAMESE).encode(),
        # A mailer split "á" between two words: the bytes are joined before decoding.
        b"=?UTF-8?B?"
        + base64.b64encode(VIETNAMESE.encode()[:2])
        + b"?=\r\n =?UTF-8?B?"
        + base64.b64encode(VIETNAMESE.encode()[2:])
        + b"?=",
        b"=?utf-8?q?B=C3=A1o?= =?utf-8?q?_c=C3=A1o?=   =?UTF-8*vi?Q?_tu=E1=BA=A7n?=",
        "Báo =?utf-8?q?c=C3=A1o?= tuần".encode(),
    ],
)
def test_vietnamese_subjects_are_decoded_and_nfc(header: bytes) -> None:
    summary = analyze_message(b"Subject: " + header + b"\r\n\r\n")
    assert summary.subject == VIETNAMESE
    assert "bao cao tuan" in summary.search_text


def test_subject_decoding_edge_cases() -> None:
    def subject(value: bytes) -> str:
        return analyze_message(b"Subject: " + value + b"\r\n\r\n").subject

    assert subject(b"=?windows-1258?Q?B=E1o_c=E1o?=") == "Báo cáo"
    assert subject(b"=?x-unknown?Q?B=C3=A1o?= a") == "Báo a"  # unknown charset: UTF-8
    assert subject(b"Re: =?utf-8?B?QsOhbw?=") == "Re: Báo"  # padding missing
    assert subject(b"=?utf-8?B?***?= =?utf-8?Q?=ZZ?=") != ""  # garbage survives somehow
    assert analyze_message(b"X: y\r\n\r\n").subject == ""


def test_from_display_date_and_message_id() -> None:
    raw = crlf(
        "From: =?UTF-8?B?Tmd1eeG7hW4gVsSDbiBB?= <a@b.c>\nDate: Mon, 3 Jun 2024 10:00:00 +0700\n"
        "Message-ID:  <id@b.c> \n\nx\n"
    )
    summary = analyze_message(raw)
    assert summary.from_display == "Nguyễn Văn A <a@b.c>"
    assert summary.date == datetime(2024, 6, 3, 10, tzinfo=timezone(timedelta(hours=7)))
    assert summary.message_id == "<id@b.c>"
    assert summary.header_size == raw.index(b"x")
    missing = analyze_message(b"Message-ID: \r\n\r\n")
    assert (missing.date, missing.message_id) == (None, None)


@pytest.mark.parametrize(
    "header, expected",
    [
        (b"From: a@b.c", "a@b.c"),
        (b"From: Team: ;, x@y.z", "x@y.z"),  # group markers are skipped
        (b"From: bare", "bare"),
        (b"From: ", ""),
        (b"X: y", ""),
    ],
)
def test_from_display(header: bytes, expected: str) -> None:
    assert analyze_message(header + b"\r\n\r\n").from_display == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (b"Mon, 3 Jun 2024 03:00:00 -0000", datetime(2024, 6, 3, 3, tzinfo=UTC)),
        (b"3 Jun 2024 10:00 +0700", datetime(2024, 6, 3, 3, tzinfo=UTC)),
        (b"yesterday", None),
        (b"Mon, 99 Foo 99999 99:99:99 +9999", None),
        (b"", None),
    ],
)
def test_date_is_aware_or_none(value: bytes, expected: datetime | None) -> None:
    assert analyze_message(b"Date: " + value + b"\r\n\r\n").date == expected


# --- search text and attachments ------------------------------------------------------------


def test_search_text_folds_subject_names_bodies_and_file_names() -> None:
    summary = analyze_message(
        ATTACHMENT.replace(
            b"From: a@b.c",
            crlf(
                "From: =?UTF-8?Q?Tr=E1=BA=A7n_Th=E1=BB=8B_B?= <tran.thi.b@ubnd.tinh.gov.vn>\n"
                "To: Đắk Lắk <dl@x.vn>\nCc: c@x.vn\nBcc: secret@x.vn\nSubject: Báo cáo tuần"
            ),
        )
    )
    text = summary.search_text
    for expected in ("bao cao tuan", "tran thi b", "tran.thi.b@ubnd.tinh.gov.vn", "dak lak",
                     "dl@x.vn", "c@x.vn", "xin chao", "bao cao tuan.pdf"):  # fmt: skip
        assert expected in text
    assert "secret" not in text and "jvber" not in text  # no Bcc, no base64
    assert text == fold(text) and summary.has_attachments


def test_search_text_of_alternative_takes_the_plain_version() -> None:
    summary = analyze_message(ALTERNATIVE)
    assert summary.search_text == "bao cao tuan a@b.c x@y.z q q@r.s bao cao"  # no HTML
    html_only = crlf(
        H + "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
    ) + base64.encodebytes(
        "<html><head><title>t</title><style>p{x}</style></head><body><script>var a=1;"
        "</script><p>Công&nbsp;văn &amp; Giấy&#32;mời</p><!-- hidden --></body></html>".encode()
    )
    assert analyze_message(html_only).search_text == "a@b.c cong van & giay moi"


def test_search_text_is_capped() -> None:
    raw = crlf(H + "Content-Type: text/plain; charset=utf-8\n\n") + "Hà Nội ".encode() * 100_000
    text = analyze_message(raw).search_text
    assert len(text.encode()) <= SEARCH_TEXT_LIMIT
    assert text.startswith("a@b.c ha noi ha noi")


@pytest.mark.parametrize(
    "part, expected",
    [
        ("Content-Type: application/pdf\nContent-Disposition: attachment\n\nx", True),
        ("Content-Type: image/png; name=logo.png\nContent-Disposition: inline\n\nx", True),
        ("Content-Type: text/plain; name=notes.txt\n\nx", False),
        ("Content-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\nx", True),
        ("Content-Type: message/rfc822\n\nSubject: fwd\n\nx", True),
        ("Content-Type: text/html\n\n<p>x</p>", False),
    ],
)
def test_has_attachments(part: str, expected: bool) -> None:
    raw = crlf(
        H + f"Content-Type: multipart/mixed; boundary=B\n\n--B\n\nbody\n--B\n{part}\n--B--\n"
    )
    assert analyze_message(raw).has_attachments is expected


# --- header probes for the SMTP layer -------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"A: b\r\n\r\nbody", 8),
        (b"A: b\n\nbody", 6),
        (b"\r\nbody", 2),
        (b"A: b\r\n", 6),  # a header that ends at the end of the data
        (b"A: b", 4),
        (b"", 0),
    ],
)
def test_header_end(raw: bytes, expected: int) -> None:
    assert header_end(raw) == expected


def test_has_header_matches_exact_top_level_field_names() -> None:
    raw = crlf("Subject : x\nX-Long: a\n From: folded\nDKIM-Signature: v=1\n\nFrom: body\n")
    assert has_header(raw, "subject") and has_header(raw, "DKIM-SIGNATURE")
    assert not has_header(raw, "Subj") and not has_header(raw, "Signature")
    assert not has_header(raw, "From")  # only in a continuation line and in the body
    assert not has_header(raw, "") and not has_header(raw, "A B") and not has_header(raw, "a:")


def test_header_addresses() -> None:
    raw = crlf(
        'From: "Nguyễn, A" <Nguyen.A@Sonoivu.VN>, Team: b@c.d;\nTo: x@y.z\n'
        "FROM: garbage, (only comment), <>, @, c@\n\nFrom: body@x.y\n"
    )
    assert header_addresses(raw, "from") == ["nguyen.a@sonoivu.vn", "b@c.d"]
    assert header_addresses(raw, "To") == ["x@y.z"]
    assert header_addresses(raw, "Cc") == []
    assert header_addresses(b"From: \xff\xfe<\x00@\x01>\r\n\r\n", "From") == ["\ufffd@\x01"]


# --- malformed input ------------------------------------------------------------------------

MALFORMED = [
    b"",
    b"\r\n",
    b"\n\n\n",
    b"--",
    b"\x00\xff\xfe" * 50,
    b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
    b'Content-Type: multipart/mixed; boundary="\r\n\r\n--"\r\n',
    b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n",
    b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n",
    b"Content-Type: text/plain; charset=base64\r\n\r\nx",
    b"Content-Type: text/plain; charset=idna\r\nContent-Transfer-Encoding: base64\r\n\r\n====",
    b"Content-Type: text/html\r\n\r\n<script" * 3 + b"<!--",
    b"Content-Disposition: attachment; filename*=\r\nContent-Type: a/b; name*=x'y\r\n\r\n",
    b"Content-Type: a/b; name*0*=%ZZ; name*1*=%E1%BA; name*3=x\r\n\r\n",
    b'Subject: =?utf-8?b?=?=?utf-8?q?=?=\r\nTo: (((\r\nCc: "\\\r\nFrom: <<<>>>,,,;;;:::\r\n\r\n',
    b"From: a@b.c\rSubject: bare CR\r\rx",
    b"Subject: =?utf-7?q?+2AA-?=\r\nContent-Type: text/plain; charset=unicode_escape\r\n\r\n"
    b"\\ud800",  # codecs that yield lone surrogates
    b"From: a\x00b@c\x00d\r\nSubject: =?utf-8?q?a=00b?=\r\n\r\nx\x00y",
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_messages_still_summarise(raw: bytes) -> None:
    summary = mime._analyze(raw)  # without analyze_message's safety net
    assert_well_formed(raw, summary)


def test_unknown_or_invalid_content_type_is_text_plain() -> None:
    # RFC 2045 §5.2 (Dovecot reports ("garbage" "") instead).
    for value in (b"garbage", b"text/", b"", b"multipart"):
        summary = analyze_message(b"Content-Type: " + value + b"\r\n\r\nx\r\n")
        assert bodystructure(summary.structure) == f"{TEXT} 3 1 NIL NIL NIL NIL)"


def test_deep_nesting_and_part_count_are_bounded() -> None:
    deep = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(200)
    )
    node = analyze_message(deep).structure
    depth = 0
    while "parts" in node:
        node, depth = node["parts"][0], depth + 1
    assert (depth, node["type"], node["subtype"]) == (mime.MAX_DEPTH, "application", "octet-stream")
    many = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + b"--B\r\n\r\nx\r\n" * 12_000
    summary = analyze_message(many)
    assert len(summary.structure["parts"]) < mime.MAX_PARTS
    assert_well_formed(many, summary)


def test_message_global_is_parsed_like_rfc822() -> None:
    # RFC 9051 gives message/global an envelope; Dovecot 2.3 treats it as opaque.
    raw = crlf(H + "Content-Type: message/global\n\nFrom: x@y.z\nSubject: g\n\nbody\n")
    node = analyze_message(raw).structure
    assert node["message"]["envelope"][1] == "g"
    assert section(raw, node, "1.TEXT") == b"body\r\n"


# --- properties -----------------------------------------------------------------------------

SAMPLES = [
    SIMPLE,
    ALTERNATIVE,
    ATTACHMENT,
    RFC822,
    EPILOGUE,
    *(r for r, _ in DOVECOT_BODYSTRUCTURE.values()),
]
FRAGMENTS = [b"", b"\r\n", b"\n", b"\r\n\r\n", b"--", b"--ZZ\r\n", b"--ZZ--", b"--A\r\n", b"--YY",
             b"Content-Type: multipart/mixed; boundary=A\r\n", b"Content-Type: message/rfc822\r\n",
             b'"', b"(", b"<", b";", b"=?utf-8?b?", b"\x00", b"\xc3", b"\r"]  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert_well_formed(raw, mime._analyze(raw))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SAMPLES),
    st.lists(
        st.tuples(st.integers(0, 2000), st.integers(0, 30), st.sampled_from(FRAGMENTS)),
        max_size=5,
    ),
)
def test_mutated_messages_never_raise(raw: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    for at, cut, insert in edits:
        at %= len(raw) + 1
        raw = raw[:at] + insert + raw[at + cut :]
    assert_well_formed(raw, mime._analyze(raw))


VIETNAMESE_LETTERS = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
)


@given(
    st.text(
        st.sampled_from(VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper() + " \t\n.,-Ðð\u0301\u00a0")
        | st.characters(),
        max_size=60,
    )
)
def test_fast_fold_equals_fold(text: str) -> None:
    assert mime._fold_search(text) == fold(text)
    assert mime._fold_search(unicodedata.normalize("NFD", text)) == fold(
        unicodedata.normalize("NFD", text)
    )


ADDRESS_PIECES = ["a@b.c", "Nguyễn Văn A <a@b.vn>", '"Trần, B" <t@x.y>', '"" <q@r>', "x",
                  "<y@z>", "Q. Public <qp@x>", "a . b@c", "\t", " ", ",", ";", ":", "(c)", '"',
                  "<", ">", "@", "\u00a0", "=?utf-8?q?x?= <e@f>", '"Sở (SNV)\u00a0" <s@x>',
                  '"a\\"b" <c@d>']  # fmt: skip


@given(st.lists(st.sampled_from(ADDRESS_PIECES), max_size=8))
def test_address_fast_path_agrees_with_the_full_parser(pieces: list[str]) -> None:
    text = " ".join(pieces)
    assert mime._parse_addresses(text) == mime._parse_address_tokens(mime._address_tokens(text))
