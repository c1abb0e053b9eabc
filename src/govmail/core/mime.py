"""MIME analysis of stored mail: IMAP envelope and body structure, search text, header probes."""

from __future__ import annotations

import binascii
import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import unquote_to_bytes

from govmail.core.vietnamese import fold

__all__ = [
    "SEARCH_TEXT_LIMIT",
    "MessageSummary",
    "analyze_message",
    "decode_words",
    "has_header",
    "header_addresses",
    "header_end",
]

SEARCH_TEXT_LIMIT = 256 * 1024  # bytes of UTF-8 in MessageSummary.search_text
# Header values are parsed (not stored) up to this many characters: a hostile megabyte of
# "((((" or "a=1;" would otherwise cost seconds on the delivery path.
_PARSE_LIMIT = 16 * 1024
_MAX_ADDRESSES = 10_000  # per field name, far above any real recipient list
# Dovecot's defaults (max_nested_mime_parts 100, max_total_mime_parts 10000) bound the work a
# hostile message can cause; we nest less deeply because each level costs Python frames.
MAX_DEPTH = 40
MAX_PARTS = 10_000

Node = dict[str, Any]
Address = list[str | None]  # [name, adl, mailbox, host], the IMAP address structure
Fields = dict[str, list[str]]  # lower-case field name -> raw values, in header order

MISSING_MAILBOX = "MISSING_MAILBOX"  # Dovecot's fillers, which IMAP clients already know
MISSING_DOMAIN = "MISSING_DOMAIN"
_GROUP_END: Address = [None, None, None, None]
_IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})


@dataclass(frozen=True)
class MessageSummary:
    """What the store caches per message at delivery; JSON-serialisable but for ``date``.

    ``envelope`` is the IMAP ENVELOPE: [date, subject, from, sender, reply_to, to, cc, bcc,
    in_reply_to, message_id], strings as in the header (unfolded, not decoded) or None,
    addresses as [[name, adl, mailbox, host], ...] or None, a group as [None, None, name,
    None] ... [None, None, None, None]. ``structure`` is one dict per MIME part: type,
    subtype (lower case), params [[name, value], ...] ([] is NIL; names as written, so
    compare them case-insensitively), id, description, encoding (lower case), md5,
    disposition [type (lower case), params] | None, language, location, "as_written"
    {type, subtype, encoding, disposition: the header's spelling} only for those not
    written in lower case (Dovecot's BODYSTRUCTURE shows that spelling), and the offsets
    header_offset <= body_offset <= end_offset into the raw bytes, so BODY[n.MIME] is
    raw[header_offset:body_offset] and BODY[n] raw[body_offset:end_offset]; size and lines
    as BODYSTRUCTURE reports them; "parts" for a multipart (never empty) and "message"
    {"envelope", "structure"} for message/rfc822 and message/global, whose structure's
    header and body are that message's HEADER and TEXT.
    """

    envelope: list[Any]
    structure: dict[str, Any]
    search_text: str
    subject: str
    from_display: str
    message_id: str | None
    date: datetime | None
    has_attachments: bool
    header_size: int


def analyze_message(raw: bytes) -> MessageSummary:
    """Return the envelope, body structure, search text and display fields of ``raw``.

    ``raw`` should end its lines with CRLF; bare LF is accepted, and sizes then count it as
    CRLF, as IMAP serves it. Never raises: a message the analysis cannot handle is
    summarised as one text/plain part.
    """
    try:
        return _analyze(raw)
    except Exception:  # a parser bug must not bounce mail; keep it deliverable and servable
        return _fallback_summary(raw)


def header_end(raw: bytes) -> int:
    """Return the offset just after the blank line ending the top header (len(raw) if none)."""
    return _find_header_end(raw, 0, len(raw))[0]


def has_header(raw: bytes, name: str) -> bool:
    """Return whether the top-level header has a field called ``name`` (case-insensitive)."""
    pattern = _field_pattern(name)
    return pattern is not None and pattern.search(raw, 0, header_end(raw)) is not None


def header_addresses(raw: bytes, name: str) -> list[str]:
    """Return the lower-cased addr-specs of every ``name`` field of the top-level header.

    Group names and entries without both a local part and a domain are left out.
    """
    pattern = _field_pattern(name)
    if pattern is None:
        return []
    values = [
        m.group(1).decode("utf-8", "replace") for m in pattern.finditer(raw, 0, header_end(raw))
    ]
    return [
        f"{mailbox}@{host}".lower()
        for _name, _adl, mailbox, host in _address_field(values) or ()
        if host not in (None, MISSING_DOMAIN) and mailbox not in (None, MISSING_MAILBOX)
    ]


