"""R15: state-secret stamps (MẬT, TỐI MẬT, TUYỆT MẬT) in a subject or a document's text."""

from __future__ import annotations

import functools
import itertools
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

__all__ = ["Mark", "find_mark", "find_subject_mark"]

_LINE_SHOWN = 120  # characters of the stamp's line kept in a Mark
_MAX_FOUND = 5000  # occurrences of each spelling of a level word looked at in one text
_MAX_STAMP_WORDS = 8  # "TỐI MẬT – HỎA TỐC HẸN GIỜ" has 6

# Characters that draw a stamp's box (│ ┌ ─, block elements) or set it apart from the
# rest of its line (brackets, asterisks, punctuation, dashes).
_PUNCTUATION = "|¦[](){}<>*=_~#+:;,.!?/\\\"'“”‘’«»-‐‑‒–—―−•·"
_SEPARATOR_CLASS = "[\u2500-\u259f" + re.escape(_PUNCTUATION) + "]"
# Segment boundaries: a separator, a tab, or two spaces or more (PDF text layers and
# Word tables put the stamp beside the agency name that way). Whitespace gaps are
# captured: they join the words of a widely spaced stamp ("TỐI   MẬT").
_SPLIT = re.compile(_SEPARATOR_CLASS + r"|([^\S\n][^\S\n]+|\t)")
_SEPARATORS = re.compile(_SEPARATOR_CLASS)
# "[Mật] Kế hoạch…": a subject's bracketed segment counts in any case.
_BRACKETED = re.compile(r"[\[(]([^\[\]()]{1,60})[\])]")


@dataclass(frozen=True)
class Mark:
    """A secrecy stamp found: its level ("MẬT", "TỐI MẬT", "TUYỆT MẬT") and the line it
    was found on (stripped, at most 120 characters) to show the sender and the centre."""

    level: str
    line: str


@dataclass(frozen=True)
class _Marks:
    """secrecy_marks.toml compiled for matching."""

    rank: dict[str, int]  # level → seriousness, 0 the least
    needles: tuple[str, ...]  # characters of which one is in any text holding a level word
    literals: tuple[str, ...]  # a level's last word: upper, lower, title case, spaced
    upper: tuple[str, ...]  # the upper-case literals: a stamp holds one
    variants: tuple[str, ...]  # literals in every canonically equivalent spelling
    combining: tuple[str, ...]  # marks of its letters decomposed (NFD text holds one)
    stamp: re.Pattern[str]  # fullmatch on a segment's words: urgency* level urgency*
    stamp_any_case: re.Pattern[str]
    spelling_level: dict[str, str]  # spelling (upper case) → level
    compact: dict[str, str]  # spelling without spaces ("TỐIMẬT") → spelling
    field: re.Pattern[str]  # "Độ mật: Tối mật", any case
    label_only: re.Pattern[str]  # a line holding only the field's label, any case
    value_level: dict[str, str]  # case-folded spelling → level
    never_stamp: frozenset[str]  # word pairs: prose ("BÍ MẬT") and declassification


def find_mark(text: str, *, max_lines: int | None = None) -> Mark | None:
    """Return the most serious secrecy stamp in a body or document text, or None.

    A stamp is upper case, alone on its line or a separate segment of it (set apart by a
    box or bracket character, punctuation, a tab or two spaces), possibly with urgency
    words ("TỐI MẬT – KHẨN") and letter-spaced ("M Ậ T"); the form field
    "Độ mật: Tối mật" counts in any case. Prose never does ("mật khẩu", "BẢO VỆ BÍ MẬT
    NHÀ NƯỚC", "tài liệu mật"), nor "GIẢI MẬT". NFC and NFD text are treated alike.
    ``max_lines`` limits the search to the first lines (a document's header area).
    """
    marks = _marks()
    if max_lines is not None:
        text = _first_lines(text, max_lines)
    if not any(needle in text for needle in marks.needles):
        return None  # the common case, in microseconds
    # Text typed as "Unicode tổ hợp" or NFD holds combining marks; normalising 100 KB
    # costs milliseconds, so the decomposed spellings are searched and only the lines
    # found are normalised.
    decomposed = any(mark in text for mark in marks.combining)
    best: Mark | None = None
    seen: set[int] = set()
    top = len(marks.rank) - 1
    for position in _candidates(text, marks.variants if decomposed else marks.literals):
        start = text.rfind("\n", 0, position) + 1
        if start in seen:
            continue
        seen.add(start)
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        line = unicodedata.normalize("NFC", text[start:end]) if decomposed else text[start:end]
        # Only an upper-case level word makes a stamp; prose lines skip the segmenting.
        stamp = any(literal in line for literal in marks.upper) and _line_level(line, marks)
        level = _more_serious(stamp or None, _field_level(line, marks), marks)
        if marks.label_only.fullmatch(line):
            level = _more_serious(level, _next_line_value(text, end, marks), marks)
        if level is not None and (best is None or marks.rank[level] > marks.rank[best.level]):
            best = Mark(level, line.strip()[:_LINE_SHOWN])
            if marks.rank[level] == top:
                break
    return best


