"""The sending rules applied to one message (R11–R18): what each rule finds, what the
configuration says to do about it, and the message as it goes on (converted, labelled).

Pure apart from reading the operator's trust roots and document types once: the
service runs ``Policy.evaluate`` in a worker thread for each message.
"""

from __future__ import annotations

import email.message
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.header import Header
from io import BytesIO
from pathlib import Path
from typing import Any

from govmail.config import PolicySettings, RuleActions
from govmail.core.errors import InvalidInput
from govmail.core.legacy import repair
from govmail.core.mime import header_end
from govmail.core.vietnamese import ascii_vietnamese
from govmail.policy.classified import Mark, find_mark, find_subject_mark
from govmail.policy.doctypes import Classification, DocumentTypes
from govmail.policy.extract import document_text
from govmail.policy.formats import FORMAT_EXTENSIONS, check_attachment, sniff
from govmail.policy.parts import Attachment, MessageParts, leaf_parts, parse, split_message
from govmail.policy.signatures import SignatureResult, TrustStore, validate_pdf
from govmail.policy.subject import check_subject

log = logging.getLogger(__name__)

SUBMISSION = "submission"
INBOUND = "inbound"

# Fields only govmail writes: any that arrive with a message are removed first, so no
# sender can forge a signature verdict, a document type or a policy label.
LABEL_FIELDS = ("x-govmail-signature", "x-govmail-document-type", "x-govmail-policy")
# How much of each body text the classification rule reads: stamps sit near the top,
# and a 20 MB body must not hold the process for seconds.
BODY_SCAN_CHARS = 256 * 1024
# A header block larger than this is not parsed (the MX refuses over 100 KB already).
MAX_HEADER_BYTES = 1024 * 1024
# Formats whose text the classification-mark and document-type rules read.
_TEXT_FORMATS = frozenset(
    {"pdf", "docx", "docm", "xlsx", "pptx", "odt", "ods", "odp", "rtf", "txt", "doc"}
)
_TAGS = re.compile(r"<[^<>]{0,2000}>")  # [^<>]: no re-scan of a run of "<a <a <a"
_BLOCK_TAGS = re.compile(r"<\s*(?:br|/p|/div|/tr|/li|/h\d|/table)\b[^>]{0,200}>", re.I)
_ENTITIES = {"&nbsp;": " ", "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"'}


@dataclass(frozen=True)
class Finding:
    """What one rule found in a message and what it does about it.

    ``action`` is the configured one that applied: ``reject``, ``warn``, ``convert`` or
    ``inform``. ``code`` is the SMTP reply for a rejection ("552 5.3.4"). ``vi``/``en``
    are short texts for the SMTP reply and the log; ``explain_vi``/``explain_en`` the
    full explanation for the notice mail.
    """

    rule: str
    action: str
    code: str
    vi: str
    en: str
    explain_vi: str = ""
    explain_en: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """The rules' verdict on one message."""

    raw: bytes  # the message as it goes on (converted text, govmail's labels on top)
    findings: tuple[Finding, ...]
    subject: str
    message_id: str | None
    document: Classification | None
    signatures: tuple[SignatureResult, ...]
    mark: Mark | None  # a classification mark (R15), if one was found

    @property
    def rejection(self) -> Finding | None:
        """The finding that refuses the message: a classification mark first (the
        message is then held for the centre), else the first rule that rejects."""
        rejects = [f for f in self.findings if f.action == "reject"]
        for finding in rejects:
            if finding.rule == "classified":
                return finding
        return rejects[0] if rejects else None

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.action in ("warn", "convert")]