# --- header blocks ---------------------------------------------------------------------------

# One field with its continuation lines; lines without a colon are skipped, as Dovecot does.
_FIELD = re.compile(rb"^([^\s:][^:\r\n]*):(.*(?:\n[ \t].*)*)", re.M)
_BLANKS = re.compile(r"[ \t]+")


@lru_cache(maxsize=64)
def _field_pattern(name: str) -> re.Pattern[bytes] | None:
    if not name or not name.isascii() or ":" in name or any(c.isspace() for c in name):
        return None
    return re.compile(rb"^" + re.escape(name.encode()) + rb"[ \t]*:(.*(?:\n[ \t].*)*)", re.M | re.I)


def _find_header_end(raw: bytes, start: int, limit: int) -> tuple[int, bool]:
    """Return (offset after the blank line, True), or (limit, False) if no blank line."""
    if raw.startswith(b"\r\n", start, limit):
        return start + 2, True
    if raw.startswith(b"\n", start, limit):
        return start + 1, True
    crlf = raw.find(b"\n\r\n", start, limit)
    lf = raw.find(b"\n\n", start, limit if crlf < 0 else crlf + 1)  # bare LF only if earlier
    if lf >= 0:
        return lf + 2, True
    if crlf >= 0:
        return crlf + 3, True
    return limit, False


def _header_fields(block: bytes) -> Fields:
    fields: Fields = {}
    for match in _FIELD.finditer(block):
        name = match.group(1).rstrip().lower().decode("latin-1")
        fields.setdefault(name, []).append(match.group(2).decode("utf-8", "replace"))
    return fields


def _unfold(value: str) -> str:
    """Dovecot's form of a header string: leading blanks dropped, CR and LF removed."""
    # NUL becomes U+FFFD as in Dovecot's replies (and PostgreSQL refuses NUL in text).
    return value.lstrip(" \t").replace("\r", "").replace("\n", "").replace("\0", "\ufffd")


def _for_humans(value: str) -> str:
    """Dovecot's imap_append_string_for_humans: also tabs to spaces, blank runs squeezed."""
    return _BLANKS.sub(" ", _unfold(value)).strip(" ")


# --- RFC 2047 encoded words and charsets ------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _decode_charset(data: bytes, charset: str) -> str:
    """Decode ``data`` for display and search: never fails, no NUL (PostgreSQL refuses it)."""
    return _decode_bytes(data, charset).replace("\0", "\ufffd")


def _decode_bytes(data: bytes, charset: str) -> str:
    name = charset.strip().lower()
    if name not in ("", "us-ascii", "ascii", "utf-8", "utf8"):
        try:
            text = data.decode(name, "replace")
        except (LookupError, ValueError):  # unknown or non-text codec ("base64", "idna")
            pass
        else:  # utf-7 and unicode_escape can yield lone surrogates, which storage refuses
            return text if text.isascii() else text.encode("utf-8", "replace").decode()
    # Mail labelled us-ascii often carries UTF-8; UTF-8 is also the best guess for the rest.
    return data.decode("utf-8", "replace")


