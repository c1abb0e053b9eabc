"""FETCH data from core.mime's stored analysis and raw bytes: ENVELOPE, BODYSTRUCTURE, BINARY."""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from typing import Any

__all__ = [
    "binary_literal8",
    "binary_section",
    "body_structure",
    "envelope",
    "partial",
    "section_bytes",
]

Node = dict[str, Any]  # one part of core.mime's MessageSummary.structure

# These mirror Dovecot's lib-imap (imap-quote.c, imap-envelope.c, imap-bodystructure.c,
# imap-msgpart.c) and lib-mail's istream-binary-converter.c, checked byte for byte against
# Dovecot 2.3.19 by tests/unit/test_imap_render.py.

_NIL = b"NIL"
# imap_append_nstring: a literal pays for itself after this many quoted-specials.
_MAX_ESCAPES = 4
_IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})
_DECODED_ENCODINGS = frozenset({"base64", "quoted-printable"})


# --- strings ---------------------------------------------------------------------------------


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: core.mime never stores one, but never fail
        return text.encode("utf-8", "replace")


def _literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def _escaped(text: str) -> bytes:
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'


def _string(text: str) -> bytes:
    """Dovecot's imap_append_string: quoted unless 8-bit, CR/LF or over 4 quoted-specials."""
    if text.isascii():
        if text.isprintable() and '"' not in text and "\\" not in text:
            return b'"' + text.encode() + b'"'  # the common case, three scans in C
        line = "\r" not in text and "\n" not in text
        if line and text.count('"') + text.count("\\") <= _MAX_ESCAPES:
            return _escaped(text)
    return _literal(_utf8(text))


def _nstring(text: str | None) -> bytes:
    return _NIL if text is None else _string(text)


def _human(text: str | None) -> bytes:
    """Dovecot's imap_append_string_for_humans, for the subject and address names.

    Any quote, backslash or 8-bit byte makes a literal. ``text`` is already cleaned (tabs
    and runs of blanks squeezed by core.mime); a string that only became plain through that
    cleaning, such as "a  b", Dovecot still sends as a literal: we quote it (same value).
    """
    if text is None:
        return _NIL
    if text.isascii() and '"' not in text and "\\" not in text:
        if "\r" in text or "\n" in text:  # not from core.mime, but must not break the line
            text = text.replace("\r", "").replace("\n", "")
        return b'"' + text.encode() + b'"'
    return _literal(_utf8(text))


def _string_list(values: Sequence[str] | None) -> bytes:
    if not values:
        return _NIL
    return b"(" + b" ".join(_string(value) for value in values) + b")"


# --- ENVELOPE --------------------------------------------------------------------------------


def _addresses(addresses: Sequence[Sequence[str | None]] | None) -> bytes:
    if not addresses:
        return _NIL
    out = [b"("]
    for name, adl, mailbox, host in addresses:
        out += (b"(", _human(name), b" ", _nstring(adl), b" ")
        out += (_nstring(mailbox), b" ", _nstring(host), b")")
    out.append(b")")
    return b"".join(out)


def envelope(env: Sequence[Any]) -> bytes:
    """Return the parenthesised ENVELOPE of core.mime's ``MessageSummary.envelope``.

    Strings are quoted, or literals when they hold 8-bit text, line ends, or (subject and
    names) any quote or backslash, as Dovecot decides.
    """
    date, subject, from_, sender, reply_to, to, cc, bcc, in_reply_to, message_id = env
    return b"".join(
        (
            b"(",
            _nstring(date),
            b" ",
            _human(subject),
            b" ",
            _addresses(from_),
            b" ",
            _addresses(sender),
            b" ",
            _addresses(reply_to),
            b" ",
            _addresses(to),
            b" ",
            _addresses(cc),
            b" ",
            _addresses(bcc),
            b" ",
            _nstring(in_reply_to),
            b" ",
            _nstring(message_id),
            b")",
        )
    )


