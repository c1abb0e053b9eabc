"""A message seen as the sending rules see it: its subject, the texts of its body and
its attachments decoded (R11 formats, R12 encodings, R15 marks, R16 signatures, R18 size)."""

from __future__ import annotations

import email
import email.message
from dataclasses import dataclass, field
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
    subject: str  # decoded (RFC 2047), unfolded; "" when absent
    has_subject: bool
    texts: list[BodyText] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)

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
    raw_subject = message.get("Subject")
    parts = MessageParts(
        subject=" ".join(decode_words(str(raw_subject or "")).split()),
        has_subject=raw_subject is not None,
    )
    for index, (part, related) in enumerate(leaf_parts(message)):
        if index >= MAX_PARTS:
            break
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
        parts.attachments.append(
            Attachment(
                filename=filename,
                content_type=part.get_content_type(),
                data=data,
                inline=related and not filename and disposition != "attachment",
            )
        )
    return parts


def leaf_parts(
    message: email.message.Message, depth: int = 0, related: bool = False
) -> list[tuple[email.message.Message, bool]]:
    """Leaf parts in order, each with whether it sits in a multipart/related (the
    order ``BodyText.index`` counts in)."""
    if depth > MAX_DEPTH:
        return []
    if message.is_multipart():
        payload = message.get_payload()
        children = payload if isinstance(payload, list) else []
        inside = related or message.get_content_subtype() == "related"
        found = []
        for child in children[:MAX_PARTS]:
            if isinstance(child, email.message.Message):
                found.extend(leaf_parts(child, depth + 1, inside))
        return found
    return [(message, related)]


def _filename(part: email.message.Message) -> str:
    name = part.get_filename() or part.get_param("name") or ""
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