def _word_bytes(encoding: str, text: str) -> bytes:
    data = text.encode("ascii", "replace")
    try:
        if encoding in "bB":
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        return binascii.a2b_qp(data, header=True)
    except (binascii.Error, ValueError):
        return data


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words; raw 8-bit text around them is kept as it is.

    Adjacent words in one charset are joined before decoding because mailers split
    multi-byte UTF-8 characters across words (the stdlib decoder mangles raw UTF-8 too).
    """
    if "=?" not in text:
        return text
    text = text[:_PARSE_LIMIT]
    out: list[str] = []
    pending = bytearray()
    pending_charset = ""
    pos = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 adds *language
        if (gap and not (pos and gap.isspace())) or charset.lower() != pending_charset:
            out.append(_decode_charset(bytes(pending), pending_charset))
            pending.clear()
            if not (pos and gap.isspace()):
                out.append(gap)  # whitespace between two encoded words is not text
        pending_charset = charset.lower()
        pending += _word_bytes(match.group(2), match.group(3))
        pos = match.end()
    out.append(_decode_charset(bytes(pending), pending_charset))
    out.append(text[pos:])
    return "".join(out)


# --- addresses ---------------------------------------------------------------------------------

_ADDRESS_TOKEN = re.compile(
    r'(?P<ws>\s+)|"(?P<q>(?:[^"\\]|\\.)*)"?'
    r"|(?P<atom>\[(?:[^\]\\]|\\.)*\]?|[^\s\"()<>\[\]:;@,.\\]+)|(?P<special>.)",
    re.S,
)
_ESCAPE = re.compile(r"\\(.)", re.S)
# Lists of "Name" <a@b>, Name <a@b> and a@b need no tokens; anything else (comments,
# groups, routes, literals, escapes, odd white space) takes the full parser, which gives
# the same result but costs ten times more, so it reads only the first _PARSE_LIMIT chars.
_COMPLEX_ADDRESS = re.compile(r"[()\[\]\\:;]|[^\S \t]")  # outside quoted strings
_QUOTED_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_ADDR_ATOM = r'[^\s"<>()\[\]\\,:;@]+'
_SIMPLE_MAILBOX = re.compile(
    rf'\s*(?:(?:"([^"\\]*)"|([^<>@,"]*?))\s*<({_ADDR_ATOM})@({_ADDR_ATOM})>'
    rf"|({_ADDR_ATOM})@({_ADDR_ATOM}))\s*(?:,|$)"
)


def _unescape(quoted: str) -> str:
    return _ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted


class _Token(NamedTuple):
    kind: str  # "word", "(" for a comment, or the special character itself
    text: str
    spaced: bool  # whitespace or a comment came before it


def _skip_comment(text: str, pos: int) -> tuple[int, str]:
    """Return the offset after the (possibly nested) comment at ``pos`` and its text."""
    depth, chars = 0, []
    while pos < len(text):
        char = text[pos]
        pos += 1
        if char == "\\":
            chars.append(text[pos : pos + 1])
            pos += 1
            continue
        depth += (char == "(") - (char == ")")
        if depth == 0:
            break
        if depth > 1 or char != "(":  # keep nested parentheses, drop the outer pair
            chars.append(char)
    return pos, "".join(chars)


def _address_tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, spaced = 0, False
    while pos < len(text):
        if text[pos] == "(":
            pos, comment = _skip_comment(text, pos)
            tokens.append(_Token("(", comment, spaced))
            spaced = True
            continue
        match = _ADDRESS_TOKEN.match(text, pos)
        if match is None:  # unreachable: the last branch matches any character
            break
        pos = match.end()
        if match.lastgroup == "ws":
            spaced = True
            continue
        if match.lastgroup == "q":
            tokens.append(_Token("word", _unescape(match.group("q")), spaced))
        elif match.lastgroup == "atom":
            tokens.append(_Token("word", match.group(), spaced))
        else:
            tokens.append(_Token(match.group(), match.group(), spaced))
        spaced = False
    return tokens


def _phrase(tokens: list[_Token]) -> str:
    words: list[str] = []
    for token in tokens:
        if token.kind != "(":
            words.append(" " + token.text if words and token.spaced else token.text)
    return _for_humans("".join(words))


def _addr_spec(tokens: list[_Token]) -> tuple[str, str]:
    """Return (mailbox, host) of an addr-spec, with Dovecot's fillers for missing parts."""
    tokens = [token for token in tokens if token.kind != "("]
    at = max((i for i, token in enumerate(tokens) if token.kind == "@"), default=len(tokens))
    mailbox = "".join(token.text for token in tokens[:at])
    host = "".join(token.text for token in tokens[at + 1 :])
    return mailbox or MISSING_MAILBOX, host or MISSING_DOMAIN


def _mailbox(words: list[_Token], angle: list[_Token] | None) -> Address | None:
    if angle is not None:  # [phrase] <[@route:]addr-spec>
        route = None
        if angle and angle[0].kind == "@" and any(token.kind == ":" for token in angle):
            colon = next(i for i, token in enumerate(angle) if token.kind == ":")
            route = "".join(token.text for token in angle[:colon])
            angle = angle[colon + 1 :]
        return [_phrase(words) or None, route, *_addr_spec(angle)]
    if all(token.kind == "(" for token in words):  # nothing, or only comments (Dovecot: none)
        return None
    # "Name addr@host" without brackets: a space between two words before the "@" ends
    # the name (Dovecot gives up on the rest of the list here instead).
    split = 0
    for i in range(1, len(words)):
        if words[i].kind == "@":
            break
        if words[i].spaced and words[i].kind == "word" and words[i - 1].kind == "word":
            split = i
    comments = [token.text for token in words if token.kind == "("]
    name = _phrase(words[:split]) if split else _for_humans(comments[-1]) if comments else ""
    return [name or None, None, *_addr_spec(words[split:])]