class Policy:
    """The configured rules; ``evaluate`` judges one message for one direction."""

    def __init__(self, settings: PolicySettings, data_dir: Path) -> None:
        self.settings = settings
        unknown = [f for f in settings.allowed_formats if f not in FORMAT_EXTENSIONS]
        if unknown:
            raise InvalidInput(
                f"[policy] allowed_formats: không biết định dạng {', '.join(unknown)}"
                f" (các định dạng: {', '.join(sorted(FORMAT_EXTENSIONS))})",
                f"[policy] allowed_formats: unknown format {', '.join(unknown)}"
                f" (known: {', '.join(sorted(FORMAT_EXTENSIONS))})",
            )
        self.trust = TrustStore.load(
            [_path(data_dir, p) for p in settings.trust_roots],
            [_path(data_dir, p) for p in settings.crl_files],
        )
        self.document_types = DocumentTypes.load(
            _path(data_dir, settings.document_types) if settings.document_types else None
        )

    def actions(self, direction: str) -> RuleActions:
        return self.settings.inbound if direction == INBOUND else self.settings.submission

    def evaluate(self, raw: bytes, direction: str) -> Evaluation:
        """Apply every rule that is not off to ``raw`` (a complete message, CRLF).

        Never raises: a message the rules cannot read (broken header syntax, past the
        caps on parts and nesting, one that makes the parser fail) is refused from an
        official (its files could not be checked) and passed on unchanged from the
        Internet, so no input turns into an endless 451.
        """
        actions = self.actions(direction)
        unreadable = _unreadable_bytes(raw)
        if not unreadable:
            try:
                return self._evaluate(raw, direction, actions)
            except Exception:  # RecursionError on absurd nesting, a parser bug …
                log.warning("policy: message could not be parsed", exc_info=True)
                unreadable = "parse"
        findings = []
        if direction == SUBMISSION and actions.formats != "off":
            findings.append(_unreadable(unreadable))
        return Evaluation(
            raw=_without_labels(raw),
            findings=tuple(findings),
            subject="",
            message_id=None,
            document=None,
            signatures=(),
            mark=None,
        )

    def _evaluate(self, raw: bytes, direction: str, actions: RuleActions) -> Evaluation:
        message = parse(raw)
        parts = split_message(message)
        findings: list[Finding] = []
        if parts.unreadable and direction == SUBMISSION and actions.formats != "off":
            findings.append(_unreadable(parts.unreadable))
        formats = [sniff(a.data) for a in parts.attachments]

        if actions.size != "off":
            findings.extend(self._size(parts, actions.size))
        if actions.formats != "off":
            for attachment in parts.attachments:
                problem = check_attachment(attachment, self.settings.allowed_formats)
                if problem is not None:
                    findings.append(
                        _finding(
                            "formats",
                            actions.formats,
                            "554 5.6.1",
                            problem.vi,
                            problem.en,
                            file=problem.filename,
                            kind=problem.kind,
                        )
                    )

        # Marks and document types are read in Unicode whatever R12 does: a TCVN3
        # "TỐI MẬT" must be found as surely as a Unicode one.
        texts = [_unicode_text(t) for t in _attachment_texts(parts.attachments, formats)]
        bodies = [
            _unicode_text(_plain(t.text) if t.subtype == "html" else t.text) for t in parts.texts
        ]
        subject_text = _unicode_text(parts.subject)
        mark = None
        if actions.classified != "off":
            mark = _classification_mark(subject_text, bodies, texts)
            if mark is not None:
                findings.append(_classified(mark, actions.classified))

        subject = subject_text
        converted = label = False
        if actions.unicode != "off":
            # Signed or encrypted content (S/MIME) must keep every byte: told, not changed.
            rewrite = "warn" if parts.sealed or parts.unreadable else actions.unicode
            _, converted, label = self._unicode(message, parts, rewrite, findings)
        if actions.subject != "off":
            bad = check_subject(subject if parts.has_subject else "")
            if bad is not None:
                action = "reject" if bad.kind == "empty" and actions.subject == "reject" else "warn"
                findings.append(
                    _finding("subject", action, "550 5.6.0", bad.vi, bad.en, kind=bad.kind)
                )

        signatures: list[SignatureResult] = []
        if actions.signatures != "off":
            for attachment, fmt in zip(parts.attachments, formats, strict=True):
                if fmt == "pdf":
                    signatures.extend(
                        validate_pdf(attachment.data, attachment.filename or "tep.pdf", self.trust)
                    )
            for result in signatures:
                findings.append(
                    _finding(
                        "signatures",
                        "inform",
                        "",
                        result.vi,
                        result.en,
                        file=result.filename,
                        status=result.status,
                        reason=result.reason,
                        signer=result.signer,
                    )
                )

        first_text = next((t for t in texts if t.strip()), "")
        document = self.document_types.classify(
            subject, [a.filename for a in parts.attachments if a.filename], first_text
        )
        labels = _labels(signatures, document, findings)
        body = _serialise(message) if converted else _without_labels(raw)
        if label and not converted:
            body = _utf8_label(body)
        return Evaluation(
            raw=labels + body,
            findings=tuple(findings),
            subject=subject,
            message_id=_message_id(message),
            document=document,
            signatures=tuple(signatures),
            mark=mark,
        )

    def _size(self, parts: MessageParts, action: str) -> Iterator[Finding]:
        total, limit = parts.attachment_bytes, self.settings.max_attachments_bytes
        if total <= limit:
            return
        found, allowed = _megabytes(total), _megabytes(limit)
        yield _finding(
            "size",
            action,
            "552 5.3.4",
            f"Tổng dung lượng tệp đính kèm {found} vượt quá giới hạn {allowed}",
            f"Attachments total {found}, over the {allowed} limit",
            explain_vi=(
                f"Theo quy định, tổng dung lượng tệp đính kèm của một lần gửi không được quá"
                f" {allowed}; thư của bạn có {found}. Hãy chia tệp thành nhiều thư, nén hoặc"
                " giảm dung lượng tệp (ví dụ quét văn bản ở độ phân giải thấp hơn) rồi gửi lại."
            ),
            explain_en=(
                f"The regulation allows at most {allowed} of attachments in one sending; your"
                f" message has {found}. Split the files over several messages or make them"
                " smaller, then send again."
            ),
            bytes=total,
            limit=limit,
        )

    def _unicode(
        self,
        message: email.message.Message,
        parts: MessageParts,
        action: str,
        findings: list[Finding],
    ) -> tuple[str | None, bool, bool]:
        """R12: find legacy-encoded text in the subject and body; with ``convert``,
        rewrite it in ``message`` as Unicode, and label UTF-8 text that names no
        charset. Returns the new subject (None if unchanged), whether ``message`` was
        changed, and whether the message is one UTF-8 text without any Content-Type
        (labelled by the caller, leaving every byte of it as it came)."""
        label = False
        changed = False
        new_subject = None
        fixed = repair(parts.subject) if parts.subject else None
        if fixed is not None:
            findings.append(_legacy("subject", fixed.encoding, action))
            if action == "convert":
                new_subject, changed = fixed.text, True
                del message["Subject"]
                message["Subject"] = Header(fixed.text, "utf-8", header_name="Subject")  # type: ignore[assignment]
        leaves = [part for part, _ in leaf_parts(message)]
        for text in parts.texts:
            part = leaves[text.index] if text.index < len(leaves) else None
            if part is None:
                continue
            body_fix = repair(text.text)
            if body_fix is not None:
                findings.append(_legacy("body", body_fix.encoding, action))
                if action == "convert":
                    _set_text(part, body_fix.text)
                    changed = True
                    continue
            if action == "convert" and text.charset is None and _utf8(part):
                # Valid UTF-8 without a label: readers would guess another charset.
                if part is message and message.get("Content-Type") is None:
                    label = True
                else:
                    part.set_param("charset", "utf-8")
                    changed = True
        return new_subject, changed, label


