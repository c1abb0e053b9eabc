"""R13: a sent message's subject must be its trích yếu (summary) in Vietnamese with diacritics."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from govmail.core.legacy import repair
from govmail.core.syllables import has_vietnamese_marks, is_vietnamese_syllable

__all__ = ["SubjectProblem", "check_subject"]


@dataclass(frozen=True)
class SubjectProblem:
    """Why a subject falls short of the rule, for the sender (``vi``) and the log (``en``).

    The policy decides the action per kind; the defaults are: "empty" rejects,
    "not_vietnamese" and "no_diacritics" warn.
    """

    kind: str  # "empty" | "not_vietnamese" | "no_diacritics"
    vi: str
    en: str


# Texts in plain ASCII quotes: SMTP replies without SMTPUTF8 carry them through
# ascii_vietnamese(), which would turn curly quotes into "?".
_EMPTY: Final = SubjectProblem(
    "empty",
    "Thư chưa có tiêu đề. Hãy ghi trích yếu nội dung thư bằng tiếng Việt có dấu "
    '(ví dụ: "Giấy mời họp giao ban tuần 45").',
    "The message has no subject. Write a summary of its content in Vietnamese with "
    'diacritics (e.g. "Giấy mời họp giao ban tuần 45").',
)
_NOT_VIETNAMESE: Final = SubjectProblem(
    "not_vietnamese",
    "Tiêu đề thư phải là trích yếu nội dung bằng tiếng Việt có dấu "
    '(ví dụ: "Giấy mời họp giao ban tuần 45").',
    "The subject must summarise the content in Vietnamese with diacritics "
    '(e.g. "Giấy mời họp giao ban tuần 45").',
)
_ONLY_REFERENCE: Final = SubjectProblem(
    "not_vietnamese",
    "Tiêu đề thư chỉ có số, ký hiệu văn bản. Hãy ghi thêm trích yếu nội dung bằng tiếng "
    'Việt có dấu (ví dụ: "Số 123/UBND-KT về việc triển khai thư điện tử công vụ").',
    "The subject holds only a document number or abbreviation. Add a summary of the "
    'content in Vietnamese with diacritics (e.g. "Số 123/UBND-KT về việc triển khai thư '
    'điện tử công vụ").',
)
_NO_DIACRITICS: Final = SubjectProblem(
    "no_diacritics",
    "Tiêu đề thư viết tiếng Việt không dấu. Hãy viết có dấu (Unicode) để người nhận đọc "
    "đúng và tìm kiếm được thư.",
    "The subject is Vietnamese without diacritics. Write it with diacritics (Unicode) so "
    "that recipients read it right and can find the message.",
)

# Reply and forward prefixes of mail clients in Vietnamese, English and neighbouring
# locales (TL: Trả lời, AW/WG German, SV/VS Nordic, TR French), with counters ("Re[2]:"),
# and bracketed tags added by gateways or lists ("[EXTERNAL]", "[Bên ngoài]"). "TB:" and
# "CT:" are kept: they are the abbreviations of Thông báo and Chỉ thị, part of a summary.
_PREFIX_RE: Final = re.compile(
    r"\s*(?:\[[^\[\]]{0,80}\]"
    r"|(?:re|fw|fwd|aw|wg|sv|vs|tr|tl|trả lời|tra loi|chuyển tiếp|chuyen tiep)"
    r"\s*(?:\[\d{1,4}\]|\(\d{1,4}\))?\s*[:：])",
    re.IGNORECASE,
)
# A document's number and symbol (Số: 123/UBND-KT, 08/2014/QĐ-UBND, 45/GM-UBND): it
# names a document but does not say what it is about.
_REFERENCE_RE: Final = re.compile(
    r"(?:\bs[ốo]\s*:?\s*)?\b\d+(?:/\d{4})?/[^\W\d_][\w.\-]*|\bs[ốo]\s*:?\s*\d+\b",
    re.IGNORECASE,
)
_WORD_RE: Final = re.compile(r"[^\W\d_]+")

# Share of words that must be Vietnamese syllables: with diacritics, half (a subject may
# name a project or a foreign partner); without, more, because short English words are
# Vietnamese syllables too ("the", "to", "in").
_MARKED_SHARE: Final = 0.5
_PLAIN_SHARE: Final = 0.7
# A summary is judged on its first characters (RFC 5322 lines stop at 998 anyway).
_MAX_JUDGED: Final = 1000


def _strip_prefixes(subject: str) -> str:
    position = 0
    while (match := _PREFIX_RE.match(subject, position)) is not None:
        position = match.end()
    return subject[position:].strip()


def _is_abbreviation(word: str) -> bool:
    """UBND, HĐND, CNTT, KT: upper-case, short, and no syllable."""
    return 2 <= len(word) <= 5 and word.isupper() and not is_vietnamese_syllable(word)


def check_subject(subject: str) -> SubjectProblem | None:
    """Judge a decoded subject: None when it reads as a Vietnamese summary with diacritics.

    Reply and forward prefixes and bracketed tags are left out first; a subject with
    nothing else (or only punctuation) is "empty". A subject in a legacy encoding (TCVN3,
    VNI…) is judged as R12 would convert it. Document numbers ("Số 123/UBND-KT") and
    upper-case abbreviations (UBND, CNTT) are not words of the summary: a subject made
    only of them is "not_vietnamese", with a text asking for the summary beside the
    number. Otherwise the words are judged by the share that are Vietnamese syllables:
    with diacritics, at least half passes; without any diacritics, seven in ten are
    "no_diacritics", fewer "not_vietnamese".
    """
    subject = subject[:_MAX_JUDGED]
    legacy = repair(subject)
    text = unicodedata.normalize("NFC", legacy.text if legacy else subject)
    # One space between words also keeps the patterns' adjacent \s* from backtracking.
    text = _strip_prefixes(" ".join(text.split()))
    if not any(c.isalnum() for c in text):
        return _EMPTY
    summary = _REFERENCE_RE.sub(" ", text)
    words = [w for w in _WORD_RE.findall(summary) if not _is_abbreviation(w)]
    if not words:
        return _ONLY_REFERENCE
    share = sum(map(is_vietnamese_syllable, words)) / len(words)
    if has_vietnamese_marks(" ".join(words)):
        return None if share >= _MARKED_SHARE else _NOT_VIETNAMESE
    return _NO_DIACRITICS if share >= _PLAIN_SHARE else _NOT_VIETNAMESE