def _parse_addresses(text: str) -> list[Address]:
    """Parse an address list the way IMAP reports it, groups included; never fails."""
    text = text.replace("\r", "").replace("\n", "").replace("\0", "\ufffd")
    if _COMPLEX_ADDRESS.search(_QUOTED_STRING.sub('""', text)) is None:
        addresses = _parse_simple_addresses(text)
        if addresses is not None:
            return addresses
    return _parse_address_tokens(_address_tokens(text[:_PARSE_LIMIT]))


def _parse_simple_addresses(text: str) -> list[Address] | None:
    """Parse a list of plain mailboxes, or return None if it is anything else."""
    addresses: list[Address] = []
    pos = 0
    while (pos < len(text) or not addresses) and len(addresses) < _MAX_ADDRESSES:
        match = _SIMPLE_MAILBOX.match(text, pos)
        if match is None or match.end() == pos:
            return None
        pos = match.end()
        if match[3]:
            name = match[1] if match[1] is not None else match[2]
            addresses.append([_for_humans(name) or None, None, match[3], match[4]])
        else:
            addresses.append([None, None, match[5], match[6]])
    return addresses


def _parse_address_tokens(tokens: list[_Token]) -> list[Address]:
    addresses: list[Address] = []
    words: list[_Token] = []
    angle: list[_Token] | None = None
    in_group = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token.kind == "<" and angle is None:
            end = next((j for j in range(i, len(tokens)) if tokens[j].kind == ">"), len(tokens))
            angle, i = tokens[i:end], end + 1
        elif token.kind in (",", ";"):
            address = _mailbox(words, angle)
            if address is not None:
                addresses.append(address)
            words, angle = [], None
            if token.kind == ";" and in_group:
                addresses.append(list(_GROUP_END))
                in_group = False
        elif token.kind == ":" and not in_group and angle is None:
            addresses.append([None, None, _phrase(words), None])
            words, in_group = [], True
        elif angle is None:  # anything after the brackets (a comment) is not part of it
            words.append(token)
    address = _mailbox(words, angle)
    if address is not None:
        addresses.append(address)
    if in_group:
        addresses.append(list(_GROUP_END))
    return addresses


def _address_field(values: list[str] | None) -> list[Address] | None:
    # All occurrences count, as in Dovecot (parsed as one list so the limits hold for all).
    return _parse_addresses(",".join(values)) or None if values else None


def _envelope(fields: Fields) -> list[Any]:
    """Return the IMAP ENVELOPE of a header; the last Date/Subject/ID field wins (Dovecot)."""

    def last(name: str) -> str | None:
        values = fields.get(name)
        return values[-1] if values else None

    date, subject = last("date"), last("subject")
    in_reply_to, message_id = last("in-reply-to"), last("message-id")
    from_ = _address_field(fields.get("from"))
    return [
        None if date is None else _unfold(date),
        None if subject is None else _for_humans(subject),
        from_,
        _address_field(fields.get("sender")) or from_,  # RFC 3501 defaults both to From
        _address_field(fields.get("reply-to")) or from_,
        _address_field(fields.get("to")),
        _address_field(fields.get("cc")),
        _address_field(fields.get("bcc")),
        None if in_reply_to is None else _unfold(in_reply_to),
        None if message_id is None else _unfold(message_id),
    ]


_EMPTY_ENVELOPE: list[Any] = [None] * 10


# --- Content-* fields -------------------------------------------------------------------------

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
_TYPE_RE = re.compile(rf"\s*({_TOKEN})\s*/\s*({_TOKEN})\s*")
# An unquoted value ends at white space, like Dovecot's token ("charset=utf-8 format=flowed"
# lacks a ";"), but may hold "=" and "/", which Dovecot cuts at ("boundary=----=_Part_1").
_PARAM_RE = re.compile(r';\s*([^\s=;"]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"?|([^\s;"]*))', re.S)
_SECTION_RE = re.compile(r"([^*]+)\*(\d*)(\*?)")  # RFC 2231: name*, name*0, name*1*


def _strip_comments(value: str) -> str:
    out: list[str] = []
    pos, quoted = 0, False
    while pos < len(value):
        char = value[pos]
        if char == "(" and not quoted:
            pos = _skip_comment(value, pos)[0]
            continue
        if char == '"':
            quoted = not quoted
        elif char == "\\" and quoted:
            out.append(value[pos : pos + 2])
            pos += 2
            continue
        out.append(char)
        pos += 1
    return "".join(out)


def _split_params(value: str) -> tuple[str, list[tuple[str, str]]]:
    """Split "type/subtype; a=1; b="2"" into its head and (name, value) pairs.

    Names keep their case: Dovecot's BODYSTRUCTURE shows them as written ("CHARSET").
    """
    value = _unfold(value[:_PARSE_LIMIT])
    if "(" in value:
        value = _strip_comments(value)
    head = value.partition(";")[0]
    params = [
        (m[1], _unescape(m[2]) if m[2] is not None else m[3])
        for m in _PARAM_RE.finditer(value, len(head))
    ]
    return head.strip(), params


