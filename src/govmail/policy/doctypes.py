"""R14: the type of a sent document (giấy mời, báo cáo tuần, công văn…) from its number,
subject, file names and first page; the list of types is data (document_types.toml)."""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from govmail.core.errors import InvalidInput
from govmail.core.vietnamese import fold

__all__ = ["Classification", "DocumentType", "DocumentTypes"]

_FIRST_TEXT_CHARS = 8000  # the first page's head: number, header and title lines
_TITLE_LINES = 60
_MAX_PHRASE_WORDS = 12

# Words for keyword matching: runs of letters, or of digits ("GM-123" → GM, 123).
_TOKEN = re.compile(r"[^\W\d_]+|\d+")
# "Số: 123/GM-UBND", "Số: 08/2014/QĐ-UBND" at the start of a line or of a column (two
# spaces or a tab before it): a document's own number, not "Quyết định số 1480/QĐ-UBND"
# cited in its text. Bounded quantifiers only: the input is untrusted.
_TEXT_NUMBER = re.compile(
    r"(?:^|(?<=\s\s)|(?<=\t))[ \t]{0,8}(?:Số|SỐ|So|SO)[ \t]{0,3}[:.]?[ \t]{0,3}"
    r"(\d{1,7})[ \t]{0,2}/[ \t]{0,2}([^\s,;:()\[\]]{1,60})",
    re.MULTILINE,
)
# "Giấy mời 123/GM-UBND" in a subject: the code must start with a letter (not a date).
_INLINE_NUMBER = re.compile(r"(?<![\w/])(\d{1,7})/((?:\d{4}/)?[^\W\d_][^\s,;:()\[\]]{0,60})")
_GAP = re.compile(r"\s{2,}|\t")
_SLUG = re.compile(r"[a-z0-9-]{1,40}")
_FILE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")