def _unicode_text(text: str) -> str:
    """``text``, repaired if it is legacy-encoded (R12), for the rules that read it."""
    fixed = repair(text) if text else None
    return fixed.text if fixed is not None else text


def _unreadable_bytes(raw: bytes) -> str:
    """Why ``raw`` cannot be parsed the way the store parses it, or "": a bare CR (the
    stdlib ends a line there, the store does not) or a header past MAX_HEADER_BYTES."""
    if raw.count(b"\r") != raw.count(b"\r\n"):
        return "bare-cr"
    if header_end(raw) > MAX_HEADER_BYTES:
        return "header-size"
    return ""


def _unreadable(why: str) -> Finding:
    return _finding(
        "formats",
        "reject",
        "554 5.6.0",
        "Cấu trúc thư sai hoặc quá phức tạp, hệ thống không kiểm tra được tệp đính kèm",
        "The message structure is malformed or too complex to check its attachments",
        explain_vi=(
            "Thư có phần đầu sai cú pháp, ký tự CR đơn lẻ, hoặc quá nhiều phần/lồng quá sâu"
            " nên hệ thống không đọc được toàn bộ nội dung để kiểm tra theo quy định."
            " Hãy soạn lại thư bằng chương trình thư điện tử thông thường rồi gửi lại."
        ),
        explain_en=(
            "The message has a malformed header, a bare CR, or too many or too deeply"
            " nested parts, so its content could not be checked. Compose it again with an"
            " ordinary mail program and send it again."
        ),
        kind="unreadable",
        why=why,
    )