def _merge_rfc2231(params: list[tuple[str, str]]) -> list[list[str]]:
    """Join RFC 2231 sections as Dovecot does: still encoded, named "name*" if extended."""
    plain: list[list[str]] = []
    sections: dict[str, list[tuple[int, bool, str]]] = {}
    spelling: dict[str, str] = {}  # sections match case-insensitively; the first names them
    for name, value in params:
        match = _SECTION_RE.fullmatch(name)
        if match is None:
            plain.append([name, value])
        else:
            index = int(match[2]) if match[2] else 0
            extended = not match[2] or bool(match[3])
            lower = match[1].lower()
            spelling.setdefault(lower, match[1])
            sections.setdefault(lower, []).append((index, extended, value))
    for lower in sorted(sections):
        key = spelling[lower]
        parts = sorted(sections[lower], key=lambda section: section[0])
        extended = any(section[1] for section in parts)
        if [section[0] for section in parts] != list(range(len(parts))):  # gap: keep as given
            plain.extend([f"{key}*{i}{'*' if ext else ''}", v] for i, ext, v in parts)
            continue
        text = "".join(v if ext or not extended else v.replace("%", "%25") for _, ext, v in parts)
        if extended and not parts[0][1]:
            text = "''" + text
        plain.append([key + "*" if extended else key, text])
    return plain


def _param(params: list[list[str]], name: str) -> str | None:
    """Return the value of the first parameter called ``name`` (lower case), in any case."""
    return next((value for key, value in params if key.lower() == name), None)


def _content_type(values: list[str] | None, digest: bool) -> tuple[str, str, list[list[str]]]:
    """Return type and subtype as written, and the parameters (Dovecot keeps the case)."""
    # The first field counts (Dovecot). RFC 2045 §5.2: an invalid one means text/plain.
    head, params = _split_params(values[0]) if values else ("", [])
    match = _TYPE_RE.fullmatch(head)
    if match is None:
        if digest:
            return "message", "rfc822", []
        return "text", "plain", [["charset", "us-ascii"]]
    merged = _merge_rfc2231(params)
    if match[1].lower() == "text" and _param(merged, "charset") is None:
        merged.append(["charset", "us-ascii"])  # what Dovecot reports for text without one
    return match[1], match[2], merged


def _disposition(values: list[str] | None) -> list[Any] | None:
    """Return [type as written, parameters] or None."""
    if not values:
        return None
    head, params = _split_params(values[0])
    return [head, _merge_rfc2231(params)]


def _encoding(values: list[str] | None) -> str:
    """Return the transfer encoding as written (stripped), or "7bit"."""
    value = values[0].strip() if values else ""
    return value if _TOKEN_RE.fullmatch(value) else "7bit"  # garbage means 7bit (Dovecot)


def _first(fields: Fields, name: str) -> str | None:
    values = fields.get(name)
    return _unfold(values[0]) if values else None


def _language(values: list[str] | None) -> list[str] | None:
    tags = re.split(r"[\s,]+", _unfold(values[0])) if values else []
    return [tag for tag in tags if tag] or None


def _node(fields: Fields, digest: bool, start: int, body: int) -> Node:
    kind, subtype, params = _content_type(fields.get("content-type"), digest)
    encoding = _encoding(fields.get("content-transfer-encoding"))
    disposition = _disposition(fields.get("content-disposition"))
    node: Node = {
        "type": kind.lower(),
        "subtype": subtype.lower(),
        "params": params,
        "id": _first(fields, "content-id"),
        "description": _first(fields, "content-description"),
        "encoding": encoding.lower(),
        "md5": _first(fields, "content-md5"),
        "disposition": disposition,
        "language": _language(fields.get("content-language")),
        "location": _first(fields, "content-location"),
        "header_offset": start,
        "body_offset": body,
        "end_offset": body,
        "size": 0,
        "lines": 0,
    }
    # Dovecot's BODYSTRUCTURE shows these as written ("TEXT" "Plain" ... "8BIT"); keep the
    # spelling only when it is not the lower case the rest of govmail compares with.
    written = {"type": kind, "subtype": subtype, "encoding": encoding}
    if disposition is not None:
        written["disposition"] = disposition[0]
        disposition[0] = disposition[0].lower()
    as_written = {key: value for key, value in written.items() if value != value.lower()}
    if as_written:
        node["as_written"] = as_written
    return node