# --- BODY and BODYSTRUCTURE ------------------------------------------------------------------


def _written(node: Node, key: str) -> str:
    """The header's spelling of ``key`` (type, subtype or encoding), which Dovecot shows."""
    as_written = node.get("as_written")
    if as_written and key in as_written:
        return str(as_written[key])
    return str(node[key])


def _params(params: Sequence[Sequence[str]] | None) -> bytes:
    if not params:
        return _NIL
    return b"(" + b" ".join(_string(name) + b" " + _string(value) for name, value in params) + b")"


def _disposition(node: Node) -> bytes:
    disposition = node.get("disposition")
    if not disposition:
        return _NIL
    as_written = node.get("as_written")
    kind = as_written.get("disposition", disposition[0]) if as_written else disposition[0]
    return b"(" + _string(kind) + b" " + _params(disposition[1]) + b")"


def _extension_tail(node: Node) -> list[bytes]:
    """Disposition, language and location: the extension data parts and multiparts share."""
    return [_disposition(node), _string_list(node.get("language")), _nstring(node.get("location"))]


def body_structure(structure: Node, *, extensible: bool) -> bytes:
    """Return BODYSTRUCTURE (``extensible``) or BODY of core.mime's ``structure`` node."""
    out: list[bytes] = []
    _write_structure(structure, extensible, out)
    return b"".join(out)


def _write_structure(node: Node, extensible: bool, out: list[bytes]) -> None:
    if node["type"] == "multipart":
        out.append(b"(")
        for child in node["parts"]:
            _write_structure(child, extensible, out)
        out += (b" ", _string(_written(node, "subtype")))
        if extensible:
            out += (b" ", b" ".join([_params(node["params"]), *_extension_tail(node)]))
        out.append(b")")
        return
    fields = [
        _string(_written(node, "type")),
        _string(_written(node, "subtype")),
        _params(node["params"]),
        _nstring(node["id"]),
        _nstring(node["description"]),
        _string(_written(node, "encoding")),
        b"%d" % node["size"],
    ]
    out += (b"(", b" ".join(fields))
    # Dovecot 2.3 gives the envelope and inner body only to message/rfc822: message/global
    # is a plain part to an IMAP4rev1 client, which would misread the extra fields.
    if "message" in node and node["subtype"] == "rfc822":
        message = node["message"]
        out += (b" ", envelope(message["envelope"]), b" ")
        _write_structure(message["structure"], extensible, out)
        out.append(b" %d" % node["lines"])
    elif node["type"] == "text":
        out.append(b" %d" % node["lines"])
    if extensible:
        out += (b" ", b" ".join([_nstring(node["md5"]), *_extension_tail(node)]))
    out.append(b")")


# --- BODY[section] ---------------------------------------------------------------------------


def _find(structure: Node, part: Sequence[int]) -> tuple[Node, bool] | None:
    """Return the node ``part`` names and whether it is a message (top or embedded).

    Dovecot's numbering: a message/rfc822 part's number also names its message, whose
    parts come next; part 1 of a message that is not multipart is its body. None if no such
    part.
    """
    node, is_message = structure, True
    for number in part:
        if not is_message and "message" in node:
            node, is_message = node["message"]["structure"], True
        if node["type"] == "multipart":
            parts = node["parts"]
            if not 1 <= number <= len(parts):
                return None
            node = parts[number - 1]
        elif number != 1:
            return None
        is_message = False
    return node, is_message