def _utf8(part: email.message.Message) -> bool:
    """Whether the part's text is UTF-8 and not plain ASCII."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes) or data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _utf8_label(raw: bytes) -> bytes:
    """A single-part message without Content-Type, labelled as UTF-8 text: the fields
    go at the end of its header, every other byte stays as it came."""
    end = header_end(raw)
    header, rest = raw[:end], raw[end:]
    # header_end points past the blank line; the fields go before it.
    blank = b"\r\n" if header.endswith(b"\r\n\r\n") else b"\n" if header.endswith(b"\n\n") else b""
    head = header[: len(header) - len(blank)] if blank else header
    added = b"" if b"\nmime-version:" in b"\n" + head.lower() else b"MIME-Version: 1.0\r\n"
    added += b"Content-Type: text/plain; charset=utf-8\r\n"
    if b"\ncontent-transfer-encoding:" not in b"\n" + head.lower():
        added += b"Content-Transfer-Encoding: 8bit\r\n"
    return head + added + blank + rest


def _path(data_dir: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else data_dir / path


def _finding(
    rule: str, action: str, code: str, vi: str, en: str, *, explain_vi: str = "",
    explain_en: str = "", **details: Any,
) -> Finding:  # fmt: skip
    return Finding(rule, action, code, vi, en, explain_vi or vi, explain_en or en, details)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".replace(".0", "") + " MB"


def _attachment_texts(attachments: list[Attachment], formats: list[str]) -> list[str]:
    return [
        document_text(a.data, fmt) if fmt in _TEXT_FORMATS and not a.inline else ""
        for a, fmt in zip(attachments, formats, strict=True)
    ]


def _classification_mark(subject: str, bodies: list[str], texts: list[str]) -> Mark | None:
    """The most serious classification mark in the subject, body or attachments."""
    order = {"MẬT": 1, "TỐI MẬT": 2, "TUYỆT MẬT": 3}
    found = [find_subject_mark(subject)]
    found += [find_mark(body[:BODY_SCAN_CHARS]) for body in bodies if body]
    found += [find_mark(text) for text in texts if text]
    marks = [m for m in found if m is not None]
    return max(marks, key=lambda m: order.get(m.level, 0)) if marks else None


def _classified(mark: Mark, action: str) -> Finding:
    return _finding(
        "classified",
        action,
        "550 5.7.1",
        f'Thư có dấu độ mật "{mark.level}": tài liệu mật không được gửi qua thư điện tử',
        f'The message carries the classification mark "{mark.level}": classified'
        " documents may not be sent by e-mail",
        explain_vi=(
            f'Hệ thống tìm thấy dấu độ mật "{mark.level}" trong thư (dòng: "{mark.line}").'
            " Theo Quyết định 1480/QĐ-UBND, văn bản có độ mật (Mật, Tối mật, Tuyệt mật) không"
            " được gửi qua hệ thống thư điện tử công vụ. Thư đã được giữ lại và Trung tâm"
            " CNTT đã được thông báo. Nếu đây là nhầm lẫn, hãy liên hệ cán bộ chuyên trách"
            " CNTT của cơ quan hoặc Trung tâm để được xem xét."
        ),
        explain_en=(
            f'The system found the classification mark "{mark.level}" in the message (line:'
            f' "{mark.line}"). Classified documents may not be sent through the official mail'
            " system. The message is held and the IT centre has been told. If this is a"
            " mistake, contact your agency's IT officer or the centre."
        ),
        level=mark.level,
        line=mark.line,
    )


def _legacy(where: str, encoding: str, action: str) -> Finding:
    names = {"tcvn3": "TCVN3 (ABC)", "vni": "VNI", "viscii": "VISCII", "cp1258": "Windows-1258"}
    name = names.get(encoding, "UTF-8 bị đọc sai thành Latin-1")
    names_en = {
        "tcvn3": "the legacy encoding TCVN3 (ABC)",
        "vni": "the legacy encoding VNI",
        "viscii": "the legacy encoding VISCII",
        "cp1258": "the legacy encoding Windows-1258",
        "utf-8": "UTF-8 misread as Latin-1",
    }
    place_vi = "Tiêu đề" if where == "subject" else "Nội dung"
    place_en = "The subject" if where == "subject" else "The body"
    done_vi = "đã được chuyển sang Unicode" if action == "convert" else "cần chuyển sang Unicode"
    done_en = "was converted to Unicode" if action == "convert" else "should be Unicode"
    return _finding(
        "unicode",
        action,
        "",
        f"{place_vi} thư dùng bảng mã cũ {name}, {done_vi} (TCVN 6909:2001)",
        f"{place_en} used {names_en.get(encoding, encoding)} and {done_en} (TCVN 6909:2001)",
        explain_vi=(
            f"{place_vi} thư được soạn bằng bảng mã cũ {name}, người nhận có thể không đọc"
            f" được. Văn bản gửi qua hệ thống phải dùng bảng mã Unicode (TCVN 6909:2001);"
            f" hệ thống {'đã tự chuyển' if action == 'convert' else 'chưa chuyển'} sang"
            " Unicode. Hãy đặt bộ gõ (Unikey, EVKey) ở bảng mã Unicode."
        ),
        explain_en=(
            f"{place_en} was written in {names_en.get(encoding, encoding)}. Official mail must be"
            " in Unicode (TCVN 6909:2001); set your Vietnamese keyboard to Unicode."
        ),
        where=where,
        encoding=encoding,
    )


def _plain(html: str) -> str:
    """Text of an HTML body, line breaks kept where blocks end (stamps are per line)."""
    html = html[: BODY_SCAN_CHARS * 4]
    text = _TAGS.sub(" ", _BLOCK_TAGS.sub("\n", html))
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    return text


def _set_text(part: email.message.Message, text: str) -> None:
    """Replace a text part's content with ``text`` as UTF-8 (NFC), keeping its subtype."""
    subtype = part.get_content_subtype()
    for name in ("Content-Transfer-Encoding",):
        del part[name]
    part.set_payload(unicodedata.normalize("NFC", text), "utf-8")
    part.set_type(f"text/{subtype}")