# --- body structure -------------------------------------------------------------------------


class _Delimiter(NamedTuple):
    start: int  # offset of the line's first "-"
    after: int  # offset after the line's end of line
    depth: int  # index of the matched boundary in the stack
    close: bool  # "--boundary--"


class _Parser:
    """Splits a message into parts over bytes, checking every open boundary on each line.

    As in Dovecot, a line matches a boundary when it starts with "--boundary" (a prefix is
    enough); when several open boundaries match, the longest wins, then the innermost. The
    line end before a delimiter belongs to the delimiter, even when it would otherwise end
    a header, except the one closing a "--boundary--" line, which ends the multipart.
    """

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.parts = 0
        # IMAP counts a bare LF as CRLF; skip the per-part correction for normal mail.
        self.bare_lf = raw.count(b"\n") != raw.count(b"\r\n")

    def entity(
        self, start: int, stack: list[bytes], context: str, depth: int
    ) -> tuple[Node, Fields, _Delimiter | None]:
        """Parse the entity at ``start``; return it, its fields and the delimiter ending it.

        ``context`` is "message" for a whole message, "part" in a multipart, or "digest".
        """
        self.parts += 1
        node, fields, hit, complete = self._header(start, stack, context)
        body = floor = node["body_offset"]  # floor: the least end, what inner parts reach
        boundary = _param(node["params"], "boundary") if node["type"] == "multipart" else None
        composite = node["type"] == "multipart" or _is_message(node)
        if composite and (depth >= MAX_DEPTH or self.parts >= MAX_PARTS):
            node.update(type="application", subtype="octet-stream", params=[])
            node.pop("as_written", None)
        elif composite and not complete and hit is not None:
            pass  # header cut short by a delimiter: an empty body, as in Dovecot
        elif boundary:
            hit, floor = self._multipart(node, body, stack, boundary.encode(), depth)
        elif _is_message(node) and node["encoding"] in _IDENTITY_ENCODINGS:
            inner, inner_fields, hit = self.entity(body, stack, "message", depth + 1)
            node["message"] = {"envelope": _envelope(inner_fields), "structure": inner}
            floor = inner["end_offset"]
        self._finish(node, self._end_before(hit, floor))
        return node, fields, hit

    def _header(
        self, start: int, stack: list[bytes], context: str
    ) -> tuple[Node, Fields, _Delimiter | None, bool]:
        """Parse the header at ``start``; also return the next delimiter and if it ended."""
        hit = self._find(start, stack)
        limit = len(self.raw) if hit is None else hit.start
        body, complete = _find_header_end(self.raw, start, limit)
        fields = _header_fields(self.raw[start:body])
        # Dovecot reads a message's Content-* fields only if it looks like MIME.
        mime = context != "message" or "mime-version" in fields or "content-type" in fields
        node = _node(fields if mime else {}, context == "digest", start, body)
        boundary = _param(node["params"], "boundary") if node["type"] == "multipart" else None
        if hit is not None and not (boundary and self._claims(hit, boundary.encode(), stack)):
            # The delimiter ends this part and takes the line end before it, even the one
            # of the blank line (Dovecot); a multipart's own first boundary does not.
            end = self._end_before(hit, start)
            if body > end:
                node["body_offset"], complete = end, False
        return node, fields, hit, complete

    def _multipart(
        self, node: Node, body: int, stack: list[bytes], boundary: bytes, depth: int
    ) -> tuple[_Delimiter | None, int]:
        """Parse the parts of a multipart; return the delimiter ending it and its floor."""
        inner = [*stack, boundary]
        own = len(stack)
        children: list[Node] = []
        hit = self._find(body, inner)  # the preamble ends here
        while hit is not None and hit.depth == own and not hit.close and self.parts < MAX_PARTS:
            context = "digest" if node["subtype"] == "digest" else "part"
            child, _, hit = self.entity(hit.after, inner, context, depth + 1)
            children.append(child)
        floor = children[-1]["end_offset"] if children else body
        if hit is not None and hit.depth == own:  # closed (or too many parts): an epilogue
            floor = hit.after
            hit = self._find(floor, stack)
        if children:
            node["parts"] = children
        return hit, floor

    def _find(self, pos: int, stack: list[bytes]) -> _Delimiter | None:
        """Return the first line at or after ``pos`` that is a delimiter of ``stack``."""
        if not stack:
            return None
        raw = self.raw
        line = pos
        while True:
            if raw.startswith(b"--", line):
                best = -1
                for depth, boundary in enumerate(stack):
                    if raw.startswith(boundary, line + 2) and (
                        best < 0 or len(boundary) >= len(stack[best])
                    ):
                        best = depth
                if best >= 0:
                    end = line + 2 + len(stack[best])
                    newline = raw.find(b"\n", end)
                    after = len(raw) if newline < 0 else newline + 1
                    return _Delimiter(line, after, best, raw.startswith(b"--", end))
            found = raw.find(b"\n--", line)
            if found < 0:
                return None
            line = found + 1

    def _claims(self, hit: _Delimiter, boundary: bytes, stack: list[bytes]) -> bool:
        """Whether ``hit``'s line would match ``boundary`` once it is open (longest wins)."""
        return self.raw.startswith(boundary, hit.start + 2) and len(boundary) >= len(
            stack[hit.depth]
        )

    def _end_before(self, hit: _Delimiter | None, floor: int) -> int:
        """Return where content ending at ``hit`` stops: before its line end, not below floor."""
        if hit is None:
            return len(self.raw)
        end = hit.start
        if self.raw.endswith(b"\r\n", floor, end):
            return end - 2
        if self.raw.endswith(b"\n", floor, end):
            return end - 1
        return end

    def _finish(self, node: Node, end: int) -> None:
        """Set the end, size and lines of ``node``; give a composite what it lacks."""
        raw, body = self.raw, node["body_offset"]
        lines = raw.count(b"\n", body, end)
        size = end - body
        if self.bare_lf:
            size += lines - raw.count(b"\r\n", body, end)
        node.update(end_offset=end, size=size, lines=lines)
        if node["type"] == "multipart" and "parts" not in node:
            # No usable boundary: Dovecot reports one empty text/plain part.
            node["parts"] = [_empty_leaf(end, end)]
        elif _is_message(node) and "message" not in node:
            # Encoded (or its header cut short): Dovecot does not look inside.
            node["message"] = {"envelope": _EMPTY_ENVELOPE[:], "structure": _empty_leaf(body, end)}