def section_bytes(
    raw: bytes,
    structure: Node,
    part: tuple[int, ...],
    text: str | None,
    fields: tuple[str, ...] = (),
) -> bytes:
    """Return BODY[part.text] of ``raw`` as Dovecot does; never None.

    ``text`` is None, "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT" or "MIME";
    ``fields`` the field names of the HEADER.FIELDS forms. A part that does not exist, or
    HEADER/TEXT of a part that is not a message, is empty (Dovecot sends ""), not NIL.
    """
    found = _find(structure, part)
    if found is None:
        return b""
    node, is_message = found
    if text is None:
        if is_message:  # BODY[] (only the top level: a numbered part is never a message)
            return raw[node["header_offset"] : node["end_offset"]]
        return raw[node["body_offset"] : node["end_offset"]]
    if text == "MIME":
        return raw[node["header_offset"] : node["body_offset"]]
    if not is_message:
        if "message" not in node:
            return b""
        if text == "HEADER.FIELDS" and node["encoding"] not in _IDENTITY_ENCODINGS:
            return b""  # Dovecot: BODY[n.HEADER] shows the encoded text; its fields nothing
        node = node["message"]["structure"]
    if text == "TEXT":
        return raw[node["body_offset"] : node["end_offset"]]
    header = raw[node["header_offset"] : node["body_offset"]]
    if text == "HEADER":
        return header
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        return _header_fields(header, fields, text == "HEADER.FIELDS.NOT")
    return b""


def _header_fields(header: bytes, names: Sequence[str], exclude: bool) -> bytes:
    """The fields of ``header`` called (or, if ``exclude``, not called) one of ``names``.

    Fields keep their order and continuation lines. HEADER.FIELDS always ends with an empty
    line; HEADER.FIELDS.NOT keeps the header's own, if it had one (both as Dovecot).
    """
    wanted = {name.lower().encode() for name in names}
    out: list[bytes] = []
    keep = False
    ended = False
    lines = header.split(b"\n")
    for index, line in enumerate(lines):
        if index < len(lines) - 1:
            line += b"\n"
        elif not line:
            break
        if line in (b"\r\n", b"\n"):
            ended = True
            break
        if line[:1] not in (b" ", b"\t"):  # a new field; a line without a colon never matches
            colon = line.find(b":")
            name = line[:colon].rstrip(b" \t").lower() if colon > 0 else None
            keep = (name in wanted) != exclude if name is not None else exclude
        if keep:
            out.append(line if line.endswith(b"\n") or exclude else line + b"\r\n")
    if not exclude or ended:
        out.append(b"\r\n")
    return b"".join(out)


def partial(data: bytes, offset: int, count: int) -> bytes:
    """Apply a ``<offset.count>`` partial: at most ``count`` octets from ``offset``."""
    return data[offset : offset + count]


# --- BINARY ----------------------------------------------------------------------------------


class _UnknownEncoding(Exception):
    """A part to decode has a transfer encoding BINARY does not know."""


def binary_section(raw: bytes, structure: Node, part: tuple[int, ...]) -> bytes | None:
    """Return BINARY[part]: the part with its transfer encoding undone (RFC 3516).

    A leaf part gives its decoded content. A multipart, a message/rfc822 part or the whole
    message (``part`` empty) gives its text with every base64 or quoted-printable part inside
    decoded, each such part's Content-Transfer-Encoding fields replaced by one
    "Content-Transfer-Encoding: binary" at the end of its header (Dovecot). A part that does
    not exist is empty. None if a part to decode has an unknown transfer encoding: the
    server then answers NO [UNKNOWN-CTE]. BINARY.SIZE is the length of the result.
    """
    found = _find(structure, part)
    if found is None:
        return b""
    node, is_message = found
    out: list[bytes] = []
    try:
        if is_message or node["type"] == "multipart" or "message" in node:
            _binary_entity(raw, node, is_message, out)
        else:
            out.append(_decode(raw, node))
    except _UnknownEncoding:
        return None
    return b"".join(out)


def binary_literal8(structure: Node, part: tuple[int, ...]) -> bool:
    """Whether BINARY[part] decodes anything; Dovecot then sends it as a literal8 (~{n})."""
    found = _find(structure, part)
    if found is None:
        return False
    node, is_message = found
    if not (is_message or node["type"] == "multipart" or "message" in node):
        return node["encoding"] in _DECODED_ENCODINGS
    return any(_converts(leaf) for leaf in _leaves(node))