def find_subject_mark(subject: str) -> Mark | None:
    """Return the most serious secrecy stamp in a message subject, or None.

    A stamp segment counts as in a text ("TỐI MẬT: Kế hoạch…", "Kế hoạch … (TUYỆT MẬT)"),
    and so does a bracketed one in any case ("[Mật] Kế hoạch…"); "Đổi MẬT KHẨU" does not.
    """
    marks = _marks()
    if not any(needle in subject for needle in marks.needles):
        return None
    line = " ".join(unicodedata.normalize("NFC", subject).splitlines())
    level = _more_serious(_line_level(line, marks), _field_level(line, marks), marks)
    for found in _BRACKETED.finditer(line):
        stamp = marks.stamp_any_case.fullmatch(" ".join(found.group(1).split()))
        if stamp:
            level = _more_serious(level, marks.spelling_level[stamp["level"].upper()], marks)
    return None if level is None else Mark(level, line.strip()[:_LINE_SHOWN])


def _candidates(text: str, literals: tuple[str, ...]) -> list[int]:
    """Positions of ``literals`` (a level word as "MẬT", "mật", "Mật", "M Ậ T"...) in
    ``text``, in order: substring scans, far faster than a case-insensitive regex."""
    positions: list[int] = []
    for literal in literals:
        position = text.find(literal)
        count = 0
        while position >= 0 and count < _MAX_FOUND:
            positions.append(position)
            count += 1
            position = text.find(literal, position + len(literal))
    return sorted(positions)


def _line_level(line: str, marks: _Marks) -> str | None:
    """The most serious stamp among the segments of one line."""
    segments: list[tuple[str, bool]] = []  # text, joined to the previous by spaces only
    joined = False
    for index, piece in enumerate(_SPLIT.split(line)):
        if index % 2:  # a captured gap of spaces, or None for a separator character
            joined = joined and piece is not None
        elif piece and not piece.isspace():
            segments.append((piece, joined))
            joined = True
    best: str | None = None
    for index, (segment, joined) in enumerate(segments):
        if not any(literal in segment for literal in marks.upper):
            continue  # most segments: split into words only around a level word
        words = _words(segment, marks)
        level = _segment_level(words, marks)
        if level is None:
            continue
        if joined:
            before = _words(segments[index - 1][0], marks)
            wider = _segment_level(before + words, marks)  # "TỐI   MẬT"
            if wider is not None:
                level = _more_serious(level, wider, marks)
            elif f"{before[-1]} {words[0]}" in marks.never_stamp:  # "BẢO VỆ BÍ   MẬT"
                continue
        if index + 1 < len(segments) and segments[index + 1][1]:
            after = _words(segments[index + 1][0], marks)
            if f"{words[-1]} {after[0]}" in marks.never_stamp:  # "MẬT   KHẨU"
                continue
        best = _more_serious(best, level, marks)
    return best


def _words(segment: str, marks: _Marks) -> list[str]:
    words = segment.split()
    if len(words) > 1 and all(len(word) == 1 for word in words):  # "T Ố I M Ậ T"
        letters = "".join(words)
        return marks.compact.get(letters, letters).split()
    return words


def _segment_level(words: list[str], marks: _Marks) -> str | None:
    if len(words) > _MAX_STAMP_WORDS:
        return None
    found = marks.stamp.fullmatch(" ".join(words))
    return None if found is None else marks.spelling_level[found["level"]]


def _field_level(line: str, marks: _Marks) -> str | None:
    best: str | None = None
    for found in marks.field.finditer(line):
        value = " ".join(found["value"].casefold().split())
        best = _more_serious(best, marks.value_level[value], marks)
    return best


def _next_line_value(text: str, end: int, marks: _Marks) -> str | None:
    """The level in the line after a lone "Độ mật" label (a form laid out as a table)."""
    following = unicodedata.normalize("NFC", text[end + 1 : end + 400])
    for line in following.split("\n")[:3]:
        value = " ".join(_SEPARATORS.sub(" ", line).casefold().split())
        if value:
            return marks.value_level.get(value)
    return None