def _is_message(node: Node) -> bool:
    return node["type"] == "message" and node["subtype"] in ("rfc822", "global")


def _is_text_body(node: Node) -> bool:
    return node["type"] == "text" and node["subtype"] in ("plain", "html")


def _empty_leaf(start: int, end: int) -> Node:
    node = _node({}, False, start, end)
    node["end_offset"] = end
    return node


# --- search text ------------------------------------------------------------------------------

_HTML_HIDDEN = re.compile(r"<(script|style|head)\b|<!--", re.I)
_HTML_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")
_NOT_LATIN_OR_MARK = re.compile("[^\x00-\x7f\u0300-\u036f]")


def _html_text(markup: str) -> str:
    """Reduce HTML to its visible text; linear even on broken markup (no backtracking)."""
    pieces: list[str] = []
    pos = 0
    while (match := _HTML_HIDDEN.search(markup, pos)) is not None:
        pieces.append(markup[pos : match.start()])
        closer = "-->" if match[1] is None else rf"</{match[1]}\s*>"
        close = re.compile(closer, re.I).search(markup, match.end())
        if close is None:
            pos = len(markup)
            break
        pos = close.end()
    pieces.append(markup[pos:])
    return html.unescape(_HTML_TAG.sub(" ", " ".join(pieces)))


def _fold_search(text: str) -> str:
    """Return ``fold(text)``, several times faster for ASCII and Vietnamese text."""
    if text.isascii():
        return " ".join(text.lower().split())
    # Vietnamese decomposes to ASCII, U+0300–U+036F marks and đ: then fold is exactly this.
    decomposed = unicodedata.normalize("NFD", text.casefold()).replace("\u0111", "d")
    if _NOT_LATIN_OR_MARK.search(decomposed) is None:
        return " ".join(decomposed.encode("ascii", "ignore").decode("ascii").split())
    return fold(text)


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """A part's body without its Content-Transfer-Encoding (broken base64: what decodes)."""
    if encoding == "base64":
        compact = b"".join(data.split())
        try:
            return binascii.a2b_base64(compact[: len(compact) - len(compact) % 4])
        except (binascii.Error, ValueError):
            return b""
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    return data


def _rfc2231_text(value: str) -> str:
    pieces = value.split("'", 2)  # charset'language'percent-encoded
    charset, encoded = (pieces[0], pieces[2]) if len(pieces) == 3 else ("", value)
    return _decode_charset(unquote_to_bytes(encoded), charset)


def _filename(node: Node) -> str:
    disposition = node["disposition"][1] if node["disposition"] else []
    for params, name in ((disposition, "filename"), (node["params"], "name")):
        if (value := _param(params, name + "*")) is not None:
            return _rfc2231_text(value)
        if (value := _param(params, name)) is not None:
            return decode_words(value)
    return ""