def _converts(node: Node) -> bool:
    return node["encoding"] in _DECODED_ENCODINGS


def _leaves(node: Node) -> list[Node]:
    """The parts of ``node`` that BINARY decodes or copies (not multiparts or messages)."""
    if node["type"] == "multipart":
        return [leaf for child in node["parts"] for leaf in _leaves(child)]
    if "message" in node:
        return _leaves(node["message"]["structure"])
    return [node]


def _binary_entity(raw: bytes, node: Node, with_header: bool, out: list[bytes]) -> None:
    """Append ``node`` (its header too if ``with_header``) with its leaves decoded."""
    start = node["header_offset"] if with_header else node["body_offset"]
    if node["type"] == "multipart":
        position = start
        for child in node["parts"]:
            out.append(raw[position : child["header_offset"]])
            _binary_entity(raw, child, True, out)
            position = child["end_offset"]
        out.append(raw[position : node["end_offset"]])
    elif "message" in node:
        # The message/rfc822 part itself is copied; the message inside is converted.
        out.append(raw[start : node["body_offset"]])
        _binary_entity(raw, node["message"]["structure"], True, out)
    elif _converts(node):
        if with_header:
            out.append(_binary_header(raw[node["header_offset"] : node["body_offset"]]))
        out.append(_decode(raw, node))
    elif node["encoding"] in _IDENTITY_ENCODINGS:
        out.append(raw[start : node["end_offset"]])
    else:
        raise _UnknownEncoding(node["encoding"])


_CTE_FIELD = re.compile(rb"^content-transfer-encoding[ \t]*:.*\n?(?:[ \t].*\n?)*", re.I | re.M)


def _binary_header(header: bytes) -> bytes:
    """``header`` with its Content-Transfer-Encoding fields replaced by "binary" at the end."""
    header = _CTE_FIELD.sub(b"", header)
    field = b"Content-Transfer-Encoding: binary\r\n"
    if header.endswith(b"\r\n\r\n") or header == b"\r\n":
        return header[:-2] + field + b"\r\n"
    if header.endswith(b"\n\n") or header == b"\n":
        return header[:-1] + field + b"\n"
    if header and not header.endswith(b"\n"):  # cut short by a boundary: no line end
        header += b"\r\n"
    return header + field


def _decode(raw: bytes, node: Node) -> bytes:
    """The content of leaf ``node`` with its transfer encoding undone."""
    data = raw[node["body_offset"] : node["end_offset"]]
    encoding = node["encoding"]
    if encoding == "base64":
        return _decode_base64(data)
    if encoding == "quoted-printable":
        return _decode_quoted_printable(data)
    if encoding in _IDENTITY_ENCODINGS:
        return data
    raise _UnknownEncoding(encoding)


_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(set(range(256)) - set(_BASE64_ALPHABET))
_TRAILING_BLANKS = re.compile(rb"[ \t]+(?=\r?\n|\Z)")


def _decode_base64(data: bytes) -> bytes:
    """Decode base64, ignoring what is outside the alphabet (RFC 2045 §6.8).

    Dovecot refuses such data (NO [PARSE]); a readable attachment serves users better.
    """
    compact = data.translate(None, _NOT_BASE64)  # padding too: re-added below
    whole = len(compact) - len(compact) % 4
    tail = compact[whole:]
    if len(tail) == 1:  # a lone sextet holds no whole octet
        tail = b""
    padded = compact[:whole] + tail + b"=" * (-len(tail) % 4)
    return binascii.a2b_base64(padded)


def _decode_quoted_printable(data: bytes) -> bytes:
    """Decode quoted-printable; blanks ending a line are dropped (RFC 2045 §6.7 rule 3).

    An "=" not followed by two hex digits is kept as it is, as RFC 2045 suggests
    (Dovecot refuses the part with NO [PARSE]).
    """
    return binascii.a2b_qp(_TRAILING_BLANKS.sub(b"", data))
