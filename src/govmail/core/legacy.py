"""R12: detect legacy Vietnamese encodings and misread UTF-8, and convert them to Unicode NFC."""

from __future__ import annotations

import itertools
import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NamedTuple

from govmail.core.legacy_tables import TCVN3, VISCII, VNI_WINDOWS
from govmail.core.syllables import is_vietnamese_syllable

__all__ = [
    "ENCODINGS",
    "MAX_REPAIR_CHARS",
    "MAX_REPAIR_WORDS",
    "Repair",
    "decode_legacy",
    "encode_legacy",
    "repair",
]

ENCODINGS: Final = ("tcvn3", "vni", "viscii", "cp1258", "utf-8")


@dataclass(frozen=True)
class Repair:
    """Text that was in a legacy encoding (or mis-decoded UTF-8), converted to Unicode."""

    encoding: str  # "tcvn3" | "vni" | "viscii" | "cp1258" | "utf-8": what the text really was
    text: str  # the whole text, converted, NFC


# --- Bytes as a mail reader shows them --------------------------------------------------
# Legacy bytes reach us as a str decoded by a reader as cp1252 (Windows) or latin-1. cp1252
# leaves 0x81 0x8D 0x8F 0x90 0x9D undefined (readers fall back to the latin-1 C1 control),
# and a latin-1 reader gives C1 controls for the whole 0x80-0x9F row: accept both.
def _cp1252_char(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


_CP1252_VIEW: Final = "".join(_cp1252_char(b) for b in range(256))
_BYTE_OF: Final[dict[str, int]] = {chr(b): b for b in range(256)} | {
    c: b for b, c in enumerate(_CP1252_VIEW)
}
# The characters a single byte can have been shown as (beyond ASCII).
_SHOWN: Final = frozenset(c for c in _BYTE_OF if not c.isascii())
_TO_LATIN1: Final = str.maketrans({c: chr(b) for c, b in _BYTE_OF.items() if ord(c) != b})
_TO_CP1252: Final = str.maketrans({chr(b): c for b, c in enumerate(_CP1252_VIEW) if ord(c) != b})


def _shown_table(decoded: str) -> dict[int, str]:
    """translate() table: each shown character of a byte → that byte in the legacy table."""
    return {ord(c): decoded[b] for c, b in _BYTE_OF.items() if decoded[b] != c}


def _abc_repertoire(byte: int) -> bool:
    """Whether ABC text (TCVN3's VN3 subset) uses ``byte``: not for capitals with a tone,
    which only VN1 codes (at C0 controls, 0x80-0x9F and a few places above)."""
    char = TCVN3[byte]
    if byte < 0x80:
        return char.isascii()
    return byte >= 0xA0 and not (char.isupper() and _has_tone(char))


def _has_tone(char: str) -> bool:
    return any(c in "\u0300\u0301\u0303\u0309\u0323" for c in unicodedata.normalize("NFD", char))


_CP1258: Final = "".join(bytes([b]).decode("cp1258", "replace") for b in range(256))
# repair() reads TCVN3 as ABC text has it: a VISCII capital (Ế is 0x8A) must not pass for
# a TCVN3 VN1 capital (0x8A is É there), the two being read alike otherwise.
_TCVN3_ABC: Final = "".join(TCVN3[b] if _abc_repertoire(b) else _CP1252_VIEW[b] for b in range(256))
_TABLES: Final[dict[str, dict[int, str]]] = {
    "tcvn3": _shown_table(_TCVN3_ABC),
    "viscii": _shown_table(VISCII),
    # Undefined cp1258 bytes stay as the reader showed them.
    "cp1258": {k: v for k, v in _shown_table(_CP1258).items() if v != "\ufffd"},
}


# --- VNI: a base letter and mark bytes, seen through cp1252 -----------------------------
def _vni_sequences() -> dict[str, str]:
    """Every VNI spelling (as cp1252 shows it) → its letter: the 134 table letters, their
    marks in either case (capitals typed with lower-case marks), and â/ă/ê/ô with the
    tone as a separate mark ("aâù" as well as "aá" for ấ)."""
    table = {vni.decode("cp1252"): letter for letter, vni in VNI_WINDOWS.items()}
    sequences = dict(table)
    for shown, letter in table.items():
        if len(shown) > 1:
            base, marks = shown[0], shown[1:]
            sequences[base + marks.lower()] = letter
            sequences[base + marks.upper()] = letter
    tones = {"ù": "\u0301", "ø": "\u0300", "û": "\u0309", "õ": "\u0303", "ï": "\u0323"}
    for shown, letter in table.items():
        if len(shown) == 2 and shown[1] in "âÂêÊ":  # â ê ô ă and their capitals
            for mark, combining in tones.items():
                toned = unicodedata.normalize("NFC", letter + combining)
                for case_mark in (mark, mark.upper()):
                    sequences[shown + case_mark] = toned
                    sequences[shown[0] + shown[1].swapcase() + case_mark] = toned
    # Any vowel with a tone mark after it, also where VNI has a single byte for the letter
    # (ì í ỉ ĩ ị ỵ): converters differ, and "iù" can only mean í.
    bases = {c: c for c in "aeiouyAEIOUY"} | {"ô": "ơ", "ö": "ư", "Ô": "Ơ", "Ö": "Ư"}
    for shown_base, base in bases.items():
        for mark, combining in tones.items():
            toned = unicodedata.normalize("NFC", base + combining)
            for case_mark in (mark, mark.upper()):
                sequences.setdefault(shown_base + case_mark, toned)
    return sequences


_VNI_SEQUENCES: Final = _vni_sequences()
_VNI_TONE: Final = "ùøûõïÙØÛÕÏ"
_VNI_RE: Final = re.compile(
    f"[aeoAEO](?:[âÂ][{_VNI_TONE}]?|[áàåãäÁÀÅÃÄ])"
    f"|[aA](?:[êÊ][{_VNI_TONE}]?|[éèúüëÉÈÚÜË])"
    f"|[aeiouyAEIOUYôöÔÖ][{_VNI_TONE}]"
    "|[ñÑíìæóòîÍÌÆÓÒÎôöÔÖ]"
)


def _vni_letter(match: re.Match[str]) -> str:
    return _VNI_SEQUENCES.get(match.group(), match.group())


_TONE_MARKS: Final = "\u0300\u0301\u0303\u0309\u0323"


def _split_tone(char: str) -> tuple[str, str]:
    """'ặ' → ('ă', U+0323): the letter with its vowel mark, and its tone mark ('' if none).
    (In NFD the dot below sorts before the breve or circumflex, so it is not always last.)"""
    decomposed = unicodedata.normalize("NFD", char)
    tones = [c for c in decomposed if c in _TONE_MARKS]
    if len(decomposed) == 1 or len(tones) != 1:
        return char, ""
    rest = "".join(c for c in decomposed if c not in _TONE_MARKS)
    return unicodedata.normalize("NFC", rest), tones[0]


# --- TCVN3 capitals ---------------------------------------------------------------------
# ABC text has no codes for capitals with a tone: headings are set in an upper-case font
# (.VnTimeH) that draws the lower-case codes as capitals, so "BÁO CÁO" arrives as the bytes
# of "BáO CáO"; some converters write a capital as its base letter followed by the
# lower-case letter ("A" + "á" for "Á"). Both are turned back into capitals.
_VOWEL_CAPITALS: Final = "AĂÂEÊIOÔƠUƯY"
_TONED_LOWER: Final = frozenset(
    unicodedata.normalize("NFC", v + t) for v in "aăâeêioôơuưy" for t in _TONE_MARKS
)
_SPLIT_CAPITAL_RE: Final = re.compile(f"([{_VOWEL_CAPITALS}])([{''.join(_TONED_LOWER)}])")
_LETTERS_RE: Final = re.compile(r"[^\W\d_]{2,}")


def _join_capital(match: re.Match[str]) -> str:
    capital, toned = match.group(1), match.group(2)
    return toned.upper() if _split_tone(toned)[0] == capital.lower() else match.group()


def _capitals_word(match: re.Match[str]) -> str:
    word = _SPLIT_CAPITAL_RE.sub(_join_capital, match.group())
    # A word of capitals with lower-case legacy letters in it was set in a capitals font.
    capitals = sum(c.isupper() for c in word)
    if capitals >= 2 and not any(c.islower() and c.isascii() for c in word):
        return word.upper()
    return word


def _tcvn3_capitals(text: str) -> str:
    return _LETTERS_RE.sub(_capitals_word, text)


# --- Decoding one word as each encoding --------------------------------------------------
def _decode_tcvn3(word: str) -> str:
    return _tcvn3_capitals(unicodedata.normalize("NFC", word.translate(_TABLES["tcvn3"])))


def _decode_viscii(word: str) -> str:
    return word.translate(_TABLES["viscii"])


def _decode_cp1258(word: str) -> str:
    return unicodedata.normalize("NFC", word.translate(_TABLES["cp1258"]))


def _decode_vni(word: str) -> str:
    return unicodedata.normalize("NFC", _VNI_RE.sub(_vni_letter, word))


def _decode_utf8(word: str) -> str:
    if "\ufffd" in word:
        return _guess_utf8(word)
    try:
        decoded = word.translate(_TO_LATIN1).encode("latin-1").decode("utf-8")
    except UnicodeError:  # not UTF-8 (or not all bytes): leave the word as it is
        return word
    return unicodedata.normalize("NFC", decoded)


# A reader that decodes cp1252 with errors="replace" (RFC 2047 subjects) turns the five
# bytes cp1252 leaves undefined into U+FFFD, and UTF-8 uses them for common letters: ề
# (E1 BB 81), ờ (…9D), ọ (…8D), ỏ (…8F), Ố (…90), and Á Í Ý Đ. Tried in that order, the
# first that makes the word a syllable wins: "há»\ufffdp" can only be "họp"; "má»\ufffdi"
# is taken for "mời" though it could be "mọi" (a best guess, where the bytes are lost).
_UNDEFINED_CP1252: Final = "\x81\x9d\x8d\x8f\x90"


def _guess_utf8(word: str) -> str:
    holes = word.count("\ufffd")
    if holes > 2:
        return word
    pieces = word.split("\ufffd")
    for fill in itertools.product(_UNDEFINED_CP1252, repeat=holes):
        candidate = pieces[0] + "".join(
            c + piece for c, piece in zip(fill, pieces[1:], strict=True)
        )
        decoded = _decode_utf8(candidate)
        core = decoded.strip(_EDGE)
        if decoded != candidate and core and all(map(is_vietnamese_syllable, core.split())):
            return decoded
    return word


_DECODERS: Final[dict[str, Callable[[str], str]]] = {
    "tcvn3": _decode_tcvn3,
    "vni": _decode_vni,
    "viscii": _decode_viscii,
    "cp1258": _decode_cp1258,
    "utf-8": _decode_utf8,
}


# --- Signals: characters (or pairs) that correct text in any language rarely has ---------
# Latin-1 letters of correct Vietnamese (and of French, Spanish…), and typographic marks
# common in text pasted from Word: on their own they are no sign of a legacy encoding.
_ORDINARY: Final = frozenset("àáâãèéêìíòóôõùúýÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝ\u00a0“”‘’–—…•")


def _class(chars: set[str] | frozenset[str] | str) -> str:
    return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"


def _signal_chars() -> set[str]:
    """Shown characters that some legacy table turns into something else, or that UTF-8
    uses as a lead or continuation byte, except ordinary ones."""
    changed = {chr(k) for table in _TABLES.values() for k in table}
    vni = {c for sequence in _VNI_SEQUENCES for c in sequence if not c.isascii()}
    return ((changed | vni | {c for c, b in _BYTE_OF.items() if b >= 0x80}) & _SHOWN) - _ORDINARY


# Pairs that give away a legacy text made only of ordinary characters, each written as
# a look-around of one "anchor" character: the scan skips to anchors (the regex starts
# with their class), which keeps a 4 KB Vietnamese body near 0.1 ms.
_PAIRS: Final = (
    "(?<=[aeiouyôAEIOUYÔ][ùõÙÕ])",  # VNI sắc or ngã mark after a vowel: "aù"
    "(?<=[aeiouyâêôõýãAEIOUYÂÊÔÕÝÃ][ÌìÒò])",  # cp1258 tone after a vowel: "aì"
    "(?<=[aeAE][âáàãÂÁÀÃ])",  # VNI â ê with or without a tone: "aâ", "eá"
    "(?<=[oO][âÂ])",  # VNI ô
    "(?<=[aA][êéèúÊÉÈÚ])",  # VNI ă with or without a tone: "aê", "aé"
    "(?<=[ÂÃ][\u00a0“”‘’–—…•])",  # UTF-8 lead byte, continuation shown as ordinary
    "(?<=[a-zđ][ÈÉÊÌÒÓÔÕÝ])",  # TCVN3 lower case shown as Latin-1 capitals: "kÕt"
    "(?<=[àèìòùãõ])(?=[ptc])",  # huyền or ngã before a stop, as TCVN3 shows ự ố: "thùc"
    "(?<=[éêèí])(?=i)",  # TCVN3 ội ời ối ới: "néi", "mêi"
)
_ANCHORS: Final = "ùõÙÕìòÌÒáàãâÁÀÃÂêéèúÊÉÈÚ\u00a0“”‘’–—…•ÈÉÊÌÒÓÔÕÝàèìòùãõéêí"
_SIGNAL_RE: Final = re.compile(_class(_signal_chars()))
_PAIR_RE: Final = re.compile(_class(_ANCHORS) + "(?:" + "|".join(_PAIRS) + ")")

# A character no single byte is shown as: the line was decoded as Unicode, not as bytes
# (U+FFFD aside: a cp1252 reader puts it for the bytes cp1252 leaves undefined).
_UNICODE_RE: Final = re.compile(
    "[^\x00-\xff\ufffd" + "".join(sorted(_SHOWN - set(map(chr, range(256))))) + "]"
)
# Units whose symbols are VISCII letters (² is ỗ, ³ is Ỡ, ° is ồ, ± is ổ, µ is ộ).
_UNIT_RE: Final = re.compile("[kcdmµ]?m[²³]|°[CFK]?|±|µ[mgls]?")
_SPACE_RE: Final = re.compile(r"([ \t\r\f\v]+)")  # ASCII only: NBSP is a VISCII letter
_WORD_RUN_RE: Final = re.compile(r"[^\W\d_]+")
_DROP_ASCII: Final = dict.fromkeys(range(0x80))
_EDGE: Final = string.punctuation + string.digits + "“”‘’–—…•"

# Work is bounded (R12 runs on mail from the Internet too): the encoding is chosen on a
# sample of words, and a text longer than MAX_REPAIR_CHARS, or whose lines that could be
# legacy hold more than MAX_REPAIR_WORDS different words, is not repaired. A real legacy
# body of 64 KB holds about 2,000; ~20 µs each, the worst case stays near 0.1 s.
_SAMPLE_WORDS: Final = 32
MAX_REPAIR_CHARS: Final = 256 * 1024
MAX_REPAIR_WORDS: Final = 4000


def _plain(text: str) -> bool:
    """Printable ASCII: no legacy byte in it (VISCII and VN1 put capitals at C0 controls)."""
    return text.isascii() and text.isprintable()


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Frequent syllables of official mail: where two encodings both turn a short text into
# syllables (TCVN3 "kh¸nh d©n" reads as VISCII "khịnh dẹn"), real words decide.
_COMMON_SYLLABLES: Final = _word_set(
    "ái án bác bắc bài bạn bản báo bão bảo bảy bến bệnh bí bị biên biển biểu bình bổ bộ bồi "
    "bởi bốn bùi cá cả các cách cải cảm cán cần cảng cáo cấp câu cầu chăm chậm chân chất "
    "chế chí chỉ chị chiến chín chính chống chú chủ chữ chưa chúc chức chúng chuyên chuyển "
    "chuyện có cô cơ còn công cống cổng cộng cũ cư cụ cử của cục cùng cũng cuối cường cứu "
    "cựu đà đã dài đại đảm dân dẫn đán đang đăng đảng đẳng đặng đánh đào đảo đất dấu đâu "
    "đầu đây đầy dễ đề để đến đều đi địa dịch điểm điện điều đình định đó đô đỗ độ đỡ đoàn "
    "đốc đối đổi đơn đông đồng động dữ dự đủ đua dục đức dũng dụng dựng đúng được dưới "
    "dương dưỡng đường duyệt gì già giá giải giám giảng giáo giấy giờ giữa giúp gửi hà hải "
    "hán hạn hàng hành hệ hẹp hết hiểm hiện hiệp hiệu họ hồ hỗ hộ hoà hoá hoả hòa hóa hỏa "
    "hoạch hoàng học hội hơn họp hợp huế hùng hương hướng hưu hữu huyện huỳnh kế kết khẩn "
    "khánh khẩu khó khoản khoẻ khỏe không kiểm kiến kính kịp ký kỷ là lại làm lâm lần lập "
    "lê lễ lệ lên lịch liên liệt liệu lời lợi lớn lòng lớp lũ luật lúc luôn lương lượng lụt "
    "lưu lý mà mại mạng mật mắt mặt máy mẹ mềm miền mình môi mọi mỗi mới mời một mừng mươi "
    "mười muộn năm nạn nâng năng nẵng nào này nên nếu ngãi ngàn ngân ngắn ngày nghề nghệ "
    "nghỉ nghị nghĩa nghiệp nghìn ngô ngoại người nguyên nguyễn nhà nhằm nhân nhận nhập "
    "nhất nhiệm nhiên nhiều nhỏ như nhưng những niên nói nội nông nữ núi nước ô ở ơn ông "
    "phải phạm phần pháp phát phê phép phí phiếu phó phố phối phòng phú phụ phủ phương "
    "phường quả quân quảng quốc quý quyền quyết rác ràng rất rõ rồi rộng rừng ruộng sá sách "
    "sạch sân sản sát sáu sẽ sĩ sơ số sở sóc sớm sông sự sửa sức tác tài tại tải tám tăng "
    "tạo tất tàu tây tế tết thải thân tháng thành thấp thế thể thì thị thiên thơ thoả thỏa "
    "thời thôn thông thống thư thủ thứ thuận thực thuế thuốc thương thường thưởng thượng "
    "thuyền tỉ tịch tiên tiền tiếng tiếp tính tỉnh tô tổ tờ toàn toán tốc tôi tối tới tổng "
    "tốt trách trăm trân trần trận trật trẻ trên trì trí trị triển triệu trình trợ trọng "
    "trữ trực trước trường trưởng truyền tư từ tử tự tuấn tuần tục tức từng tuổi tuyến "
    "tuyển tuyệt tỷ ương uỷ ủy và vắc văn vấn vẫn vận vào vậy về vì vị việc viên viện võ vở "
    "với vốn vũ vụ vực vùng xã xấu xây xuất xuống xuyên ý yên yêu "
)


# --- Scoring ------------------------------------------------------------------------------
_GARBAGE, _OTHER, _PLAIN, _MARKED = -1, 0, 1, 2


def _score(token: str) -> int | None:
    """How Vietnamese a whitespace-separated token reads: a syllable with diacritics (2),
    without (1), letters that are no syllable (0), symbols inside letters (-1, the look of
    legacy bytes); None when it has no letters."""
    core = token.strip(_EDGE)
    if not core:
        return None
    # Shown characters are NFC, and so is what the decoders return.
    if not core.isalpha() and not core.isascii():
        beyond_ascii = core.translate(_DROP_ASCII)
        if not beyond_ascii.isalpha():
            return _GARBAGE
    runs = [core] if core.isalpha() else _WORD_RUN_RE.findall(core)
    if not runs:
        return None
    if all(is_vietnamese_syllable(run) for run in runs):
        return _PLAIN if core.isascii() else _MARKED
    return _OTHER


class _Outcome(NamedTuple):
    """What reading one word as an encoding does to it, as _repair_line counts it."""

    word: str  # the decoded word, or the word itself when decoding would make it worse
    changed: bool  # the encoding decodes it to something else (better or not)
    worse: bool  # …and that would read worse, so the word is kept
    scored: bool  # it has letters, before or after
    valid_before: bool  # a Vietnamese syllable as it is
    valid_after: bool  # a Vietnamese syllable as kept or replaced
    improved: bool  # its score rose
    gained: str  # the syllable with diacritics it became, of two letters or more, or ""
    common: bool  # …and that syllable is a frequent one
    from_garbage: bool  # …and it looked like legacy bytes before


class _Reading:
    """Reads words as one encoding, remembering each word's outcome and every score (a
    text repeats its words; this keeps a 4 KB legacy body to a few milliseconds)."""

    def __init__(self, encoding: str, scores: dict[str, int | None]) -> None:
        self.encoding = encoding
        self._decode = _DECODERS[encoding]
        self._outcomes: dict[str, _Outcome] = {}
        self._scores = scores

    def _score(self, token: str) -> int | None:
        if token in self._scores:
            return self._scores[token]
        score = self._scores[token] = _score(token)
        return score

    def read(self, word: str) -> _Outcome:
        outcome = self._outcomes.get(word)
        if outcome is None:
            outcome = self._outcomes[word] = self._read(word)
        return outcome

    def _read(self, word: str) -> _Outcome:
        before = self._score(word)
        decoded, kept, after = word, word, before
        if not _plain(word) and not _UNIT_RE.fullmatch(word.strip(_EDGE)):
            decoded = self._decode(word)
            if decoded != word:
                decoded_score = self._score(decoded)
                if (decoded_score or 0) >= (before or 0):  # else worse: keep the word
                    kept, after = decoded, decoded_score
        before_value = _OTHER if before is None else before
        after_value = _OTHER if after is None else after
        # A lone symbol that reads as a one-letter word (« as VISCII ề) proves nothing.
        syllable = kept.strip(_EDGE).lower()
        gained = after == _MARKED and before != _MARKED and len(syllable) > 1
        return _Outcome(
            word=kept,
            changed=decoded != word,
            worse=decoded != kept,
            scored=after is not None,
            valid_before=before_value >= _PLAIN,
            valid_after=after_value >= _PLAIN,
            improved=after is not None and after_value > before_value,
            gained=syllable if gained else "",
            common=gained and syllable in _COMMON_SYLLABLES,
            from_garbage=gained and before == _GARBAGE,
        )


class _LineRepair(NamedTuple):
    text: str
    marked: set[str]  # the Vietnamese syllables with diacritics it gained
    fit: int  # words that read better, less those the encoding would make worse
    common: set[str]  # the frequent syllables it gained


def _repair_line(line: str, reading: _Reading) -> _LineRepair | None:
    """The line decoded word by word, when that clearly makes it more Vietnamese: words
    that read better outnumber those that would read worse 3 to 2, syllables with
    diacritics are gained, and the line's share of Vietnamese syllables rises by a fifth
    to at least half (or two words that looked like legacy bytes became syllables: a
    legacy phrase inside English). A word that would read worse keeps its form."""
    parts = _SPACE_RE.split(line)
    words = valid_before = valid_after = changed = improved = worse = 0
    marked: set[str] = set()
    common: set[str] = set()
    from_garbage: set[str] = set()
    for index in range(0, len(parts), 2):  # even indexes are words, odd ones spaces
        outcome = reading.read(parts[index])
        parts[index] = outcome.word
        changed += outcome.changed
        worse += outcome.worse
        if outcome.scored:
            words += 1
            valid_before += outcome.valid_before
            valid_after += outcome.valid_after
            improved += outcome.improved
            if outcome.gained:
                marked.add(outcome.gained)
                if outcome.common:
                    common.add(outcome.gained)
                if outcome.from_garbage:
                    from_garbage.add(outcome.gained)
    if not changed or improved * 2 < worse * 3 or not marked:
        return None
    clear_rise = valid_after * 2 >= words and (valid_after - valid_before) * 5 >= words
    if not clear_rise and len(from_garbage) < 2:
        return None
    return _LineRepair("".join(parts), marked, improved - worse, common)


def _sample(lines: list[str], candidates: list[int]) -> list[str]:
    """Distinct non-ASCII words of the candidate lines, up to _SAMPLE_WORDS."""
    seen: dict[str, None] = {}
    for index in candidates:
        for word in lines[index].split():
            if not _plain(word):
                seen[word] = None
                if len(seen) >= _SAMPLE_WORDS:
                    return list(seen)
    return list(seen)


def repair(text: str) -> Repair | None:
    """The Unicode (NFC) form of ``text`` when it holds Vietnamese in a legacy encoding
    (TCVN3, VNI, VISCII, cp1258) or UTF-8 bytes, as read by a mail reader as cp1252 or
    latin-1; None when it needs no repair.

    Never changes correct Unicode (NFC or NFD), ASCII, or other languages. Each line is
    judged alone, so a legacy subject line inside ASCII or Unicode text is repaired and
    the rest left as it is: a line holding a character no byte is shown as (ạ, ư, an NFD
    mark) was decoded as Unicode and is left alone; any other line is decoded word by
    word and kept only when that clearly makes it Vietnamese (see _repair_line). The
    encoding that turns most of a sample of words into syllables with diacritics is
    tried on the whole text (with the runner-up when close, the better one winning); it
    must gain two different such syllables, so a single legacy word is left as it is.
    Units (m², °, ±) are never read as legacy letters. A text without a character (or
    pair) that legacy bytes show as returns None in microseconds; a text over
    MAX_REPAIR_CHARS characters, or MAX_REPAIR_WORDS different words in lines that could
    be legacy, is not repaired (work stays bounded on hostile input).
    """
    if text.isascii() or len(text) > MAX_REPAIR_CHARS:
        return None
    if _SIGNAL_RE.search(text) is None and _PAIR_RE.search(text) is None:
        return None
    lines = text.split("\n")
    candidates = [
        index
        for index, line in enumerate(lines)
        if not _plain(line.strip()) and _UNICODE_RE.search(line) is None
    ]
    if len({word for index in candidates for word in lines[index].split()}) > MAX_REPAIR_WORDS:
        return None
    sample = _sample(lines, candidates)
    scores: dict[str, int | None] = {}
    ranked: list[tuple[int, int, _Reading]] = []
    for order, encoding in enumerate(ENCODINGS):
        reading = _Reading(encoding, scores)
        gained = sum(bool(reading.read(word).gained) for word in sample)
        if gained:
            ranked.append((gained, -order, reading))
    ranked.sort(key=lambda item: item[:2], reverse=True)
    best: tuple[tuple[int, int], str, list[str]] | None = None
    for gained, _, reading in ranked[:2]:
        if best is not None and gained * 5 < ranked[0][0] * 4:
            break  # the runner-up is tried only when the sample could not tell them apart
        repaired = list(lines)
        marked: set[str] = set()
        common: set[str] = set()
        fit = 0
        for index in candidates:
            result = _repair_line(lines[index], reading)
            if result is not None:
                repaired[index] = result.text
                marked |= result.marked
                common |= result.common
                fit += result.fit
        # Between two encodings, the better fit wins: more words read better and fewer
        # worse (TCVN3 read as VISCII turns "b¸o" into "bịo"), frequent words counting
        # twice (VISCII would read TCVN3 "kh¸nh d©n" as the syllables "khịnh dẹn").
        key = (fit + len(common), len(marked))
        if len(marked) >= 2 and (best is None or key > best[0]):
            best = (key, reading.encoding, repaired)
    if best is None:
        return None
    fixed = unicodedata.normalize("NFC", "\n".join(best[2]))
    return Repair(best[1], fixed) if fixed != text else None


# --- Bytes --------------------------------------------------------------------------------
# decode_legacy's tables: byte (as a latin-1 character) → character in the encoding.
_BYTE_TABLES: Final[dict[str, dict[int, str]]] = {
    name: {b: c for b, c in enumerate(table) if ord(c) != b}
    for name, table in (("tcvn3", TCVN3), ("viscii", VISCII))
}


def decode_legacy(data: bytes, encoding: str) -> str:
    """``data`` in ``encoding`` (one of ENCODINGS) → NFC text.

    TCVN3 is read as TCVN 5712:1993 VN1 (a superset of the ABC fonts' VN3), and words set
    in an upper-case font come back as capitals ("B¸O" → "BÁO"). Bytes cp1258 or UTF-8
    leave undefined become U+FFFD. Raises ValueError for an unknown encoding.
    """
    if encoding == "tcvn3":
        text = data.decode("latin-1").translate(_BYTE_TABLES["tcvn3"])
        return _tcvn3_capitals(unicodedata.normalize("NFC", text))
    if encoding == "viscii":
        return unicodedata.normalize(
            "NFC", data.decode("latin-1").translate(_BYTE_TABLES["viscii"])
        )
    if encoding == "vni":
        return _decode_vni(data.decode("latin-1").translate(_TO_CP1252))
    if encoding in ("cp1258", "utf-8"):
        return unicodedata.normalize("NFC", data.decode(encoding, "replace"))
    raise ValueError(f"unknown legacy encoding {encoding!r}; expected one of {ENCODINGS}")


_TONE_BYTES_TCVN3: Final = {TCVN3[b]: b for b in range(0xB0, 0xB5)}  # combining marks


def _tcvn3_encoder() -> dict[str, bytes]:
    """Character → TCVN3 bytes within the ABC (VN3) repertoire: lower-case letters, the
    seven base capitals Ă Â Ê Ô Ơ Ư Đ and the combining tones; ASCII where VN1 keeps it."""
    encoder: dict[str, bytes] = {}
    for byte, char in enumerate(TCVN3):
        if byte < 0x80 and char.isascii():
            encoder[char] = bytes([byte])
        elif byte >= 0xA0 and (not char.isupper() or char in "ĂÂÊÔƠƯĐ"):
            encoder.setdefault(char, bytes([byte]))
    return encoder


_ENCODERS: Final[dict[str, dict[str, bytes]]] = {
    "tcvn3": _tcvn3_encoder(),
    "viscii": {c: bytes([b]) for b, c in enumerate(VISCII)},
    "vni": {chr(b): bytes([b]) for b in range(0x80)} | VNI_WINDOWS,
}


def encode_legacy(text: str, encoding: str) -> bytes:
    """``text`` → bytes in ``encoding`` (one of ENCODINGS), the reverse of decode_legacy.

    TCVN3 output stays within the ABC fonts' repertoire: a capital with a tone is its
    base capital followed by the combining tone byte ("Á" → b"A\\xb3"). cp1258 writes
    tones as combining bytes where it has no precomposed letter. Raises ValueError for a
    character the encoding cannot hold, or an unknown encoding.
    """
    text = unicodedata.normalize("NFC", text)
    if encoding == "utf-8":
        return text.encode("utf-8")
    if encoding == "cp1258":
        return b"".join(_encode_char_cp1258(c) for c in text)
    encoder = _ENCODERS.get(encoding)
    if encoder is None:
        raise ValueError(f"unknown legacy encoding {encoding!r}; expected one of {ENCODINGS}")
    out = bytearray()
    for char in text:
        code = encoder.get(char)
        if code is None and encoding == "tcvn3":
            code = _encode_tcvn3_decomposed(char, encoder)
        if code is None:
            raise ValueError(f"{encoding} cannot encode {char!r} (U+{ord(char):04X})")
        out += code
    return bytes(out)


def _encode_tcvn3_decomposed(char: str, encoder: dict[str, bytes]) -> bytes | None:
    base, tone = _split_tone(char)
    if not tone or base not in encoder:
        return None
    return encoder[base] + bytes([_TONE_BYTES_TCVN3[tone]])


def _encode_char_cp1258(char: str) -> bytes:
    try:
        return char.encode("cp1258")
    except UnicodeEncodeError:
        base, tone = _split_tone(char)
        if not tone:
            raise ValueError(f"cp1258 cannot encode {char!r} (U+{ord(char):04X})") from None
        try:
            return base.encode("cp1258") + tone.encode("cp1258")
        except UnicodeEncodeError:
            raise ValueError(f"cp1258 cannot encode {char!r} (U+{ord(char):04X})") from None