class _TextCollector:
    """Walks the structure for search text, attachment names and has_attachments."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.budget = SEARCH_TEXT_LIMIT
        self.texts: list[str] = []
        self.names: list[str] = []
        self.has_attachments = False

    def walk(self, node: Node, want_text: bool) -> None:
        if "parts" in node:
            parts = node["parts"]
            chosen = _preferred_alternative(parts) if node["subtype"] == "alternative" else None
            for child in parts:
                self.walk(child, want_text and (chosen is None or child is chosen))
            return
        filename = _filename(node)
        disposition = node["disposition"][0] if node["disposition"] else ""
        attachment = disposition == "attachment" or "message" in node
        attachment = attachment or (bool(filename) and node["type"] != "text")
        self.has_attachments = self.has_attachments or attachment
        if filename:
            self.names.append(filename)
        if "message" in node:  # a forwarded message's text is searchable too
            self.walk(node["message"]["structure"], want_text)
        elif want_text and not attachment and _is_text_body(node):
            self._add_text(node)

    def _add_text(self, node: Node) -> None:
        if self.budget <= 0:
            return
        html_part = node["subtype"] == "html"
        # Decode no more than the budget can use: ≤ 4 encoded bytes per character of text,
        # more for HTML, whose tags are dropped.
        start = node["body_offset"]
        end = min(node["end_offset"], start + self.budget * (16 if html_part else 4))
        data = decode_transfer(self.raw[start:end], node["encoding"])
        text = _decode_charset(data, _param(node["params"], "charset") or "")
        if html_part:
            text = _html_text(text)
        text = text[: self.budget]
        self.texts.append(text)
        self.budget -= len(text)


def _preferred_alternative(parts: list[Node]) -> Node:
    # Index one version of the text: plain is cheaper to reduce than HTML, and the same text.
    plain = (p for p in parts if p["type"] == "text" and p["subtype"] == "plain")
    return next(plain, parts[-1])


def _address_text(addresses: list[Address] | None) -> list[str]:
    words: list[str] = []
    for name, _adl, mailbox, host in addresses or ():
        if name:
            words.append(decode_words(name))
        if host is not None:
            words.append(f"{mailbox}@{host}")
    return words


def _search_text(envelope: list[Any], subject: str, collector: _TextCollector) -> str:
    pieces = [subject]
    for addresses in (envelope[2], envelope[5], envelope[6]):
        pieces.extend(_address_text(addresses))
    pieces.extend(collector.texts)
    pieces.extend(collector.names)
    folded = _fold_search(" ".join(pieces)[:SEARCH_TEXT_LIMIT])
    if len(folded) > SEARCH_TEXT_LIMIT // 4:  # may exceed the limit once encoded
        folded = folded.encode()[:SEARCH_TEXT_LIMIT].decode("utf-8", "ignore").rstrip()
    return folded


# --- summary ----------------------------------------------------------------------------------


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:  # the stdlib raises assorted types on garbage (ValueError, TypeError…)
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _from_display(addresses: list[Address] | None) -> str:
    for name, _adl, mailbox, host in addresses or ():
        if host is None:
            continue  # group name or group end
        address = "" if mailbox == MISSING_MAILBOX else str(mailbox)
        if host != MISSING_DOMAIN and address:
            address += "@" + host
        if name:
            return unicodedata.normalize("NFC", f"{decode_words(name)} <{address}>")
        return address
    return ""


def _analyze(raw: bytes) -> MessageSummary:
    root, fields, _ = _Parser(raw).entity(0, [], "message", 0)
    envelope = _envelope(fields)
    subject = unicodedata.normalize("NFC", decode_words(envelope[1] or ""))
    collector = _TextCollector(raw)
    collector.walk(root, True)
    message_ids = fields.get("message-id")
    message_id = _unfold(message_ids[-1]).strip() if message_ids else ""
    return MessageSummary(
        envelope=envelope,
        structure=root,
        search_text=_search_text(envelope, subject, collector),
        subject=subject,
        from_display=_from_display(envelope[2]),
        message_id=message_id or None,
        date=_parse_date(envelope[0]),
        has_attachments=collector.has_attachments,
        header_size=root["body_offset"],
    )


def _fallback_summary(raw: bytes) -> MessageSummary:
    size = header_end(raw)
    root = _empty_leaf(0, len(raw))
    root.update(body_offset=size, size=len(raw) - size, lines=raw.count(b"\n", size))
    return MessageSummary(_EMPTY_ENVELOPE[:], root, "", "", "", None, None, False, size)