def _labels(
    signatures: list[SignatureResult], document: Classification | None, findings: list[Finding]
) -> bytes:
    """govmail's own fields, written above the message's (R14, R16, warnings)."""
    fields = [("X-Govmail-Signature", s.header_value()) for s in signatures]
    if document is not None and document.signal != "none":  # recognised, not "other"
        value = document.type_id
        if document.number:
            value += f'; number="{_quoted(document.number)}"'
        fields.append(("X-Govmail-Document-Type", value))
    fields += [
        ("X-Govmail-Policy", f'{f.rule}; action={f.action}; reason="{_quoted(_ascii(f.en))}"')
        for f in findings
        if f.action in ("warn", "convert")
    ]
    lines = []
    for name, value in fields:
        if value.isascii() and len(value) < 900:
            lines.append(f"{name}: {value}\r\n")
        else:  # RFC 2047 words, folded: the field stays 7-bit for any relay
            encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
            lines.append(f"{name}: {encoded}\r\n")
    return "".join(lines).encode("ascii")


def _ascii(text: str) -> str:
    return ascii_vietnamese(text).replace("?", "")


def _quoted(value: str) -> str:
    cleaned = "".join(c for c in value if c >= " " and c != "\x7f")
    return cleaned.replace("\\", "\\\\").replace('"', '\\"')


def _without_labels(raw: bytes) -> bytes:
    """``raw`` without any govmail label fields a sender put in it."""
    end = header_end(raw)
    header = raw[:end]
    if b"x-govmail-" not in header.lower():
        return raw
    kept: list[bytes] = []
    skipping = False
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower().decode("ascii", "replace")
        skipping = name in LABEL_FIELDS
        if not skipping:
            kept.append(line)
    return b"".join(kept) + raw[end:]


def _serialise(message: email.message.Message) -> bytes:
    """``message`` back to bytes (after a conversion), CRLF, labels removed."""
    for name in LABEL_FIELDS:
        del message[name]
    out = BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=message.policy.clone(linesep="\r\n")).flatten(
        message
    )
    return out.getvalue()


def _message_id(message: email.message.Message) -> str | None:
    value = message.get("Message-ID")
    return " ".join(str(value).split()) or None if value else None