def _more_serious(first: str | None, second: str | None, marks: _Marks) -> str | None:
    if first is None or second is None:
        return first or second
    return first if marks.rank[first] >= marks.rank[second] else second


def _first_lines(text: str, count: int) -> str:
    position = -1
    for _ in range(max(count, 0)):
        position = text.find("\n", position + 1)
        if position < 0:
            return text
    return text[: max(position, 0)]


@functools.cache
def _marks() -> _Marks:
    raw = files("govmail.data").joinpath("secrecy_marks.toml").read_text(encoding="utf-8")
    return _compile(tomllib.loads(raw))


def _equivalents(text: str) -> set[str]:
    """Every canonically equivalent spelling of ``text``: "Ậ" is also "Â" + dot below
    (Unicode tổ hợp), "Ạ" + circumflex and "A" + both marks in either order."""
    spellings = {""}
    for char in text:
        decomposed = unicodedata.normalize("NFD", char)
        base, marks = decomposed[0], decomposed[1:]
        forms = {char, decomposed}
        for order in itertools.permutations(marks):
            for cut in range(len(order) + 1):
                head = unicodedata.normalize("NFC", base + "".join(order[:cut]))
                if len(head) == 1:
                    forms.add(head + "".join(order[cut:]))
        spellings = {spelling + form for spelling in spellings for form in forms}
    return spellings


def _nfc_words(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _alternation(phrases: list[str], *, gap: str = " ") -> str:
    """Phrases as a regex alternation, longest first (so "TỐI MẬT" beats "MẬT")."""
    ordered = sorted(set(phrases), key=len, reverse=True)
    return "|".join(gap.join(re.escape(word) for word in phrase.split()) for phrase in ordered)


def _compile(data: dict[str, Any]) -> _Marks:
    rank: dict[str, int] = {}
    spelling_level: dict[str, str] = {}
    for index, level in enumerate(data["level"]):
        name = _nfc_words(level["name"])
        rank[name] = index
        for spelling in level["spellings"]:
            spelling_level[_nfc_words(spelling).upper()] = name
    spellings = list(spelling_level)
    urgency = _alternation([_nfc_words(word).upper() for word in data["urgency"]])
    levels = _alternation(spellings)
    stamp = rf"(?:(?:{urgency}) )*(?P<level>{levels})(?: (?:{urgency}))*"
    # Texts are searched for the last word of a spelling (it is "MẬT" in all of them).
    last_words = sorted({spelling.split()[-1] for spelling in spellings})
    literals: set[str] = set()
    combining: set[str] = set()
    needles: set[str] = set()
    for word in last_words:
        # One character scan rules out most texts: a letter only Vietnamese has, or the
        # whole word when it is plain ASCII.
        special = [c for c in word + word.lower() if not c.isascii()]
        needles.update(special or (word, word.lower(), word.capitalize()))
        literals.update((word, word.lower(), word.capitalize()))
        if len(word) > 1:
            literals.add(" ".join(word))
        for char in unicodedata.normalize("NFD", word.lower() + word):
            if unicodedata.combining(char):
                combining.add(char)
    labels = _alternation(
        [_nfc_words(label).casefold() for label in data["field_labels"]], gap=r"[^\S\n]+"
    )
    values = _alternation([s.casefold() for s in spellings], gap=r"[^\S\n]+")
    never = [_nfc_words(p).upper() for p in (*data["prose_pairs"], *data["declassified"])]
    return _Marks(
        rank=rank,
        needles=tuple(sorted(needles | combining)),
        literals=tuple(sorted(literals)),
        upper=tuple(sorted(literal for literal in literals if literal.isupper())),
        variants=tuple(sorted({v for literal in literals for v in _equivalents(literal)})),
        combining=tuple(sorted(combining)),
        stamp=re.compile(stamp),
        stamp_any_case=re.compile(stamp, re.IGNORECASE),
        spelling_level=spelling_level,
        compact={spelling.replace(" ", ""): spelling for spelling in spellings},
        field=re.compile(
            rf"(?:{labels})(?:[^\S\n]*[:：][^\S\n]*|[^\S\n]{{2,}}|\t)(?P<value>{values})(?![^\W_])",
            re.IGNORECASE,
        ),
        label_only=re.compile(rf"[\W_]*(?:{labels})[\W_]*", re.IGNORECASE),
        value_level={spelling.casefold(): level for spelling, level in spelling_level.items()},
        never_stamp=frozenset(never),
    )
