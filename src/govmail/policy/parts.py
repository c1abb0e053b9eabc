"""A message seen as the sending rules see it: its subject, the texts of its body and
its attachments decoded (R11 formats, R12 encodings, R15 marks, R16 signatures, R18 size)."""

from __future__ import annotations

import email
import email.message
import email.utils
from dataclasses import dataclass, field
from email import errors
from email import policy as email_policy

from govmail.core.mime import decode_words

# Parts looked at in one message, and how deep message/rfc822 and multipart nest: past
# these a message is judged on what was read (the IMAP side has the same caps).
MAX_PARTS = 1000
MAX_DEPTH = 20


@dataclass(frozen=True)
class Attachment:
    """One attached file, decoded from its transfer encoding."""

    filename: str  # as the sender named it ("" when it has no name)
    content_type: str  # as declared, lower case ("application/pdf")
    data: bytes
    # A nameless part inside multipart/related: an image of the HTML body (a logo, a
    # signature), not a document that was sent.
    inline: bool = False


@dataclass(frozen=True)
class BodyText:
    """A text part of the body (not an attachment), decoded to str."""

    text: str
    subtype: str  # "plain" or "html"
    charset: str | None  # as declared; None when the part names none
    index: int  # the part's position in ``walk()`` order, to rewrite it later


@dataclass
class MessageParts:
    subject: str  # decoded (RFC 2047 or raw 8-bit), unfolded; "" when absent
    has_subject: bool
    texts: list[BodyText] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    # Why the message cannot be judged as a whole ("" when it can): past the caps on
    # parts and nesting, or a header the stdlib reads differently from the store.
    unreadable: str = ""
    # It holds a signed or encrypted container (S/MIME): its bytes must not change.
    sealed: bool = False

    @property
    def attachment_bytes(self) -> int:
        """R18: the decoded size of everything attached."""
        return sum(len(a.data) for a in self.attachments)


def parse(raw: bytes) -> email.message.Message:
    """The stdlib's parse of ``raw`` (compat32: fastest, and keeps bytes as they came)."""
    return email.message_from_bytes(raw, policy=email_policy.compat32)


def split_message(message: email.message.Message) -> MessageParts:
    """Sort the leaves of ``message`` into body texts and attachments.

    A text/plain or text/html part without a file name and not marked as an attachment
    is body text; every other leaf is an attachment, including those of an attached
    message (a forwarded message's files are sent as much as one's own).
    """
    raw_subject = _raw_header(message, "subject")
    parts = MessageParts(
        subject=" ".join(decode_words(raw_subject or "").split()),
        has_subject=raw_subject is not None,
    )
    walked = Walk()
    leaves = leaf_parts(message, walk=walked)
    parts.unreadable, parts.sealed = walked.unreadable, walked.sealed
    for index, (part, related) in enumerate(leaves):
        if _defective(part) and not parts.unreadable:
            parts.unreadable = "header"
        maintype = part.get_content_maintype()
        subtype = part.get_content_subtype()
        filename = _filename(part)
        disposition = (part.get_content_disposition() or "").lower()
        if (
            maintype == "text"
            and subtype in ("plain", "html")
            and not filename
            and disposition != "attachment"
        ):
            parts.texts.append(
                BodyText(_text(part), subtype, part.get_param("charset"), index)  # type: ignore[arg-type]
            )
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        # An image of the HTML body (a logo, Outlook's image001.png) is referenced by
        # its Content-ID inside multipart/related; it is not a document sent.
        inline = (
            related
            and disposition != "attachment"
            and (not filename or part.get("Content-ID") is not None)
        )
        parts.attachments.append(
            Attachment(
                filename=filename, content_type=part.get_content_type(), data=data, inline=inline
            )
        )
    return parts


@dataclass
class Walk:
    """What walking the tree found besides its leaves."""

    count: int = 0
    unreadable: str = ""  # "parts" or "depth" when a cap was reached
    sealed: bool = False


_SEALED = frozenset({"multipart/signed", "multipart/encrypted", "application/pkcs7-mime"})


def leaf_parts(
    message: email.message.Message,
    depth: int = 0,
    related: bool = False,
    *,
    walk: Walk | None = None,
) -> list[tuple[email.message.Message, bool]]:
    """Leaf parts in order, each with whether it sits in a multipart/related (the
    order ``BodyText.index`` counts in); at most MAX_PARTS, MAX_DEPTH deep (``walk``
    says when a cap cut the tree short)."""
    walk = walk if walk is not None else Walk()
    if message.get_content_type() in _SEALED:
        walk.sealed = True
    if depth > MAX_DEPTH:
        walk.unreadable = walk.unreadable or "depth"
        return []
    if message.is_multipart():
        payload = message.get_payload()
        children = payload if isinstance(payload, list) else []
        inside = related or message.get_content_subtype() == "related"
        found = []
        for child in children:
            if walk.count >= MAX_PARTS:
                walk.unreadable = walk.unreadable or "parts"
                break
            if isinstance(child, email.message.Message):
                found.extend(leaf_parts(child, depth + 1, inside, walk=walk))
        return found
    walk.count += 1
    return [(message, related)]


def _defective(part: email.message.Message) -> bool:
    """A header the stdlib stopped reading early (a line without a colon, a space
    before one): the store's parser would see another structure than the rules."""
    return any(isinstance(d, errors.MissingHeaderBodySeparatorDefect) for d in part.defects)


def _raw_header(message: email.message.Message, name: str) -> str | None:
    """The first ``name`` field's value as sent: raw 8-bit bytes (RFC 6532 UTF-8, or an
    old client's legacy bytes) decoded as UTF-8, else cp1252, never as U+FFFD."""
    for key, value in message.raw_items():
        if key.lower() == name:
            return _unescaped(str(value))
    return None


def _unescaped(value: str) -> str:
    if value.isascii() or not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _filename(part: email.message.Message) -> str:
    source = part
    fields = {k.lower(): str(v) for k, v in part.raw_items() if k.lower().startswith("content-")}
    if any(not v.isascii() for v in fields.values()):
        # Raw 8-bit file names: read the parameters from the fields decoded as sent.
        source = email.message.Message()
        for key in ("content-type", "content-disposition"):
            if key in fields:
                source[key] = _unescaped(fields[key])
    name = source.get_filename() or source.get_param("name") or ""
    if not isinstance(name, str):  # an RFC 2231 triple the stdlib could not decode
        name = email.utils.collapse_rfc2231_value(name)
    return " ".join(decode_words(name).split())


def _text(part: email.message.Message) -> str:
    """The part's text: its charset if known and valid, else UTF-8 if the bytes are
    UTF-8, else cp1252 (which decodes any byte, as mis-labelled legacy text arrives)."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = str(part.get_param("charset") or "").strip().lower()
    for candidate in (charset, "utf-8", "cp1252"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")