# Old and new tone placement ("hòa"/"hoà", "thủy"/"thuỷ") spell the same word: keyword
# words are compared with the tone on the second vowel.
_TONES = ("\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
_TONE_PLACEMENT = {
    unicodedata.normalize("NFC", first + tone + second): (
        unicodedata.normalize("NFC", first + second + tone)
    )
    for first, second in (("o", "a"), ("o", "e"), ("u", "y"))
    for tone in _TONES
}
_OLD_TONE = re.compile("|".join(_TONE_PLACEMENT))

_TOP_KEYS = frozenset({"default", "number_without_type", "ignore", "type"})
_TYPE_KEYS = frozenset({"id", "name", "abbreviations", "keywords", "fallback_keywords"})


@dataclass(frozen=True)
class DocumentType:
    """One type of document: ``id`` an ASCII slug ("giay-moi"), ``name`` its Vietnamese
    name, ``abbreviations`` as used in document numbers ("GM"), ``keywords`` naming it
    in subjects, file names and title lines, ``fallback_keywords`` counting only when
    nothing else names a type ("V/v")."""

    id: str
    name: str
    abbreviations: tuple[str, ...]
    keywords: tuple[str, ...]
    fallback_keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Classification:
    """The type of a sent message and what decided it.

    ``signal`` is "number", "subject", "filename", "text" or "none"; ``number`` is the
    document number found ("123/GM-UBND", "08/2014/QĐ-UBND"), whatever decided the type.
    """

    type_id: str
    name: str
    number: str | None
    signal: str


@dataclass(frozen=True)
class _Word:
    folded: str  # without diacritics, lower case
    exact: str | None  # lower case with diacritics (canonical tone place); None if typed without


@dataclass(frozen=True)
class _Number:
    text: str  # "123/GM-UBND"
    types: tuple[str, ...]  # type ids its abbreviation names; () for an agency code


class _Matcher:
    """Finds keyword phrases in a list of words: the earliest, then the longest."""

    def __init__(self, phrases: Sequence[tuple[tuple[_Word, ...], str | None]]) -> None:
        self._by_first: dict[str, list[tuple[tuple[_Word, ...], str | None]]] = {}
        for words, type_id in sorted(phrases, key=lambda phrase: -len(phrase[0])):
            self._by_first.setdefault(words[0].folded, []).append((words, type_id))

    def hits(self, words: Sequence[_Word], *, at_start: bool = False) -> Iterator[str]:
        """Type ids named in ``words``, in order; a phrase of type None (an agency name
        such as "Sở Kế hoạch và Đầu tư") hides the keywords inside it."""
        index = 0
        while index < len(words):
            found = self._longest(words, index)
            if found is None:
                if at_start:
                    return
                index += 1
                continue
            length, type_id = found
            if type_id is not None:
                yield type_id
            if at_start:
                return
            index += length

    def _longest(self, words: Sequence[_Word], index: int) -> tuple[int, str | None] | None:
        for phrase, type_id in self._by_first.get(words[index].folded, ()):
            if index + len(phrase) <= len(words) and all(
                _same_word(words[index + k], word) for k, word in enumerate(phrase)
            ):
                return len(phrase), type_id
        return None


class DocumentTypes:
    """The province's document types, ready to classify messages (see ``load``)."""

    def __init__(
        self,
        types: Sequence[DocumentType],
        *,
        default: str,
        number_without_type: str | None = None,
        ignore: Sequence[str] = (),
        source: str = "document_types.toml",
    ) -> None:
        ids = [t.id for t in types]
        for ref, key in ((default, "default"), (number_without_type, "number_without_type")):
            if ref is not None and ref not in ids:
                raise _invalid(
                    source,
                    f"'{key}' chỉ đến loại '{ref}' không được khai báo",
                    f"'{key}' refers to type '{ref}', which is not declared",
                )
        self.types: tuple[DocumentType, ...] = tuple(types)
        self._by_id = {t.id: t for t in types}
        self._default = default
        self._untyped = number_without_type
        strong: list[tuple[tuple[_Word, ...], str | None]] = []
        weak: list[tuple[tuple[_Word, ...], str | None]] = []
        self._exact_abbr: dict[str, list[str]] = {}
        folded_abbr: dict[str, list[str]] = {}
        for doc_type in types:
            strong += [(_phrase(k), doc_type.id) for k in doc_type.keywords]
            weak += [(_phrase(k), doc_type.id) for k in doc_type.fallback_keywords]
            for abbreviation in doc_type.abbreviations:
                key = unicodedata.normalize("NFC", abbreviation).upper()
                self._exact_abbr.setdefault(key, []).append(doc_type.id)
                folded_abbr.setdefault(fold(abbreviation).upper(), []).append(doc_type.id)
        # A code typed without Đ ("QD") finds its type when only one abbreviation folds
        # to it ("ĐA" and "DA" both fold to "DA": the exact one decides).
        self._folded_abbr = {
            key: type_ids for key, type_ids in folded_abbr.items() if len(set(type_ids)) == 1
        }
        ignored: list[tuple[tuple[_Word, ...], str | None]] = [
            (_phrase(phrase), None) for phrase in ignore
        ]
        self._strong = _Matcher(strong + ignored)
        self._weak = _Matcher(weak + ignored)

    @classmethod
    def load(cls, path: Path | None = None) -> DocumentTypes:
        """The types in the TOML file ``path`` (None: the built-in document_types.toml).

        Raises InvalidInput, naming the file and the problem, when it cannot be read,
        is not TOML, or does not describe types as document_types.toml does.
        """
        if path is None:
            source = "document_types.toml"
            raw = files("govmail.data").joinpath(source).read_text(encoding="utf-8")
        else:
            source = str(path)
            try:
                raw = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise _invalid(
                    source, f"không đọc được tệp ({exc})", f"unreadable ({exc})"
                ) from exc
        try:
            data = tomllib.loads(raw)
        except tomllib.TOMLDecodeError as exc:
            raise _invalid(source, f"sai cú pháp TOML: {exc}", f"not valid TOML: {exc}") from exc
        return _from_toml(data, source)

    def get(self, type_id: str) -> DocumentType:
        """The type ``type_id``; KeyError when it is not declared."""
        return self._by_id[type_id]

    def classify(self, subject: str, filenames: Sequence[str], first_text: str) -> Classification:
        """The type of a message from its subject, attachment names and the text of its
        first attachment's first page.

        Precedence: a document number whose abbreviation names a type (first-page text,
        then subject); subject keywords; a number that names no type (an agency code:
        a công văn); file names (keywords, or an abbreviation beside digits as in
        "GM-123.pdf"); the title line of the first page ("GIẤY MỜI"); fallback keywords
        ("V/v …") in the subject, then at the start of a first-page line; else the
        default type.
        """
        subject = unicodedata.normalize("NFC", subject)
        head = unicodedata.normalize("NFC", first_text[:_FIRST_TEXT_CHARS])
        numbers = [*_numbers(_TEXT_NUMBER, head, self), *_numbers(_INLINE_NUMBER, subject, self)]
        number = next((n for n in numbers if n.types), None) or next(iter(numbers), None)
        number_text = number.text if number else None
        subject_words = _words(subject)
        found: str | None

        # Step by step, each from the strongest signal to the weakest.
        if number and number.types:
            chosen = number.types[0]
            if len(number.types) > 1:  # BC: báo cáo, báo cáo tuần or tháng?
                named = set(self._named(subject_words, filenames, head))
                chosen = next((t for t in number.types[1:] if t in named), chosen)
            return self._result(chosen, number_text, "number")
        found = next(self._strong.hits(subject_words), None)
        if found:
            return self._result(found, number_text, "subject")
        if number and self._untyped:
            return self._result(self._untyped, number_text, "number")
        found = next((t for name in filenames for t in self._file_types(name)), None)
        if found:
            return self._result(found, number_text, "filename")
        found = next(self._title_types(head, self._strong), None)
        if found:
            return self._result(found, number_text, "text")
        found = next(self._weak.hits(subject_words), None)
        if found:
            return self._result(found, number_text, "subject")
        found = next(self._title_types(head, self._weak, upper_only=False), None)
        if found:
            return self._result(found, number_text, "text")
        return self._result(self._default, number_text, "none")

    def abbreviation_types(self, code: str) -> tuple[str, ...]:
        """Type ids whose number abbreviation is ``code`` ("GM", "QĐ", "QD"), or ()."""
        key = unicodedata.normalize("NFC", code).upper()
        found = self._exact_abbr.get(key) or self._folded_abbr.get(fold(code).upper(), [])
        return tuple(found)

    def _named(self, subject_words: list[_Word], filenames: Sequence[str], head: str) -> list[str]:
        named = list(self._strong.hits(subject_words))
        named += self._title_types(head, self._strong)
        for name in filenames:
            named += self._file_types(name)
        return named

    def _file_types(self, filename: str) -> Iterator[str]:
        stem = _FILE_EXTENSION.sub("", unicodedata.normalize("NFC", filename))
        tokens = _TOKEN.findall(stem)
        words = [_word(token) for token in tokens]
        yield from self._strong.hits(words)
        for index, token in enumerate(tokens):
            if token.isdigit() or len(token) > 5:
                continue
            beside = tokens[index - 1 : index] + tokens[index + 1 : index + 2]
            if any(other.isdigit() for other in beside):  # "GM-123", "123_QD_UBND"
                yield from self.abbreviation_types(token)[:1]

    def _title_types(
        self, head: str, matcher: _Matcher, *, upper_only: bool = True
    ) -> Iterator[str]:
        """Types named at the start of a line (or column) of the first page: the title
        "GIẤY MỜI", "KẾ HOẠCH …" is upper case; the summary "V/v …" is not."""
        for line in head.split("\n", _TITLE_LINES)[:_TITLE_LINES]:
            if len(line) > 300:
                continue
            for segment in _GAP.split(line):
                if upper_only and (segment.upper() != segment or segment.lower() == segment):
                    continue
                words = _words(segment)
                if words:
                    yield from matcher.hits(words, at_start=True)

    def _result(self, type_id: str, number: str | None, signal: str) -> Classification:
        return Classification(type_id, self._by_id[type_id].name, number, signal)


def _numbers(pattern: re.Pattern[str], text: str, types: DocumentTypes) -> Iterator[_Number]:
    for found in pattern.finditer(text):
        code = found.group(2).rstrip(".-/")
        parts = code.split("/")
        year = len(parts) > 1 and len(parts[0]) == 4 and parts[0].isdigit()
        first = parts[1 if year else 0].split("-")[0]
        if not first:
            continue
        text_form = f"{found.group(1)}/{code}"
        type_ids = types.abbreviation_types(first)
        if type_ids:
            yield _Number(text_form, type_ids)
        elif not year and first.isalpha() and first.isupper() and len(first) >= 2:
            yield _Number(text_form, ())  # an agency's code: "UBND-KT"


def _same_word(word: _Word, keyword: _Word) -> bool:
    # A word typed without diacritics matches on its letters; one typed with them must
    # carry the keyword's ("thủ công" is not "thư công").
    return word.folded == keyword.folded and (word.exact is None or word.exact == keyword.exact)


def _words(text: str) -> list[_Word]:
    return [_word(token) for token in _TOKEN.findall(text)]


@functools.lru_cache(maxsize=8192)
def _word(token: str) -> _Word:
    folded = fold(token).replace(" ", "")
    lower = token.casefold()
    if lower == folded:
        return _Word(folded, None)
    return _Word(folded, _OLD_TONE.sub(lambda m: _TONE_PLACEMENT[m.group()], lower))


def _phrase(text: str) -> tuple[_Word, ...]:
    words = tuple(_word(token) for token in _TOKEN.findall(unicodedata.normalize("NFC", text)))
    # Keyword words always carry their diacritics, so a text word typed with others
    # ("thủ" against "thư") is told apart.
    return tuple(_Word(w.folded, w.exact or w.folded) for w in words)


def _invalid(source: str, problem_vi: str, problem_en: str) -> InvalidInput:
    return InvalidInput(
        f"Tệp danh mục loại văn bản {source}: {problem_vi}",
        f"Document types file {source}: {problem_en}",
        file=source,
    )


def _from_toml(data: dict[str, Any], source: str) -> DocumentTypes:
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _invalid(source, f"khóa không hợp lệ {unknown}", f"unknown keys {unknown}")
    entries = data.get("type")
    if not isinstance(entries, list) or not entries:
        raise _invalid(
            source, "không khai báo loại văn bản nào ([[type]])", "declares no type ([[type]])"
        )
    types: list[DocumentType] = []
    for position, entry in enumerate(entries, start=1):
        types.append(_type_from_toml(entry, position, source))
    ids = [t.id for t in types]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise _invalid(source, f"mã loại bị trùng: {duplicates}", f"duplicate ids: {duplicates}")
    default = data.get("default")
    untyped = data.get("number_without_type")
    if not isinstance(default, str):
        raise _invalid(
            source, "thiếu 'default' (loại mặc định)", "'default' (the default type) is missing"
        )
    if untyped is not None and not isinstance(untyped, str):
        raise _invalid(
            source, "'number_without_type' phải là chuỗi", "'number_without_type' must be a string"
        )
    ignore = _strings(data.get("ignore", []), "ignore", source)
    return DocumentTypes(
        types, default=default, number_without_type=untyped, ignore=ignore, source=source
    )


def _type_from_toml(entry: object, position: int, source: str) -> DocumentType:
    where_vi = f"loại văn bản thứ {position}"
    where_en = f"type #{position}"
    if not isinstance(entry, dict):
        raise _invalid(source, f"{where_vi} phải là bảng [[type]]", f"{where_en} is not a table")
    unknown = sorted(set(entry) - _TYPE_KEYS)
    if unknown:
        raise _invalid(
            source,
            f"{where_vi}: khóa không hợp lệ {unknown}",
            f"{where_en}: unknown keys {unknown}",
        )
    type_id = entry.get("id")
    name = entry.get("name")
    if not isinstance(type_id, str) or not _is_slug(type_id):
        raise _invalid(
            source,
            f"{where_vi}: 'id' phải là chuỗi ASCII thường, số và dấu gạch nối (vd. 'giay-moi')",
            f"{where_en}: 'id' must be lower-case ASCII letters, digits and hyphens",
        )
    if not isinstance(name, str) or not name.strip():
        raise _invalid(
            source,
            f"{where_vi} ('{type_id}'): thiếu 'name'",
            f"{where_en} ('{type_id}'): no 'name'",
        )
    abbreviations = _strings(entry.get("abbreviations", []), f"{type_id}.abbreviations", source)
    for abbreviation in abbreviations:
        if not abbreviation.isalpha():
            raise _invalid(
                source,
                f"'{type_id}': chữ viết tắt '{abbreviation}' chỉ được gồm chữ cái",
                f"'{type_id}': abbreviation '{abbreviation}' must be letters only",
            )
    keywords = _strings(entry.get("keywords", []), f"{type_id}.keywords", source)
    fallback = _strings(entry.get("fallback_keywords", []), f"{type_id}.fallback_keywords", source)
    for keyword in (*keywords, *fallback):
        if not _TOKEN.search(keyword) or len(_TOKEN.findall(keyword)) > _MAX_PHRASE_WORDS:
            raise _invalid(
                source,
                f"'{type_id}': từ khóa '{keyword}' phải có từ 1 đến {_MAX_PHRASE_WORDS} từ",
                f"'{type_id}': keyword '{keyword}' must have 1 to {_MAX_PHRASE_WORDS} words",
            )
    return DocumentType(
        id=type_id,
        name=unicodedata.normalize("NFC", name.strip()),
        abbreviations=tuple(abbreviations),
        keywords=tuple(keywords),
        fallback_keywords=tuple(fallback),
    )


def _strings(value: object, key: str, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _invalid(
            source,
            f"'{key}' phải là danh sách chuỗi không rỗng",
            f"'{key}' must be a list of non-empty strings",
        )
    return [v.strip() for v in value]


def _is_slug(value: str) -> bool:
    return bool(_SLUG.fullmatch(value)) and value.strip("-") == value and "--" not in value
